"""Sweeps: the members of a group (programs that differ only in numbers that change no shape: the
optimizer's, `clip`, dropout rates, the seed) trained as one program, the epoch vmapped over a
member axis.

On a small model one run leaves most of a machine idle; vmapped, the members' mini-batches become
one batched matrix product each step, and the host syncs once per epoch for all of them. Each
member's numbers are arrays in the state (the optimizer's injected by `lower.optimizer(...,
injected=True)`, dropout's keep probabilities read by `lower.RateDropout`), its keys are those its
lone run derives from its seed, and it stops on its own: its state is frozen by a mask while the
others go on. So a member's history is its lone run's (tests/runtime/test_sweep.py holds them
within 1e-4; the few ulps come from numbers that are float32 arrays here and Python floats there).
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
from dlc.compiler.lower import dropout_keeps, lower, optimizer
from dlc.runtime import train as programs
from dlc.runtime.loop import FitResult, fit
from dlc.runtime.options import FitOptions
from dlc.runtime.stopping import Diverged, EarlyStopping, Interrupted, Progress, divergence
from dlc.runtime.train import Trainer, TrainState, _batches, _initializer, _streams, init_state, make_trainer
from dlc.runtime.transfer import start_from_run

# What a member's run ends with: its result, or the `Diverged` its lone run would have raised.
Outcome = FitResult | Diverged


class MembersInterrupted(Interrupted):
    """A sweep stopped at a safe point on request; `histories` holds every member's epochs so far."""

    def __init__(self, epoch: int, histories: list[list[dict[str, float]]]):
        super().__init__(epoch, [])
        self.histories = histories


def train_members(members: list[ir.Program], train: tuple[np.ndarray, np.ndarray],
                  val: tuple[np.ndarray, np.ndarray] | None, options: FitOptions) -> list[Outcome]:
    """Train sweep members on the same data, as `loop.fit` trains one (the programs as
    `Session.prepare` leaves them, the options' overrides applied), and return, in their order,
    what each member's lone run gives: its `FitResult`, or its `Diverged` (a member that diverges
    stops with its history; the others go on).

    Members that differ only in what the vmapped epoch carries as arrays (optimizer numbers,
    `clip`, dropout rates, the seed) train as one program; any other difference (a shape, a kind, a
    schedule's numbers, which the schedule bakes in) makes groups of their own, each one program."""
    outcomes: list[Outcome | None] = [None] * len(members)
    for group in _groups(members):
        try:
            trained = _train_group([members[i] for i in group], train, val, options)
        except MembersInterrupted as stop:
            histories = [[] if o is None else o.history for o in outcomes]
            for i, history in zip(group, stop.histories, strict=True):
                histories[i] = history
            raise MembersInterrupted(stop.epoch, histories) from None
        for i, outcome in zip(group, trained, strict=True):
            outcomes[i] = outcome
    return outcomes


def _groups(members: list[ir.Program]) -> list[list[int]]:
    """The indices of the members that one vmapped program can train together, in order."""
    keys: list[ir.Program] = []
    groups: list[list[int]] = []
    for i, member in enumerate(members):
        key = _without_numbers(member)
        if key in keys:
            groups[keys.index(key)].append(i)
        else:
            keys.append(key)
            groups.append([i])
    return groups


def _train_group(members: list[ir.Program], train, val, options: FitOptions) -> list[Outcome]:
    """One vmapped program where it pays; one member after another through the ordinary path where
    the group would need what the vmapped epoch does not do (a single member; convolutions on a
    CPU, which train one compiled step per batch; data streamed from the host; several devices;
    `init` from a run)."""
    budget = options.data_budget
    lone = make_trainer(members[0], len(train[0]), members[0].epochs, options.devices)
    if (len(members) == 1 or lone.per_step or lone.mesh is not None or members[0].init is not None
            or (budget is not None and train[0].nbytes + train[1].nbytes > budget)):
        return _one_by_one(members, train, val, options)
    return _vmapped(members, train, val, options)


