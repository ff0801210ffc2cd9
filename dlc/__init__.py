"""dlc: a declarative deep-learning model-spec compiler.

    import dlc
    program = dlc.load("specs/mlp.dl")        # or dlc.compile("input 64; dense 10 softmax; ...")
    print(program.summary())
    history = program.fit()                   # the spec's `data`, or fit(x, y)
    program.evaluate(x_test, y_test), program.predict(x_new)

An invalid spec raises `dlc.SpecError`, a ValueError whose `diagnostics` hold what `dlc check`
would print. Importing dlc (and checking specs) never imports JAX; training does.
"""

from __future__ import annotations

from dlc.version import __version__

__all__ = ["Program", "SpecError", "SpecWarning", "compile", "load", "load_run", "__version__",
           "DataError", "DataWarning", "Diverged", "Interrupted", "MemoryGuardError", "RunLockedError"]

_API = ("Program", "SpecError", "SpecWarning", "compile", "load", "load_run")


def __getattr__(name: str):
    """Everything loads on first use: the API (so that `dlc` the command starts in milliseconds and
    installs its Ctrl-C handling before any import it could interrupt), and the errors raised while
    training, which live with the runtime and its JAX (so that `import dlc` and checking stay
    JAX-free)."""
    if name in _API:
        from dlc import api

        return getattr(api, name)
    if name == "RunLockedError":
        from dlc.runtime.runlock import RunLockedError

        return RunLockedError
    if name in ("DataError", "DataWarning"):
        from dlc.runtime import data, sources

        return sources.DataError if name == "DataError" else data.DataWarning
    if name in ("Diverged", "Interrupted"):
        from dlc.runtime import stopping

        return stopping.Diverged if name == "Diverged" else stopping.Interrupted
    if name == "MemoryGuardError":
        from dlc.runtime.memory import MemoryGuardError

        return MemoryGuardError
    raise AttributeError(f"module 'dlc' has no attribute {name!r}")
