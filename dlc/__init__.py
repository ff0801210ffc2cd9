"""dlc: a declarative deep-learning model-spec compiler.

    program = dlc.load("specs/mlp.dl")   # or dlc.compile("input 64; dense 10 softmax; ...")
    print(program.summary())

An invalid spec raises `dlc.SpecError`, a ValueError whose `diagnostics` hold what
`dlc check` would print.
"""

from __future__ import annotations

__version__ = "0.1.0"