def _without_numbers(program: ir.Program) -> ir.Program:
    """The program with every value members of a group may differ in set to one value."""
    keeps = dropout_keeps(program)

    def layers(tree: tuple[ir.Layer, ...]) -> tuple[ir.Layer, ...]:
        return tuple(dataclasses.replace(layer, args={**layer.args, "rate": 0.0} if layer.name in keeps else layer.args,
                                         body=layers(layer.body)) for layer in tree)

    opt = program.optimizer
    args = {k: 0.0 if _number(v) or k == "clip" else v for k, v in opt.args.items()}
    return dataclasses.replace(program, seed=0, source="", layers=layers(program.layers),
                               optimizer=dataclasses.replace(opt, args=args))


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _one_by_one(members: list[ir.Program], train, val, options: FitOptions) -> list[Outcome]:
    """Each member through the ordinary path, as `Session.fit` trains it."""
    outcomes: list[Outcome] = []
    for program in members:
        trainer = make_trainer(program, len(train[0]), program.epochs, options.devices)
        state = init_state(trainer, program.input_shape, program.seed)
        state, _ = start_from_run(state, program, trainer.tx)
        try:
            outcomes.append(fit(trainer, state, train, val, options))
        except Diverged as diverged:
            outcomes.append(diverged)
        except Interrupted as stop:
            histories = [o.history for o in outcomes] + [stop.history]
            raise MembersInterrupted(stop.epoch, histories + [[] for _ in members[len(histories):]]) from None
    return outcomes


class _GroupTrainer(Trainer):
    """The trainer of one member of a group, which `_vmapped` maps over the member axis. Its model's
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
    return _GroupTrainer(program, lower(program, swept=True), txs[0], program.batch, shuffle), txs


def _stack(trees: list) -> Any:
    return jax.tree.map(lambda *leaves: jnp.stack(leaves), *trees)


def _member(tree: Any, i: int) -> Any:
    return jax.tree.map(lambda leaf: leaf[i], tree)


def _where(active: jax.Array, new: Any, old: Any) -> Any:
    """`new` for the members marked in `active`, `old` for the others."""
    return jax.tree.map(lambda a, b: jnp.where(active.reshape((-1,) + (1,) * (a.ndim - 1)), a, b), new, old)


def _initial(trainer: _GroupTrainer, txs: list, members: list[ir.Program]):
    """One program: each member's parameters from its seed's key (as `init_state` draws them), its
    optimizer state with its numbers, its dropout keep probabilities, all stacked."""
    init = _initializer(trainer, members[0].input_shape)
    rates = _stack([jax.tree.map(np.float32, dropout_keeps(m)) for m in members])

    def initial(roots):
        states = jax.vmap(lambda root: init(jax.random.fold_in(root, 0)))(roots)
        opt_state = _stack([tx.init(_member(states.params, i)) for i, tx in enumerate(txs)])
        return TrainState(states.params, {"batch_stats": states.batch_stats, "rates": rates}, opt_state)

    roots = jnp.stack([jax.random.key(m.seed) for m in members])
    # Runs once, as `init_state`'s program: XLA's optimisations of its random draws cost seconds to compile.
    return jax.jit(initial).lower(roots).compile({"xla_backend_optimization_level": 0})(roots)


def _vmapped(members: list[ir.Program], train, val, options: FitOptions) -> list[Outcome]:
    start = time.perf_counter()
    should_stop = options.should_stop or (lambda: False)
    trainer, txs = _group_trainer(members, len(train[0]))
    count = len(members)
    states = _initial(trainer, txs, members)
    x, y = trainer.place(train[0]), trainer.place(train[1])
    val_set = trainer.eval_set(*val) if val is not None else None
    head = trainer.eval_set(train[0][:programs.EVAL_CHUNK], train[1][:programs.EVAL_CHUNK])
    evaluate = jax.jit(jax.vmap(trainer._eval_chunk, in_axes=(0, 0, None, None, None)))
    member_epoch = jax.vmap(trainer.train_epoch, in_axes=(0, None, None, 0, None))

    def epoch_program(states, x, y, keys, epoch, active):
        new, metrics = member_epoch(states, x, y, keys, epoch)
        return _where(active, new, states), metrics

    keep = jax.jit(lambda best, states, better: _where(better, {"params": states.params, "held": states.batch_stats},
                                                      best))
    keys = jnp.stack([jax.random.fold_in(jax.random.key(m.seed), 1) for m in members])  # as `loop.fit` derives them
    active = np.ones(count, bool)
    trace_start = time.perf_counter()
    traced = jax.jit(epoch_program, donate_argnums=(0,)).lower(states, x, y, keys, 1, active)
    timings = {"trace": time.perf_counter() - trace_start}
    compile_start = time.perf_counter()
    run_epoch = traced.compile()
    timings["compile"] = time.perf_counter() - compile_start
    if options.on_compiled:
        options.on_compiled(timings["compile"], False)
    start_loss = _sums(evaluate, states, head)["loss"] / head.n
    rule = members[0].early_stop
    keep_best = rule is not None and rule.restore_best
    best = None  # each member's best epoch's weights, when the spec restores them
    stoppers = [EarlyStopping(rule, Progress()) for _ in members]
    outcomes: list[Diverged | None] = [None] * count
    stopped = np.zeros(count, bool)
    if should_stop():
        raise MembersInterrupted(0, [[] for _ in members])
    for epoch in range(1, members[0].epochs + 1):
        if not active.any():
            break
        t0 = time.perf_counter()
        states, metrics = run_epoch(states, x, y, keys, epoch, jnp.asarray(active))
        fetched = jax.device_get((metrics, _sums(evaluate, states, val_set, fetch=False) if val_set else {}))
        elapsed = time.perf_counter() - t0
        better = np.zeros(count, bool)
        for i in np.flatnonzero(active):
            logs = {"epoch": epoch, **{k: float(v[i]) for k, v in fetched[0].items()},
                    **{f"val_{k}": float(v[i]) / val_set.n for k, v in fetched[1].items()}, "epoch_time": elapsed}
            progress = stoppers[i].progress
            outcomes[i] = divergence(epoch, logs, float(start_loss[i]), progress.history)
            if outcomes[i] is not None:
                active[i] = False
                continue
            progress.history.append(logs)
            is_best, stop = stoppers[i].update(epoch, logs)
            better[i] = is_best
            progress.epoch = epoch
            active[i], stopped[i] = not stop, stop
            if options.on_epoch:
                options.on_epoch(epoch, {"member": int(i), **logs})
        timings.setdefault("first_epoch", time.perf_counter() - start - timings["trace"] - timings["compile"])
        if keep_best and better.any():
            # A fresh copy (never the donated state), the old best kept for the members not better now.
            best = keep(best or {"params": states.params, "held": states.batch_stats}, states, better)
        if should_stop():
            raise MembersInterrupted(epoch, [s.progress.history for s in stoppers])
    wall = time.perf_counter() - start
    return [outcomes[i] or _result(states, best, i, stoppers[i], bool(stopped[i]), wall, timings)
            for i in range(count)]


def _sums(evaluate, states: TrainState, data: programs.EvalSet, fetch: bool = True) -> dict:
    """Each member's sums of loss and metrics over a split (fetched, or left on the device)."""
    totals = None
    for xb, yb, mask in data.chunks:
        sums = evaluate(states.params, states.batch_stats, xb, yb, mask)
        totals = sums if totals is None else jax.tree.map(jnp.add, totals, sums)
    return jax.device_get(totals) if fetch else totals


