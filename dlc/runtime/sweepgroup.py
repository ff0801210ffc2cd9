"""One group of a sweep as one program: the epoch vmapped over a member axis.

Each member's numbers are arrays in the state (the optimizer's injected by `lower.optimizer(...,
injected=True)`, dropout's keep probabilities read by `lower.RateDropout`), its keys are those its
lone run derives from its seed, and it stops on its own: its state is frozen by a mask while the
others go on. So a member's history is its lone run's (tests/runtime/test_sweep.py holds them
within 1e-4; the few ulps come from numbers that are float32 arrays here and Python floats there).
With checkpoints (`sweepsave.GroupSave`), the group's state, every member's progress and which
members still train are saved after epochs, and a resumed group goes on exactly where it stopped.
"""

from __future__ import annotations

import dataclasses
import math
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from dlc.compiler import ir
from dlc.compiler.lower import dropout_keeps, lower, optimizer, unit_schedule
from dlc.runtime import measures
from dlc.runtime import train as programs
from dlc.runtime.devices import fetch, place
from dlc.runtime.loop import FitResult, logs_of
from dlc.runtime.options import FitOptions
from dlc.runtime.stopping import Diverged, EarlyStopping, Interrupted, divergence
from dlc.runtime.sweepsave import GroupProgress, GroupSave
from dlc.runtime.train import Trainer, TrainState, _batches, _initializer, _streams

# What a member's run ends with: its result, or the `Diverged` its lone run would have raised.
Outcome = FitResult | Diverged


class MembersInterrupted(Interrupted):
    """A sweep stopped at a safe point on request; `histories` holds every member's epochs so far."""

    def __init__(self, epoch: int, histories: list[list[dict[str, float]]]):
        super().__init__(epoch, [])
        self.histories = histories


class _GroupTrainer(Trainer):
    """The trainer of one member of a group, which `vmapped` maps over the member axis. Its model's
    dropout reads the member's keep probabilities from the `rates` collection, so the state's
    `batch_stats` slot holds every variable training does not differentiate:
    `{"batch_stats": ..., "rates": ...}`."""

    def forward(self, params, held, x, train: bool, rng=None, rows=None):
        variables = {"params": params, "rates": held["rates"]}
        if held["batch_stats"]:
            variables["batch_stats"] = held["batch_stats"]
        if train and held["batch_stats"]:
            out, updates = self.lowered.module.apply(variables, x, train=True, logits=True, rows=rows,
                                                     rngs=_streams(rng), mutable=["batch_stats"])
            return out, {**held, "batch_stats": updates["batch_stats"]}
        out = self.lowered.module.apply(variables, x, train=train, logits=True, rngs=_streams(rng) if train else None)
        return out, held

    def penalty(self, params, held):
        """The member's own kernel penalties (`l1=`, `l2=`), kept in its state as arrays."""
        return measures.penalty(params, held["penalties"])

    def weighting(self, held):
        """The member's own class weights (`class_weight=balanced` over its training split, which
        its seed draws), kept in its state as an array."""
        return held.get("class_weights")


def _group_trainer(members: list[ir.Program], n: int) -> tuple[_GroupTrainer, list]:
    """The group's trainer, and each member's optimizer (every number injected: one update
    function and one state layout for all, their numbers in the state)."""
    clipped = any(m.optimizer.args.get("clip") is not None for m in members)
    members = [dataclasses.replace(m, batch=max(1, min(m.batch, n)), optimizer=dataclasses.replace(
        m.optimizer, args={**m.optimizer.args, "clip": m.optimizer.args.get("clip") or math.inf}))
        if clipped else dataclasses.replace(m, batch=max(1, min(m.batch, n))) for m in members]
    program = members[0]
    steps, _ = _batches(n, program.batch)
    txs = [optimizer(m, steps, steps * m.epochs, injected=True) for m in members]
    shuffle = program.data.shuffle if program.data else True
    return _GroupTrainer(program, lower(program, swept=True), txs[0], program.batch, shuffle,
                         schedule=unit_schedule(program, steps, steps * program.epochs), steps_per_epoch=steps), txs


def _stack(trees: list) -> Any:
    return jax.tree.map(lambda *leaves: jnp.stack(leaves), *trees)


def _member(tree: Any, i: int) -> Any:
    return jax.tree.map(lambda leaf: leaf[i], tree)


def _where(active: jax.Array, new: Any, old: Any) -> Any:
    """`new` for the members marked in `active`, `old` for the others."""
    return jax.tree.map(lambda a, b: jnp.where(active.reshape((-1,) + (1,) * (a.ndim - 1)), a, b), new, old)


