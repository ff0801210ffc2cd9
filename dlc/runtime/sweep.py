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
import warnings
from typing import Any

import numpy as np

from dlc.compiler import ir
from dlc.compiler.lower import dropout_keeps
from dlc.runtime import measures, sweepsave
from dlc.runtime.data import Prepared, Split
from dlc.runtime.devices import member_mesh, on_this_device
from dlc.runtime.distributed import least, same_everywhere, together
from dlc.runtime.loop import fit
from dlc.runtime.memory import device_data_budget, group_data_budget, guard_memory
from dlc.runtime.options import FitOptions
from dlc.runtime.stopping import Diverged, Interrupted
from dlc.runtime.sweepgroup import MembersInterrupted, Outcome
from dlc.runtime.sweepgroup import vmapped as _vmapped
from dlc.runtime.train import init_state, make_trainer
from dlc.runtime.transfer import start_from_run


class SweepWarning(UserWarning):
    """Members one program could train that train one after another (slower, the same histories)."""


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
    splits = {"train": Split(*train), "val": None if val is None else Split(*val)}
    prepared = Prepared(**splits, test=None, normalization={}, labels=None) if prepared is None else \
        dataclasses.replace(prepared, **splits)
    return _train_all(members, [prepared] * len(members), options, indices)


def _train_all(members: list[ir.Program], data: list[Prepared], options: FitOptions,
               indices: list[int] | None = None) -> list[Outcome]:
    """`train_members` with each member's own prepared data (`data[i]`, the same object for
    members that share theirs): a group whose members' data differ (a split drawn from each seed)
    trains on its members' data stacked on a member axis."""
    indices = list(range(len(members))) if indices is None else indices
    outcomes: list[Outcome | None] = [None] * len(members)
    for group in _groups(members, data):
        try:
            with sweepsave.held(options):
                trained = _train_group([members[i] for i in group], [data[i] for i in group],
                                       _told_as(options, [indices[i] for i in group]), [indices[i] for i in group])
        except MembersInterrupted as stop:
            histories = [[] if o is None else o.history for o in outcomes]
            for i, history in zip(group, stop.histories, strict=True):
                histories[i] = history
            raise MembersInterrupted(stop.epoch, histories) from None
        for i, outcome in zip(group, trained, strict=True):
            outcomes[i] = outcome
    return outcomes


def _groups(members: list[ir.Program], data: list[Prepared] | None = None) -> list[list[int]]:
    """The indices of the members that one vmapped program can train together, in order: the same
    program but for its numbers, on data of the same shapes (default: one split for all)."""
    keys: list[tuple] = []
    groups: list[list[int]] = []
    for i, member in enumerate(members):
        key = (_without_numbers(member), None if data is None else _shapes(data[i]))
        if key in keys:
            groups[keys.index(key)].append(i)
        else:
            keys.append(key)
            groups.append([i])
    return groups


def _shapes(data: Prepared) -> tuple:
    """The shapes and dtypes of a member's training and validation arrays (what one vmapped program
    is traced for)."""
    return tuple(None if s is None else (s.x.shape, s.x.dtype.str, s.y.shape, s.y.dtype.str)
                 for s in (data.train, data.val))


def _told_as(options: FitOptions, indices: list[int]) -> FitOptions:
    """The options with `on_epoch` told a group's member `i` as member `indices[i]` of the sweep."""
    if options.on_epoch is None:
        return options
    on_epoch = options.on_epoch
    return dataclasses.replace(options, on_epoch=lambda epoch, logs: on_epoch(epoch, {
        **logs, "member": indices[logs["member"]]}))


