"""dlc's version, in a module of its own: the package and the run folders it writes read it."""

__version__ = "0.1.0"
