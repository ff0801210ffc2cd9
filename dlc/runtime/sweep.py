"""Sweeps: the members of a group (programs that differ only in numbers that change no shape: the
optimizer's, `clip`, dropout rates, the seed) trained as one program, the epoch vmapped over a
member axis (`sweepgroup`); members that need what the vmapped epoch does not do, one after
another through the ordinary path.

On a small model one run leaves most of a machine idle; vmapped, the members' mini-batches become
one batched matrix product each step, and the host syncs once per epoch for all of them. With a
checkpoint folder every group and member is checkpointed after epochs (`sweepsave`), and a
resumed sweep goes on exactly where it stopped, members that had finished not trained again.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import numpy as np

from dlc.compiler import ir
from dlc.compiler.lower import dropout_keeps
from dlc.runtime import measures, sweepsave
from dlc.runtime.data import Prepared, Split
from dlc.runtime.devices import member_mesh
from dlc.runtime.loop import fit
from dlc.runtime.memory import device_data_budget, group_data_budget, guard_memory
from dlc.runtime.options import FitOptions
from dlc.runtime.stopping import Diverged, Interrupted
from dlc.runtime.sweepgroup import MembersInterrupted, Outcome
from dlc.runtime.sweepgroup import vmapped as _vmapped
from dlc.runtime.train import init_state, make_trainer
from dlc.runtime.transfer import start_from_run


def train_members(members: list[ir.Program], train: tuple[np.ndarray, np.ndarray],
                  val: tuple[np.ndarray, np.ndarray] | None, options: FitOptions,
                  indices: list[int] | None = None, prepared: Any = None) -> list[Outcome]:
    """Train sweep members on the same data, as `loop.fit` trains one (the programs as
    `Session.prepare` leaves them, the options' overrides applied), and return, in their order,
    what each member's lone run gives: its `FitResult`, or its `Diverged` (a member that diverges
    stops with its history; the others go on).

    Members that differ only in what the vmapped epoch carries as arrays (optimizer numbers,
    `clip`, dropout rates, the seed) train as one program; any other difference (a shape, a kind, a
    schedule's numbers, which the schedule bakes in) makes groups of their own, each one program.

    `indices`: the members' places in the sweep (default 0, 1, ...), which `on_epoch` is told as
    `member` and which name their checkpoints (with `options.checkpoint_dir`: after epochs, and
    `options.resume` goes on from them). `prepared`: the data's splits as `data.prepare` left them,
    for the memory guard (default: `train` and `val`)."""
    indices = list(range(len(members))) if indices is None else indices
    if prepared is None:
        prepared = Prepared(Split(*train), None if val is None else Split(*val), None, {}, None)
    outcomes: list[Outcome | None] = [None] * len(members)
    for group in _groups(members):
        try:
            with sweepsave.held(options):
                trained = _train_group([members[i] for i in group], train, val,
                                       _told_as(options, [indices[i] for i in group]), [indices[i] for i in group],
                                       prepared)
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


def _told_as(options: FitOptions, indices: list[int]) -> FitOptions:
    """The options with `on_epoch` told a group's member `i` as member `indices[i]` of the sweep."""
    if options.on_epoch is None:
        return options
    on_epoch = options.on_epoch
    return dataclasses.replace(options, on_epoch=lambda epoch, logs: on_epoch(epoch, {
        **logs, "member": indices[logs["member"]]}))


def _train_group(members: list[ir.Program], train, val, options: FitOptions, indices: list[int],
                 prepared: Any) -> list[Outcome]:
    """One vmapped program where it pays; one member after another through the ordinary path where
    the group would need what the vmapped epoch does not do (a single member, whose batches
    several devices split; convolutions on a CPU, which train one compiled step per batch; data
    streamed from the host, which a group needs sooner than one run, its members' states taking
    room from the data; `init` from a run). With several devices a group's members are split
    over them. Either way the memory guard counts what it will hold first."""
    program, count, budget = members[0], len(members), options.data_budget
    lone = make_trainer(program, len(train[0]), program.epochs)
    group_budget = group_data_budget(program, len(train[0]), budget, count)
    if (count == 1 or lone.per_step or program.init is not None or lone.on_plateau
            or (group_budget is not None and train[0].nbytes + train[1].nbytes > group_budget)):
        guard_memory(program, prepared, budget)
        return _one_by_one(members, train, val, options, indices)
    mesh = member_mesh(options.devices, count)
    guard_memory(program, prepared, group_budget, members=count)
    with sweepsave.group_save(options, indices[0], members) as saved:
        return _vmapped(members, train, val, options, saved, mesh)


def _without_numbers(program: ir.Program) -> ir.Program:
    """The program with every value members of a group may differ in set to one value."""
    keeps = dropout_keeps(program)

    def layers(tree: tuple[ir.Layer, ...]) -> tuple[ir.Layer, ...]:
        return tuple(dataclasses.replace(layer, args={**layer.args, "rate": 0.0} if layer.name in keeps else
                                         measures.without_penalties(layer.args), body=layers(layer.body))
                     for layer in tree)

    opt = program.optimizer
    args = {k: 0.0 if _number(v) or k == "clip" else v for k, v in opt.args.items()}
    return dataclasses.replace(program, seed=0, source="", layers=layers(program.layers),
                               optimizer=dataclasses.replace(opt, args=args))


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _one_by_one(members: list[ir.Program], train, val, options: FitOptions, indices: list[int]) -> list[Outcome]:
    """Each member through the ordinary path, as `Session.fit` trains it (checkpointed as a single
    run when the sweep is); `on_epoch` told its place in the group as `member`."""
    outcomes: list[Outcome] = []
    for i, (program, index) in enumerate(zip(members, indices, strict=True)):
        trainer = make_trainer(program, len(train[0]), program.epochs, options.devices)
        told = options if options.on_epoch is None else dataclasses.replace(
            options, on_epoch=lambda epoch, logs, i=i: options.on_epoch(epoch, {"member": i, **logs}))
        try:
            with sweepsave.member_save(options, index, program, trainer) as (checkpoints, restored):
                resume = None
                if restored is None:
                    state = init_state(trainer, program.input_shape, program.seed)
                    state, _ = start_from_run(state, program, trainer.tx)
                else:
                    state, best, progress = restored
                    resume = (progress, best)
                outcomes.append(fit(trainer, state, train, val, told, checkpointer=checkpoints, resume=resume))
        except Diverged as diverged:
            outcomes.append(diverged)
        except Interrupted as stop:
            histories = [o.history for o in outcomes] + [stop.history]
            raise MembersInterrupted(stop.epoch, histories + [[] for _ in members[len(histories):]]) from None
    return outcomes


def fit_members(owners: list, x: Any, y: Any, validation_data: Any, options: FitOptions) -> list:
    """`Session.fit` for every member of a sweep (each the `SpecOwner` of its written-out spec), in
    their order: the member's trained `Session`, or the `Diverged` its lone run would raise. Each
    member's data is prepared as its lone run prepares it; members whose prepared data is the same
    (a split that does not depend on their seed, or the same seed) train together."""
    from dlc.runtime.session import Session

    prepared = [Session.prepare(owner, x, y, validation_data, options) for owner in owners]
    if options.data_budget is None:  # as `Session.fit` sets it
        options = dataclasses.replace(options, data_budget=device_data_budget())
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
        try:
            outcomes = train_members([prepared[i][0] for i in group], (data.train.x, data.train.y), val, options,
                                     group, data)
        except MembersInterrupted as stop:
            histories = [[] if d is None else d.history for d in done]
            for i, history in zip(group, stop.histories, strict=True):
                histories[i] = history
            raise MembersInterrupted(stop.epoch, histories) from None
        for i, outcome in zip(group, outcomes, strict=True):
            program, member_data, arrays = prepared[i]
            if isinstance(outcome, Diverged):
                done[i] = outcome
                continue
            # Evaluated, and written, on one device, wherever it trained (a slice of the members'
            # mesh, or replicated over a data-parallel one).
            trainer = make_trainer(program, len(member_data.train.x), program.epochs)
            state = jax.device_put(outcome.state, jax.devices()[0])
            done[i] = Session(owners[i], program, trainer, state, member_data, outcome, arrays)
    return done


def _same_split(a, b) -> bool:
    """Whether two members' prepared data are the same arrays, part by part."""
    parts = [(a.train, b.train), (a.val, b.val), (a.test, b.test)]
    return all((p is None) == (q is None) and (p is None or (np.array_equal(p.x, q.x) and np.array_equal(p.y, q.y)))
               for p, q in parts) and a.normalization == b.normalization and a.labels == b.labels