def _initial(trainer: _GroupTrainer, txs: list, members: list[ir.Program]):
    """The group's initial state as a function of the members' root keys, and those keys: each
    member's parameters from its seed's key (as `init_state` draws them), its optimizer state
    with its numbers, its dropout keep probabilities, all stacked."""
    init = _initializer(trainer, members[0].input_shape)
    rates = _stack([jax.tree.map(np.float32, dropout_keeps(m)) for m in members])
    held = {"rates": rates, "penalties": _stack(measures.member_penalties(members))}
    if members[0].class_weights is not None:
        held["class_weights"] = np.stack([np.asarray(m.class_weights, np.float32) for m in members])

    def initial(roots):
        states = jax.vmap(lambda root: init(jax.random.fold_in(root, 0)))(roots)
        opt_state = _stack([tx.init(_member(states.params, i)) for i, tx in enumerate(txs)])
        return TrainState(states.params, {"batch_stats": states.batch_stats, **held}, opt_state)

    return initial, jnp.stack([jax.random.key(m.seed) for m in members])


def vmapped(members: list[ir.Program], train, val, options: FitOptions, saved: GroupSave | None = None,
            mesh: Any = None, own: bool = False) -> list[Outcome]:
    """Train the group as one program, from `saved`'s newest checkpoint when `options.resume`
    (members that had finished are not trained again), checkpointing into it after epochs; with
    `mesh` (`devices.member_mesh`), the members sharded over its devices. `own`: `train` and `val`
    hold each member's split, stacked on a leading member axis (the members' splits drawn from
    their seeds), which the epoch and the evaluation map over as they map over the states."""
    started = time.perf_counter()
    should_stop = options.should_stop or (lambda: False)
    data_axis = 0 if own else None
    trainer, txs = _group_trainer(members, train[0].shape[1 if own else 0])
    count = len(members)
    initial, roots = _initial(trainer, txs, members)
    restored = saved.restore(jax.eval_shape(initial, roots)) if saved is not None and options.resume else None
    if restored is None:
        # Runs once, as `init_state`'s program: XLA's optimisations of its random draws cost seconds to compile.
        states = jax.jit(initial).lower(roots).compile({"xla_backend_optimization_level": 0})(roots)
        best, progress = None, None  # best: each member's best epoch's weights, when the spec restores them
    else:
        states, best, progress = restored
    keys = jnp.stack([jax.random.fold_in(jax.random.key(m.seed), 1) for m in members])  # as `loop.fit` derives them
    val_set = _eval_set(trainer, val, own) if val is not None else None
    if mesh is not None:  # the member axis of every array split over the devices; XLA partitions the vmap
        states, best, keys = _sharded(mesh, (states, best, keys))
    if mesh is not None and own:
        x, y = _sharded(mesh, train)
        if val_set is not None:
            val_set = programs.EvalSet(val_set.n, _sharded(mesh, val_set.chunks))
    else:
        x, y = trainer.place(train[0]), trainer.place(train[1])
    evaluate = jax.jit(jax.vmap(trainer._eval_chunk, in_axes=(0, 0, data_axis, data_axis, data_axis)))
    if progress is None:
        head = _eval_set(trainer, tuple(part[:, :programs.EVAL_CHUNK] if own else part[:programs.EVAL_CHUNK]
                                        for part in train), own)
        losses = _sums(evaluate, states, head)["loss"] / head.n
        # The training loss the divergence guard watches holds the kernel penalties: so does its baseline.
        penalties = jax.vmap(lambda state: trainer.penalty(state.params, state.batch_stats))(states)
        progress = GroupProgress.new(losses if penalties is None else losses + fetch(penalties))
    member_epoch = jax.vmap(trainer.train_epoch, in_axes=(0, data_axis, data_axis, 0, None))

    def epoch_program(states, x, y, keys, epoch, active):
        new, metrics = member_epoch(states, x, y, keys, epoch)
        return _where(active, new, states), metrics

    keep = jax.jit(lambda best, states, better: _where(better, {"params": states.params,
                                                                "batch_stats": states.batch_stats}, best))
    active, stopped = np.array(progress.active), np.array(progress.stopped)
    epochs = members[0].epochs
    factors = trainer.schedule_factors(range(1, epochs + 1))
    timings = {"trace": 0.0, "compile": 0.0}
    if active.any() and progress.epoch < epochs:
        trace_start = time.perf_counter()
        traced = jax.jit(epoch_program, donate_argnums=(0,)).lower(states, x, y, keys, 1, active)
        timings["trace"] = time.perf_counter() - trace_start
        compile_start = time.perf_counter()
        run_epoch = traced.compile()
        timings["compile"] = time.perf_counter() - compile_start
        if options.on_compiled:
            options.on_compiled(timings["compile"], False)
    rule = members[0].early_stop
    keep_best = rule is not None and rule.restore_best
    stoppers = [EarlyStopping(rule, member) for member in progress.members]
    outcomes = list(progress.diverged)
    if should_stop():
        raise MembersInterrupted(progress.epoch, [s.progress.history for s in stoppers])
    for epoch in range(progress.epoch + 1, epochs + 1):
        if not active.any():
            break
        t0 = time.perf_counter()
        states, metrics = run_epoch(states, x, y, keys, epoch, jnp.asarray(active))
        fetched = fetch((metrics, _sums(evaluate, states, val_set, to_host=False) if val_set else {},
                         measures.rate(states.opt_state)))
        elapsed = time.perf_counter() - t0
        better = np.zeros(count, bool)
        for i in np.flatnonzero(active):
            logs = {"epoch": epoch, **logs_of(trainer, measures.member(fetched[0], i), measures.member(fetched[1], i),
                                              val_set),
                    "lr": measures.epoch_rate(fetched[2][i], factors[epoch - 1]), "epoch_time": elapsed}
            member = stoppers[i].progress
            outcomes[i] = divergence(epoch, logs, progress.start[i], member.history)
            if outcomes[i] is not None:
                progress.diverged[i] = outcomes[i]
                active[i] = False
                continue
            member.history.append(logs)
            is_best, stop = stoppers[i].update(epoch, logs)
            better[i] = is_best
            member.epoch = epoch
            active[i], stopped[i] = not stop, stop
            if options.on_epoch:
                options.on_epoch(epoch, {"member": int(i), **logs})
        timings.setdefault("first_epoch", time.perf_counter() - started - timings["trace"] - timings["compile"])
        if keep_best and better.any():
            # A fresh copy (never the donated state), the old best kept for the members not better now.
            best = keep(best or {"params": states.params, "batch_stats": states.batch_stats}, states, better)
        progress.epoch, progress.active, progress.stopped = epoch, active.tolist(), stopped.tolist()
        interrupted = should_stop()
        if saved is not None:
            saved.save(states, best, progress, force=interrupted or not active.any() or epoch == epochs)
        if interrupted:
            raise MembersInterrupted(epoch, [s.progress.history for s in stoppers])
    wall = time.perf_counter() - started
    return [outcomes[i] or _result(states, best, i, stoppers[i], bool(stopped[i]), wall, timings)
            for i in range(count)]


