"""Data, training, checkpoints and run folders: the only part that knows devices and files."""