def _train_group(members: list[ir.Program], data: list[Prepared], options: FitOptions,
                 indices: list[int]) -> list[Outcome]:
    """One vmapped program where it pays; one member after another through the ordinary path where
    the group would need what the vmapped epoch does not do (a single member, whose batches
    several devices split; convolutions on a CPU, which train one compiled step per batch; data
    streamed from the host, which a group needs sooner than one run, its members' states taking
    room from the data, and members' own splits K times the room of one; `init` from a run).
    With several devices a group's members are split over them. Either way the memory guard
    counts what it will hold first."""
    program, count, budget, first = members[0], len(members), options.data_budget, data[0]
    own = any(d is not first for d in data)  # each member on its own split: K copies of the data
    n = len(first.train.x)
    lone = make_trainer(program, n, program.epochs)
    group_budget = group_data_budget(program, n, budget, count)
    data_bytes = (first.train.x.nbytes + first.train.y.nbytes) * (count if own else 1)
    crowded = count > 1 and group_budget is not None and data_bytes > group_budget
    if crowded:
        warnings.warn(SweepWarning(
            f"{count} sweep members train one after another, not as one program: "
            f"{'their own splits' if own else 'the training data'} ({data_bytes / 2**20:.1f} MiB"
            f"{f' = {count} x one split' if own else ''}) would not fit on the device beside their states "
            f"({group_budget / 2**20:.1f} MiB left for data)"), stacklevel=2)
    if count == 1 or lone.per_step or program.init is not None or lone.on_plateau or crowded:
        with together():  # in a distributed run, a refusal on one process stops every process
            guard_memory(program, first, budget)
        return _one_by_one(members, data, options, indices)
    with together():
        mesh = member_mesh(options.devices, count)
        guard_memory(program, first, group_budget, members=count, data_copies=count if own else 1)
    if own:
        train = (np.stack([d.train.x for d in data]), np.stack([d.train.y for d in data]))
        val = None if first.val is None else (np.stack([d.val.x for d in data]), np.stack([d.val.y for d in data]))
    else:
        train, val = (first.train.x, first.train.y), None if first.val is None else (first.val.x, first.val.y)
    with sweepsave.group_save(options, indices[0], members) as saved:
        return _vmapped(members, train, val, options, saved, mesh, own)


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
                               optimizer=dataclasses.replace(opt, args=args),
                               class_weights=program.class_weights and (1.0,) * len(program.class_weights))


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _one_by_one(members: list[ir.Program], data: list[Prepared], options: FitOptions,
                indices: list[int]) -> list[Outcome]:
    """Each member through the ordinary path on its own data, as `Session.fit` trains it
    (checkpointed as a single run when the sweep is); `on_epoch` told its place in the group as
    `member`."""
    outcomes: list[Outcome] = []
    for i, (program, index, own) in enumerate(zip(members, indices, data, strict=True)):
        train, val = (own.train.x, own.train.y), None if own.val is None else (own.val.x, own.val.y)
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
    member's data is prepared as its lone run prepares it; members whose splits have the same
    shapes train together, each on its own split (stacked on the member axis), and members whose
    prepared data is the same (a split that does not depend on their seed, or the same seed) share
    one copy of it."""
    from dlc.runtime.session import Session

    with together():  # in a distributed run, a process that cannot start stops every process
        prepared = [Session.prepare(owner, x, y, validation_data, options) for owner in owners]
        budget = options.data_budget if options.data_budget is not None else device_data_budget()
    same_everywhere("".join(p.source for p, _, _ in prepared), *(a for _, d, _ in prepared for a in d.arrays()))
    options = dataclasses.replace(options, data_budget=least(budget))  # as `Session.fit` sets it
    data: list[Prepared] = []
    for _, member_data, _ in prepared:
        data.append(next((d for d in data if _same_split(d, member_data)), member_data))
    outcomes = _train_all([p[0] for p in prepared], data, options)
    done: list = []
    for owner, (program, member_data, arrays), outcome in zip(owners, prepared, outcomes, strict=True):
        if isinstance(outcome, Diverged):
            done.append(outcome)
            continue
        # Evaluated, and written, on one device, wherever it trained (a slice of the members'
        # mesh, or replicated over a data-parallel one).
        trainer = make_trainer(program, len(member_data.train.x), program.epochs)
        state = on_this_device(outcome.state)
        done.append(Session(owner, program, trainer, state, member_data, outcome, arrays))
    return done


def _same_split(a, b) -> bool:
    """Whether two members' prepared data are the same arrays, part by part."""
    parts = [(a.train, b.train), (a.val, b.val), (a.test, b.test)]
    return all((p is None) == (q is None) and (p is None or (np.array_equal(p.x, q.x) and np.array_equal(p.y, q.y)))
               for p, q in parts) and a.normalization == b.normalization and a.labels == b.labels
