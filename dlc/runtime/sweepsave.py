"""Checkpoints of a sweep, for `dlc run SWEEP --resume`: under the checkpoint folder, a folder per
group trained as one program (`group-I`, I its first member's index: the group's stacked state,
every member's progress, which members still train, which diverged), and one per member trained
through the ordinary path (`member-I`: a single run's checkpoints). Each is a
`checkpoints.TrainingCheckpoints`: written after epochs as a single run's are, the newest complete
step read back, a step of another spec, seed or number of epochs refused."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dlc.compiler import ir
from dlc.runtime.checkpoints import TrainingCheckpoints, _damage, refuse_linked_folder
from dlc.runtime.identity import resume_changes, run_identity, spec_sha256
from dlc.runtime.options import FitOptions
from dlc.runtime.stopping import Diverged, Progress
from dlc.runtime.storage import is_step


def _number(value: float) -> float | str:
    """A float as JSON holds it: the ones that are not finite as their names."""
    return value if math.isfinite(value) else repr(value)


def _read_number(value: Any) -> float:
    if isinstance(value, str) and value in ("nan", "inf", "-inf"):
        return float(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    raise ValueError(f"{value!r} is not a number")


@dataclass
class GroupProgress:
    """The host side of a group between epochs: with the members' seeds, all a resumed group needs
    to go on exactly where it stopped."""

    members: list[Progress]  # each member's, as a single run's
    start: list[float]  # each member's loss before the first update (the divergence guard's baseline)
    epoch: int = 0  # epochs the group ran
    active: list[bool] = field(default_factory=list)  # still training
    stopped: list[bool] = field(default_factory=list)  # stopped early
    diverged: list[Diverged | None] = field(default_factory=list)

    @classmethod
    def new(cls, start_losses) -> GroupProgress:
        count = len(start_losses)
        return cls([Progress() for _ in range(count)], [float(v) for v in start_losses], 0, [True] * count,
                   [False] * count, [None] * count)

    def to_json(self) -> dict:
        def diverged(d: Diverged | None) -> dict | None:
            return None if d is None else {"epoch": d.epoch, "quantity": d.quantity, "value": _number(d.value),
                                           "start": None if d.start is None else _number(d.start),
                                           "row": {k: _number(v) for k, v in d.history[-1].items()}}

        return {"epoch": self.epoch, "members": [m.to_json() for m in self.members],
                "start": [_number(v) for v in self.start], "active": list(self.active),
                "stopped": list(self.stopped), "diverged": [diverged(d) for d in self.diverged]}

    @classmethod
    def from_json(cls, meta: dict) -> GroupProgress:
        members = [Progress.from_json(m) for m in meta["members"]]
        diverged = [None if d is None else Diverged(
            d["epoch"], d["quantity"], _read_number(d["value"]),
            members[i].history + [{k: _read_number(v) for k, v in d["row"].items()}],
            None if d["start"] is None else _read_number(d["start"])) for i, d in enumerate(meta["diverged"])]
        return cls(members, [_read_number(v) for v in meta["start"]], int(meta["epoch"]), list(meta["active"]),
                   list(meta["stopped"]), diverged)


def group_damage(meta: object, step: int) -> str | None:
    """What is wrong with a group step's record read back from disk, or None."""
    if not isinstance(meta, dict) or meta.get("epoch") != step or not isinstance(meta.get("has_best"), bool):
        return f"`meta` does not hold the {step} epochs of its step"
    members = meta.get("members")
    if not isinstance(members, list) or not members:
        return "`meta.members` is not a list of members"
    for name in ("start", "active", "stopped", "diverged"):
        if not isinstance(meta.get(name), list) or len(meta[name]) != len(members):
            return f"`meta.{name}` does not hold one entry per member"
    for i, member in enumerate(members):
        epoch = member.get("epoch") if isinstance(member, dict) else None
        if not isinstance(epoch, int) or isinstance(epoch, bool) or not 0 <= epoch <= step:
            return f"`meta.members[{i}].epoch` is not a count up to {step}"
        if (problem := _damage({**member, "has_best": False}, epoch)) is not None:
            return f"member {i}: {problem}"
    try:
        GroupProgress.from_json(meta)
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as e:
        return f"`meta` is not a group's progress ({e})"
    if not all(isinstance(v, bool) for v in meta["active"] + meta["stopped"]):
        return "`meta.active` or `meta.stopped` is not true or false"
    return None