def _result(states: TrainState, best: dict | None, i: int, stopper: EarlyStopping, stopped: bool, wall: float,
            timings: dict) -> FitResult:
    """Member i's `FitResult`: its state (its best epoch's weights when the spec restores them), with
    its own batch statistics; the optimizer state keeps the sweep's layout (every number injected)."""
    held = best if best is not None else {"params": states.params, "held": states.batch_stats}
    state = TrainState(_member(held["params"], i), _member(held["held"]["batch_stats"], i), _member(states.opt_state, i))
    best_epoch = stopper.best_epoch if stopper.rule else len(stopper.progress.history)
    return FitResult(state, stopper.progress.history, best_epoch, stopped, wall, dict(timings))


def fit_members(owners: list, x: Any, y: Any, validation_data: Any, options: FitOptions) -> list:
    """`Session.fit` for every member of a sweep (each the `SpecOwner` of its written-out spec), in
    their order: the member's trained `Session`, or the `Diverged` its lone run would raise. Each
    member's data is prepared as its lone run prepares it; members whose prepared data is the same
    (a split that does not depend on their seed, or the same seed) train together."""
    from dlc.runtime.session import Session

    prepared = [Session.prepare(owner, x, y, validation_data, options) for owner in owners]
    same_data: list[list[int]] = []
    for i, (_, data, _) in enumerate(prepared):
        group = next((g for g in same_data if _same_split(prepared[g[0]][1], data)), None)
        if group is None:
            same_data.append([i])
        else:
            group.append(i)
    done: list = [None] * len(owners)
    for group in same_data:
        data = prepared[group[0]][1]
        val = (data.val.x, data.val.y) if data.val is not None else None
        outcomes = train_members([prepared[i][0] for i in group], (data.train.x, data.train.y), val, options)
        for i, outcome in zip(group, outcomes, strict=True):
            program, member_data, arrays = prepared[i]
            trainer = make_trainer(program, len(member_data.train.x), program.epochs, options.devices)
            done[i] = outcome if isinstance(outcome, Diverged) else \
                Session(owners[i], program, trainer, outcome.state, member_data, outcome, arrays)
    return done


def _same_split(a, b) -> bool:
    """Whether two members' prepared data are the same arrays, part by part."""
    parts = [(a.train, b.train), (a.val, b.val), (a.test, b.test)]
    return all((p is None) == (q is None) and (p is None or (np.array_equal(p.x, q.x) and np.array_equal(p.y, q.y)))
               for p, q in parts) and a.normalization == b.normalization and a.labels == b.labels
