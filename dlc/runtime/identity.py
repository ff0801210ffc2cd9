"""What makes a run the same run (standard library only: the CLI asks before JAX is imported):
the spec's hash, and what a resumed run may not change."""

from __future__ import annotations

import hashlib


def spec_sha256(source: str) -> str:
    """The hash of a spec's text, as run.json and every checkpoint record it."""
    return hashlib.sha256(source.encode()).hexdigest()


def run_identity(source: str, seed: int, epochs: int) -> dict:
    """What must match to resume a run: its spec (by hash), its seed and its number of epochs."""
    return {"spec_sha256": spec_sha256(source), "seed": seed, "epochs": epochs}


def resume_changes(started: dict, now: dict) -> list[str]:
    """What differs between a run as it started (`started`, a checkpoint's record) and as it is
    asked to continue (`now`: `run_identity`, or the part of it known), in words: `the spec`,
    `epochs (3 -> 5)`; empty when it may be resumed."""
    return ["the spec" if key == "spec_sha256" else f"{key} ({started.get(key)} -> {now[key]})"
            for key in now if started.get(key) != now[key]]