class GroupSave:
    """A group's checkpoints: its folder's `TrainingCheckpoints`, and the identity a step must
    hold to be resumed (the members' written-out specs, their seeds, the number of epochs)."""

    def __init__(self, checkpoints: TrainingCheckpoints):
        self.checkpoints = checkpoints

    def save(self, states, best, progress: GroupProgress, force: bool) -> None:
        self.checkpoints.save(states, best, progress, force=force)

    def restore(self, abstract) -> tuple[Any, Any, GroupProgress] | None:
        """The newest complete step as (stacked state, best weights or None, progress); None when
        the folder holds none (a group that had not finished an epoch: it starts afresh)."""
        if not _has_steps(self.checkpoints.folder):
            return None
        return self.checkpoints.restore(abstract, same_run(self.checkpoints.identity), group_damage,
                                        GroupProgress.from_json)


def _has_steps(folder: Path) -> bool:
    return folder.is_dir() and any(is_step(p) for p in folder.iterdir())


def same_run(identity: dict):
    """The check `TrainingCheckpoints.restore` makes of a step's record: a ResumeError naming what
    changed since the sweep started."""
    from dlc.runtime.session import ResumeError

    def check(meta: dict) -> None:
        changed = resume_changes(meta, identity)
        if changed:
            raise ResumeError(f"cannot resume: {', '.join(changed)} changed since the sweep started")

    return check


def group_identity(members: list[ir.Program]) -> dict:
    return {"spec_sha256": spec_sha256("\n".join(m.source for m in members)), "seed": [m.seed for m in members],
            "epochs": members[0].epochs}


@contextlib.contextmanager
def held(options: FitOptions) -> Iterator[None]:
    """The sweep's checkpoint folder, made and locked for as long as its members train (one writer,
    as `Session.fit` holds a run's); nothing when it keeps none."""
    from dlc.runtime.runlock import RunLock
    from dlc.runtime.storage import StorageError

    folder = options.checkpoint_dir
    if folder is None:
        yield
        return
    refuse_linked_folder(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        lock = RunLock(folder).acquire()
    except OSError as e:
        raise StorageError(f"cannot lock the checkpoint folder `{folder}`: {e.strerror or e}; nothing was trained "
                           "or written") from None
    try:
        yield
    finally:
        lock.release()


@contextlib.contextmanager
def group_save(options: FitOptions, first: int, members: list[ir.Program]) -> Iterator[GroupSave | None]:
    """The checkpoints of the group whose first member is member `first` of the sweep, closed
    (its last save waited for) when the group is done; None without a checkpoint folder."""
    if options.checkpoint_dir is None:
        yield None
        return
    checkpoints = TrainingCheckpoints(options.checkpoint_dir / f"group-{first}", group_identity(members),
                                      options.checkpoint_interval)
    try:
        yield GroupSave(checkpoints)
    finally:
        checkpoints.close()


@contextlib.contextmanager
def member_save(options: FitOptions, index: int, program: ir.Program, trainer
                ) -> Iterator[tuple[TrainingCheckpoints | None, tuple | None]]:
    """A member trained through the ordinary path: its checkpoints (a single run's, in `member-I`),
    and what `loop.fit` resumes from (progress and best weights) with the state restored."""
    if options.checkpoint_dir is None:
        yield None, None
        return
    from dlc.runtime.session import Session

    identity = run_identity(program.source, program.seed, program.epochs)
    checkpoints = TrainingCheckpoints(options.checkpoint_dir / f"member-{index}", identity,
                                      options.checkpoint_interval)
    try:
        restored = Session.resume_from(checkpoints, trainer, program, identity) \
            if options.resume and _has_steps(checkpoints.folder) else None
        yield checkpoints, restored
    finally:
        checkpoints.close()


def saved_any(folder: Path) -> bool:
    """Whether a sweep's checkpoint folder holds a complete step of any group or member."""
    return folder.is_dir() and any(_has_steps(p) for p in folder.iterdir() if p.is_dir() and not p.is_symlink())
