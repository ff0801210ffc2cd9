"""Lowering: the checked IR becomes a Flax (linen) module, an Optax transformation, and loss and
metric functions. The only module that imports Flax and Optax; every builder it calls is a
registry entry, so a new layer, loss or optimizer never touches this file.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from dlc.compiler import ir, masking
from dlc.compiler import registry as reg


def _initializer(name: str) -> Any:
    return reg.lookup("initializer", name).build(LIB)


def activation(name: str) -> Callable:
    return reg.lookup("activation", name).build(LIB)


# What registry builders get: the libraries they may use, passed in so the registry never imports them.
LIB = SimpleNamespace(nn=nn, jnp=jnp, jax=jax, optax=optax, initializer=_initializer)

def _last_active(layers: tuple[ir.Layer, ...]) -> int | None:
    """Index of the layer whose activation is the output's (as the checker's `output_activation`)."""
    for i in range(len(layers) - 1, -1, -1):
        if not reg.layer(layers[i].kind).passes_activation:
            return i
    return None


@dataclass
class _Mask:
    """The padding mask as the layers run: its plan, and the mask once the token ids made it."""

    plan: masking.MaskPlan
    value: jax.Array | None = None


def _apply(layers: tuple[ir.Layer, ...], x: jax.Array, train: bool, strip_output: bool,
           rows: jax.Array | None, lib: SimpleNamespace, mask: _Mask) -> jax.Array:
    """Run IR layers in order. `strip_output` skips the output activation (it is fused into the loss)."""
    last = _last_active(layers) if strip_output else None
    for i, layer in enumerate(layers):
        strip = i == last
        entry = reg.layer(layer.kind)
        if entry.skip:
            x = x + _apply(layer.body, x, train, False, rows, lib, mask)
        elif entry.block:
            x = _apply(layer.body, x, train, strip, rows, lib, mask)
        else:
            if layer.name == mask.plan.start:
                mask.value = reg.padding_mask(x, jnp)
            args = masking.build_args(layer, mask.plan)
            apply = entry.build(args, lib)
            if entry.stateful:
                x = apply(x, train, rows)
            elif entry.masked:
                x = apply(x, train, mask.value if args["masked"] else None)
            else:
                x = apply(x, train)
            if entry.activates and not strip:
                x = activation(layer.args["activation"])(x)
            if layer.name in mask.plan.zeroed:
                x = jnp.where(mask.value[..., None], x, 0)
    return x


class RateDropout(nn.Dropout):
    """`nn.Dropout` whose keep probability may be an array: read from the `rates` collection
    (`{layer name: {"keep": 1 - rate}}`) when the caller passes one, so that the members of a sweep,
    vmapped, each drop at their own rate in one program. Flax's takes its rate as a static number.
    The same key, mask (`uniform < keep`) and scaling (`x / keep`) as `nn.Dropout`; `keep` is
    computed on the host in double precision, as `nn.Dropout` does, so the masks are the same bits.
    At rate 0 it still draws a mask, all ones: a module's random stream is its own, so no other
    layer's draws move."""

    @nn.compact
    def __call__(self, x: jax.Array, deterministic: bool) -> jax.Array:
        if deterministic:
            return x
        keep = self.get_variable("rates", "keep", 1.0 - self.rate)
        mask = jax.random.bernoulli(self.make_rng(self.rng_collection), p=keep, shape=x.shape)
        # At rate 1 every input is dropped; the divisor keeps the unused branch, and its gradient, finite.
        return jax.lax.select(mask, x / jnp.where(keep > 0, keep, 1.0), jnp.zeros_like(x))


# What layer builders get in a sweep: LIB, its `nn` flax.linen with `RateDropout` for `Dropout`.
SWEPT_LIB = SimpleNamespace(**{**vars(LIB), "nn": SimpleNamespace(**{**vars(nn), "Dropout": RateDropout})})


