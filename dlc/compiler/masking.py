"""Where the padding mask of token input goes: which layer's input makes it, which layers are
given it, and after which ones the padding steps are set to zeros. Pure Python over the IR and the
registry's flags (`takes_tokens`, `steps_kept`, `masked`), so the lowering and `--emit py` follow one
plan, and the same text with more padding gives the same outputs (tests/runtime/test_embedding.py).

The mask is true at every step up to each sequence's last token that is not 0. It starts at the
layer that takes the tokens and travels while each layer keeps the steps in place; the first layer
that does not (a `padding=valid` convolution, a pool, a recurrent layer giving its last output)
drops it. While it travels, the padding steps of each layer's output are zeros: what a
`padding=same` convolution pads with, so that it too sees the same numbers however long the
padding. A model in which no layer takes the mask makes none."""

from __future__ import annotations

from dataclasses import dataclass

from dlc.compiler import ir
from dlc.compiler import registry as reg


@dataclass(frozen=True)
class MaskPlan:
    start: str | None  # the layer whose input (the token ids) makes the mask; None: no mask
    given: frozenset[str] = frozenset()  # the layers whose `apply` gets the mask
    zeroed: frozenset[str] = frozenset()  # the layers whose output has its padding steps set to zeros


def plan(layers: tuple[ir.Layer, ...]) -> MaskPlan:
    start, alive, given, zeroed = None, False, set(), set()
    for leaf in ir.leaves(layers):
        entry = reg.layer(leaf.kind)
        if entry.takes_tokens is not None:
            start, alive = leaf.name, True
        elif alive and entry.masked:
            given.add(leaf.name)
        alive = alive and entry.steps_kept is not None and entry.steps_kept(leaf.args)
        if alive:
            zeroed.add(leaf.name)
    return MaskPlan(start, frozenset(given), frozenset(zeroed)) if given else MaskPlan(None)


def build_args(layer: ir.Layer, mask: MaskPlan, name: str | None = "") -> dict:
    """What a layer's builder and `code` get: its arguments, its name (`name`, when given, in place
    of the layer's), and for a layer that takes the padding mask whether it is given one."""
    args = {**layer.args, "name": layer.name if name == "" else name}
    return {**args, "masked": layer.name in mask.given} if reg.layer(layer.kind).masked else args
