"""AST to canonical text: one statement per line, blocks indented, floats in Python's
shortest round-trip form. `parse(print_spec(ast))` equals `ast`.

A `layer` word the source wrote is kept: it changes meaning (`layer optimizer adam` is an
unknown layer, `optimizer adam` a setting), so dropping it could turn an error into a valid spec."""

from __future__ import annotations

from dlc.grammar import nodes as n


def print_value(value: n.Value) -> str:
    match value:
        case n.Bool(value=v):
            return "true" if v else "false"
        case n.Int(value=v):
            return str(v)
        case n.Float(value=v):
            return repr(float(v))
        case n.Shape(dims=dims):
            return "x".join(str(d) for d in dims)
        case n.Str(value=v):
            return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
        case n.Name(value=v):
            return v
        case n.List(items=items):
            return "[" + ", ".join(print_value(i) for i in items) + "]"
    raise TypeError(f"not a value: {value!r}")


def print_statement(statement: n.Node, indent: int = 0) -> str:
    if isinstance(statement, n.Broken):
        raise ValueError("a spec with syntax errors has no canonical form")
    pad = "  " * indent
    words = [*(["layer"] if statement.layer_prefix else []), statement.keyword,
             *(print_value(v) for v in statement.positionals),
             *(f"{o.name}={print_value(o.value)}" for o in statement.options)]
    line = pad + " ".join(words)
    if statement.block is None:
        return line
    if not statement.block:
        return line + " {}"
    inner = "\n".join(print_statement(s, indent + 1) for s in statement.block)
    return f"{line} {{\n{inner}\n{pad}}}"


def print_spec(spec: n.Spec) -> str:
    return "".join(print_statement(s) + "\n" for s in spec.statements)