class SpecModule(nn.Module):
    """The model of a spec. `logits=True` leaves out an output softmax/sigmoid that the loss fuses.
    `swept`: its dropout layers read their rates from the `rates` collection (see `RateDropout`)."""

    layers: tuple[ir.Layer, ...]
    fused_output: bool
    swept: bool = False

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False, logits: bool = False,
                 rows: jax.Array | None = None) -> jax.Array:
        """`rows` marks the real examples of a padded batch (1) and the padding (0)."""
        return _apply(self.layers, x, train, logits and self.fused_output, rows, SWEPT_LIB if self.swept else LIB,
                      _Mask(masking.plan(self.layers)))


def dropout_keeps(program: ir.Program) -> dict[str, dict[str, float]]:
    """The `rates` collection of a swept module for this program: each dropout layer's keep
    probability, 1 - rate, computed in double precision as `nn.Dropout` computes it."""
    return {leaf.name: {"keep": 1.0 - leaf.args["rate"]} for leaf in ir.leaves(program.layers)
            if reg.layer(leaf.kind).rng_stream == nn.Dropout.rng_collection}


def _leaves(layers: tuple[ir.Layer, ...]) -> list[ir.Layer]:
    """The layers that build something, in the order `_apply` builds them."""
    return [leaf for layer in layers
            for leaf in (_leaves(layer.body) if reg.layer(layer.kind).block else [layer])]


class _Unnamed(nn.Module):
    """Builds the leaf layers without names, as models did before layers had names: Flax then
    names each module after its class and its count in the model (`Dense_0`)."""

    layers: tuple[ir.Layer, ...]

    @nn.compact
    def __call__(self) -> dict[str, str]:
        names = {}
        for layer in self.layers:
            before = set(self._state.children)
            reg.layer(layer.kind).build(masking.build_args(layer, masking.MaskPlan(None), name=None), LIB)
            names.update({child: layer.name for child in set(self._state.children) - before})
        return names


def legacy_names(program: ir.Program) -> dict[str, str]:
    """Each Flax auto name of the program's modules in a run saved before layers had names
    (`Dense_0`) to its layer's name (`dense_1`): rename the top-level keys of a restored
    `params` or `batch_stats` tree with it to load such a run."""
    names, _ = _Unnamed(tuple(_leaves(program.layers))).init_with_output(jax.random.key(0))
    return names


@dataclass(frozen=True)
class Lowered:
    """Everything the runtime needs to train and evaluate a program."""

    module: SpecModule
    loss: Callable[[jax.Array, jax.Array], jax.Array]  # (training outputs, labels) -> per-example loss
    predictions: Callable[[jax.Array], jax.Array]  # training outputs -> what metrics compare
    metrics: dict[str, Callable[[jax.Array, jax.Array], jax.Array]]  # name -> per-example value (those that have one)
    task: str


def lower(program: ir.Program, swept: bool = False) -> Lowered:
    """`swept`: the module's dropout rates come from the `rates` collection (a sweep's members)."""
    loss_entry = reg.lookup("loss", program.loss.name) if program.loss else None
    task = loss_entry.task if loss_entry else "regression"
    fused = bool(loss_entry and program.from_logits and program.output_activation == loss_entry.probability)
    module = SpecModule(program.layers, fused, swept)
    if loss_entry and program.from_logits:
        # Cross-entropy works on logits; metrics see probabilities, as `predict` would.
        probability = activation(loss_entry.probability)
    else:
        probability = activation("linear")

    def loss(out: jax.Array, y: jax.Array) -> jax.Array:
        return loss_entry.per_example(out, y, program.loss.args, LIB)

    metrics = {}  # the per-example metrics; those of the whole split are counted by `runtime/measures`
    for name in program.metrics:
        entry = reg.lookup("metric", name)
        if entry.per_example is not None:
            metrics[name] = (lambda e: lambda pred, y: e.per_example(pred, y, task, LIB))(entry)
    return Lowered(module, loss, probability, metrics, task)