def _eval_set(trainer: _GroupTrainer, split: tuple, own: bool) -> programs.EvalSet:
    """A split cut into evaluation chunks on the device; with `own`, every member's split (stacked
    on the member axis) cut alike, each chunk stacked on the member axis."""
    if not own:
        return trainer.eval_set(*split)
    sets = [trainer.eval_set(x, y, on_device=False) for x, y in zip(*split, strict=True)]
    chunks = [trainer.place(tuple(np.stack(parts) for parts in zip(*chunk, strict=True)))
              for chunk in zip(*(s.chunks for s in sets), strict=True)]
    return programs.EvalSet(sets[0].n, chunks)


def _sharded(mesh: Any, tree: Any) -> Any:
    from jax.sharding import NamedSharding, PartitionSpec

    return place(tree, NamedSharding(mesh, PartitionSpec("members")))


def _sums(evaluate, states: TrainState, data: programs.EvalSet, to_host: bool = True) -> dict:
    """Each member's sums of loss and metrics over a split (fetched, or left on the device)."""
    totals = None
    for xb, yb, mask in data.chunks:
        totals = measures.combine(totals, evaluate(states.params, states.batch_stats, xb, yb, mask), axis=1)
    return fetch(totals) if to_host else totals


def _result(states: TrainState, best: dict | None, i: int, stopper: EarlyStopping, stopped: bool, wall: float,
            timings: dict) -> FitResult:
    """Member i's `FitResult`: its state (its best epoch's weights when the spec restores them), with
    its own batch statistics; the optimizer state keeps the sweep's layout (every number injected)."""
    held = best if best is not None else {"params": states.params, "batch_stats": states.batch_stats}
    state = TrainState(_member(held["params"], i), _member(held["batch_stats"]["batch_stats"], i),
                       _member(states.opt_state, i))
    best_epoch = stopper.best_epoch if stopper.rule else len(stopper.progress.history)
    return FitResult(state, stopper.progress.history, best_epoch, stopped, wall, dict(timings))
