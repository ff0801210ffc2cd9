"""From AST to checked IR (registry, checker, diagnostics) and on to Flax/Optax (lowering)."""