class _Present(float):
    """A number that is true even at zero: an option a builder drops when it is 0 (`momentum or
    None`) stays in an injected chain, so every member of a sweep has one state layout. A zero
    momentum's trace adds 0 times the last update: the update of no momentum, exactly."""

    def __bool__(self) -> bool:
        return True


def _injected(factory: Callable) -> Callable:
    """`factory` (an optax optimizer) with its numbers injected into its state; the schedule
    (`learning_rate`) stays as it is."""

    def build(*args, **kwargs):
        kwargs = {k: float(v) if isinstance(v, _Present) else v for k, v in kwargs.items()}
        return optax.inject_hyperparams(factory, static_args="learning_rate")(*args, **kwargs)

    return build


# optax as an update rule's builder sees it in an injected chain: every function with its numbers injected.
_INJECTED_OPTAX = SimpleNamespace(**{name: _injected(f) for name, f in vars(optax).items() if inspect.isfunction(f)})


def unit_schedule(program: ir.Program, steps_per_epoch: int, total_steps: int) -> optax.Schedule:
    """The schedule of rate 1: what the learning rate is multiplied by at each step (update count)."""
    entry = reg.lookup("schedule", program.schedule.name)
    return entry.build(program.schedule.args, 1.0, total_steps, steps_per_epoch, optax)


def optimizer(program: ir.Program, steps_per_epoch: int, total_steps: int,
              injected: bool = False) -> optax.GradientTransformation:
    """The Optax chain: `clip` in front, the update rule driven by the schedule's shape, and the
    learning rate last as an injected hyperparameter (in the optimizer state, so a sweep can vary
    it without recompiling). Scaling by `lr` after the rule equals the rule with `lr` built in.

    `injected`: every number of the optimizer (and `clip`) is injected, so the members of a sweep
    that differ in them share one update function and one state layout, their numbers in the
    state. (A sweep gives a member without `clip` the clip of `math.inf` when others have one: the
    same updates, and the same layout.)

    With frozen layers (`trainable=false`) the chain sees the trainable parameters only, through
    `multi_transform`: frozen ones get a zero update (`set_to_zero`, not `masked`, which would pass
    their raw gradients through) and no optimizer state, and clipping by the global norm and weight
    decay see the trainable gradients alone, as if the frozen layers were constants."""
    opt = program.optimizer
    entry = reg.lookup("optimizer", opt.name)
    unit = unit_schedule(program, steps_per_epoch, total_steps)
    parts = []
    if opt.args.get("clip") is not None:
        clip = optax.inject_hyperparams(optax.clip_by_global_norm) if injected else optax.clip_by_global_norm
        parts.append(clip(opt.args["clip"]))
    if injected:
        args = {k: _Present(v) if isinstance(v, float) else v for k, v in opt.args.items()}
        parts.append(entry.build(args, unit, _INJECTED_OPTAX))
    else:
        parts.append(entry.build(opt.args, unit, optax))
    parts.append(optax.inject_hyperparams(optax.scale)(step_size=opt.args["lr"]))
    chain = optax.chain(*parts)
    frozen = frozen_layers(program)
    if not frozen:
        return chain
    return optax.multi_transform({TRAINABLE: chain, FROZEN: optax.set_to_zero()}, lambda params: {
        name: jax.tree.map(lambda _, label=FROZEN if name in frozen else TRAINABLE: label, tree)
        for name, tree in params.items()})


# The labels of `multi_transform`: the chain for trainable parameters, zero updates for frozen ones.
TRAINABLE, FROZEN = "trainable", "frozen"


def frozen_layers(program: ir.Program) -> frozenset[str]:
    """The names of the layers whose parameters training leaves as they are (the keys of the
    parameter tree that the optimizer never updates)."""
    return frozenset(leaf.name for leaf in ir.leaves(program.layers) if leaf.frozen)
