"""What a checked program's training computes beyond its layers' outputs, derived once from the IR
and the registry: the kernel penalties by layer, whether (and in what shape) its metrics count a
confusion matrix, whether they rank the whole split's scores. The runtime computes these
(`runtime/measures.py`, `runtime/train.py`) and the emitted program writes them out
(`emit_measures.py`): both read them here, so the two cannot drift apart."""

from __future__ import annotations

from dlc.compiler import ir
from dlc.compiler import registry as reg


def _entries(program: ir.Program) -> list[reg.Metric]:
    return [reg.lookup("metric", name) for name in program.metrics]


def counts_confusion(program: ir.Program) -> bool:
    """Whether a metric of the program is read off the confusion matrix."""
    return any(entry.per_class is not None for entry in _entries(program))


def gathers_rows(program: ir.Program) -> bool:
    """Whether a metric of the program ranks the whole split's scores."""
    return any(entry.ranks for entry in _entries(program))


def confusion_shape(program: ir.Program) -> tuple[int, int, int]:
    """(matrices, truth, prediction): one K x K matrix over the classes of a softmax output, a 2 x 2
    matrix per unit of a binary one."""
    units = program.output_shape[-1]
    return (1, units, units) if program.task == "categorical" else (units, 2, 2)


def penalty_coefficients(program: ir.Program) -> dict[str, tuple[float, float]]:
    """(l1, l2) of each trainable layer that has a penalty, by layer name, in model order."""
    return {leaf.name: (leaf.args.get("l1", 0.0), leaf.args.get("l2", 0.0)) for leaf in ir.leaves(program.layers)
            if not leaf.frozen and (leaf.args.get("l1") or leaf.args.get("l2"))}
