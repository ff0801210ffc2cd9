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

__version__ = "0.1.0"

from dlc.api import Program, SpecError, compile, load, load_run  # noqa: E402

__all__ = ["Program", "SpecError", "compile", "load", "load_run", "__version__"]
