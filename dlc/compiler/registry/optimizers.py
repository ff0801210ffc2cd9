"""Optimizers (Optax update rules) and learning-rate schedules."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dlc.compiler.registry.base import (
    FRACTION,
    GREATER_THAN_ZERO,
    NON_NEGATIVE,
    POSITIVE,
    PROBABILITY_OPEN,
    Entry,
    Param,
    Range,
    option,
)


def _lr(default: float) -> Param:
    return option("lr", "float", "learning rate: the step size of each update", default, range=GREATER_THAN_ZERO,
                  synonyms=("learning_rate", "rate", "alpha", "step_size"), shape_free=True)


_B1 = option("b1", "float", "decay of the first-moment (mean) estimate", 0.9, range=FRACTION, synonyms=("beta1", "beta_1"),
             shape_free=True)
_B2 = option("b2", "float", "decay of the second-moment estimate", 0.999, range=FRACTION, synonyms=("beta2", "beta_2"),
             shape_free=True)
_EPS = option("eps", "float", "added to the denominator for stability", 1e-8, range=GREATER_THAN_ZERO,
              synonyms=("epsilon",), shape_free=True)


@dataclass(frozen=True)
class Optimizer(Entry):
    """`build(args, learning_rate, optax)` returns an optax GradientTransformation;
    `slots(args)` is how many parameter-sized arrays its state keeps (for the memory estimate);
    `code(args)` writes the same transformation out for `--emit py`, its rate the name `schedule`."""

    build: Callable[[dict, Any, Any], Any] | None = None
    code: Callable[[dict], str] | None = None
    slots: Callable[[dict], int] = lambda a: 0


OPTIMIZERS: tuple[Optimizer, ...] = (
    Optimizer("sgd", "stochastic gradient descent, optionally with (Nesterov) momentum",
              (_lr(0.01), option("momentum", "float", "fraction of the last update kept", 0.0, range=FRACTION,
                      shape_free=True),
               option("nesterov", "bool", "Nesterov's look-ahead momentum", False)),
              example="optimizer sgd lr=0.1 momentum=0.9",
              build=lambda a, lr, optax: optax.sgd(lr, momentum=a["momentum"] or None, nesterov=a["nesterov"]),
              code=lambda a: f"optax.sgd(schedule, momentum={a['momentum'] or None!r}, nesterov={a['nesterov']})",
              slots=lambda a: 1 if a["momentum"] else 0),
    Optimizer("adam", "adaptive moments (Kingma & Ba, 2015)", (_lr(1e-3), _B1, _B2, _EPS),
              example="optimizer adam lr=1e-3",
              build=lambda a, lr, optax: optax.adam(lr, b1=a["b1"], b2=a["b2"], eps=a["eps"]), slots=lambda a: 2,
              code=lambda a: f"optax.adam(schedule, b1={a['b1']!r}, b2={a['b2']!r}, eps={a['eps']!r})"),
    Optimizer("adamw", "adam with decoupled weight decay (Loshchilov & Hutter, 2019)",
              (_lr(1e-3), _B1, _B2, _EPS,
               option("weight_decay", "float", "decay applied to the weights each step", 1e-4, range=NON_NEGATIVE,
                      synonyms=("wd", "decay"), shape_free=True)),
              example="optimizer adamw lr=1e-3 weight_decay=1e-4",
              build=lambda a, lr, optax: optax.adamw(lr, b1=a["b1"], b2=a["b2"], eps=a["eps"],
                                                     weight_decay=a["weight_decay"]), slots=lambda a: 2,
              code=lambda a: f"optax.adamw(schedule, b1={a['b1']!r}, b2={a['b2']!r}, eps={a['eps']!r}, "
                             f"weight_decay={a['weight_decay']!r})"),
    Optimizer("adagrad", "per-parameter rates from the sum of squared gradients (Duchi et al., 2011)",
              (_lr(0.01), option("eps", "float", "added to the denominator for stability", 1e-7,
                                 range=GREATER_THAN_ZERO, synonyms=("epsilon",), shape_free=True)),
              example="optimizer adagrad lr=0.05",
              build=lambda a, lr, optax: optax.adagrad(lr, eps=a["eps"]), slots=lambda a: 1,
              code=lambda a: f"optax.adagrad(schedule, eps={a['eps']!r})"),
    Optimizer("adadelta", "adagrad with a decaying window, nearly free of a learning rate (Zeiler, 2012)",
              (_lr(1.0), option("rho", "float", "decay of the squared-gradient average", 0.9, range=FRACTION,
                      shape_free=True),
               option("eps", "float", "added to the denominator for stability", 1e-6, range=GREATER_THAN_ZERO,
                      synonyms=("epsilon",), shape_free=True)),
              example="optimizer adadelta lr=1.0",
              build=lambda a, lr, optax: optax.adadelta(lr, rho=a["rho"], eps=a["eps"]), slots=lambda a: 2,
              code=lambda a: f"optax.adadelta(schedule, rho={a['rho']!r}, eps={a['eps']!r})"),
    Optimizer("rmsprop", "divide by a running average of squared gradients (Hinton, 2012)",
              (_lr(1e-3), option("decay", "float", "decay of the squared-gradient average", 0.9, range=FRACTION,
                                 synonyms=("rho",), shape_free=True),
               option("momentum", "float", "fraction of the last update kept", 0.0, range=FRACTION,
                      shape_free=True), _EPS),
              example="optimizer rmsprop lr=1e-3 decay=0.9",
              build=lambda a, lr, optax: optax.rmsprop(lr, decay=a["decay"], eps=a["eps"],
                                                       momentum=a["momentum"] or None),
              slots=lambda a: 2 if a["momentum"] else 1,
              code=lambda a: f"optax.rmsprop(schedule, decay={a['decay']!r}, eps={a['eps']!r}, "
                             f"momentum={a['momentum'] or None!r})"),
)

# Options every optimizer takes besides its own.
OPTIMIZER_COMMON: tuple[Param, ...] = (
    option("clip", "float", "clip the global gradient norm to this value", None, range=GREATER_THAN_ZERO,
           synonyms=("clipnorm", "clip_norm", "max_norm"), shape_free=True),
)


@dataclass(frozen=True)
class Schedule(Entry):
    """`build(args, base_lr, total_steps, steps_per_epoch, optax)` returns an optax schedule;
    `code(args)` writes out the same schedule of rate 1.0 for `--emit py`, in terms of the names
    `steps_per_epoch` and `total_steps`. `on_plateau`: besides its steps, the rate is multiplied by
    the `factor` argument after `patience` epochs in which the monitored quantity (as
    `early_stop`'s) did not improve by `min_delta` (Keras's `ReduceLROnPlateau`), which the epoch
    loop decides once per epoch (`runtime/stopping.Plateau`)."""

    build: Callable[..., Any] | None = None
    code: Callable[[dict], str] | None = None
    on_plateau: bool = False


def _steps(name: str, doc: str) -> Param:
    return option(name, "int", doc, None, range=POSITIVE)


def _factor(when: str) -> Param:
    return option("factor", "float", f"what the rate is multiplied by {when}", 0.1, range=PROBABILITY_OPEN,
                  synonyms=("gamma", "decay_rate"))


SCHEDULES: tuple[Schedule, ...] = (
    Schedule("constant", "the same learning rate throughout", example="schedule constant",
             build=lambda a, lr, total, epoch, optax: optax.constant_schedule(lr),
             code=lambda a: "optax.constant_schedule(1.0)"),
    Schedule("exponential", "multiply the rate by `decay_rate` every `decay_steps` steps",
             (option("decay_rate", "float", "factor per `decay_steps`", 0.9, range=Range(lo=0, hi=1, lo_open=True),
                     shape_free=True),
              _steps("decay_steps", "steps per decay (default: one epoch)"),
              option("staircase", "bool", "decay in steps instead of smoothly", False)),
             example="schedule exponential decay_rate=0.9",
             build=lambda a, lr, total, epoch, optax: optax.exponential_decay(
                 lr, a["decay_steps"] or epoch, a["decay_rate"], staircase=a["staircase"]),
             code=lambda a: f"optax.exponential_decay(1.0, {a['decay_steps'] or 'steps_per_epoch'}, "
                            f"{a['decay_rate']!r}, staircase={a['staircase']})"),
    Schedule("cosine", "cosine decay from the rate to `alpha` times it",
             (_steps("decay_steps", "steps to decay over (default: the whole run)"),
              option("alpha", "float", "final rate as a fraction of the first", 0.0, range=Range(lo=0, hi=1),
                     shape_free=True)),
             example="schedule cosine",
             build=lambda a, lr, total, epoch, optax: optax.cosine_decay_schedule(
                 lr, a["decay_steps"] or total, alpha=a["alpha"]),
             code=lambda a: f"optax.cosine_decay_schedule(1.0, {a['decay_steps'] or 'total_steps'}, "
                            f"alpha={a['alpha']!r})"),
    Schedule("warmup_cosine", "linear warm-up from 0, then cosine decay",
             (_steps("warmup", "warm-up steps (default: one epoch)"),
              _steps("decay_steps", "steps of the whole schedule (default: the whole run)"),
              option("alpha", "float", "final rate as a fraction of the peak", 0.0, range=Range(lo=0, hi=1),
                     shape_free=True)),
             example="schedule warmup_cosine warmup=100",
             build=lambda a, lr, total, epoch, optax: optax.warmup_cosine_decay_schedule(
                 0.0, lr, min(a["warmup"] or epoch, max((a["decay_steps"] or total) - 1, 1)),
                 max(a["decay_steps"] or total, 2), end_value=lr * a["alpha"]),
             code=lambda a: "optax.warmup_cosine_decay_schedule(0.0, 1.0, "
                            f"min({a['warmup'] or 'steps_per_epoch'}, max({a['decay_steps'] or 'total_steps'} - 1, 1)), "
                            f"max({a['decay_steps'] or 'total_steps'}, 2), end_value=1.0 * {a['alpha']!r})"),
    Schedule("step", "multiply the rate by `factor` every `every` steps",
             (_steps("every", "steps between reductions (default: one epoch)"), _factor("each `every` steps")),
             example="schedule step every=100 factor=0.5",
             build=lambda a, lr, total, epoch, optax: optax.exponential_decay(
                 lr, a["every"] or epoch, a["factor"], staircase=True),
             code=lambda a: f"optax.exponential_decay(1.0, {a['every'] or 'steps_per_epoch'}, {a['factor']!r}, "
                            "staircase=True)"),
    Schedule("plateau", "multiply the rate by `factor` when the monitored quantity (as `early_stop`'s: its "
             "`monitor`, else `val_loss` with validation data, else `loss`) has not improved for `patience` epochs",
             (_factor("when the monitored quantity stops improving"),
              option("patience", "int", "epochs without improvement before the rate is reduced", 10, range=POSITIVE),
              option("min_delta", "float", "smallest change that counts as improvement", 1e-4, range=NON_NEGATIVE)),
             example="schedule plateau factor=0.5 patience=3", on_plateau=True,
             build=lambda a, lr, total, epoch, optax: optax.constant_schedule(lr),
             code=lambda a: "optax.constant_schedule(1.0)"),
)
