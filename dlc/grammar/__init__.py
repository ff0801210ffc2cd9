"""Front end: text to AST. Pure Python and lark; never imports NumPy or JAX."""
