"""The prologue of a `python -c` script in which `import dlc` fails: what leaves dlc must run without it."""

NO_DLC = r"""
import importlib.abc, sys

class NoDlc(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "dlc" or name.startswith("dlc."):
            raise ImportError(f"code that must run without dlc imported {name}")

sys.meta_path.insert(0, NoDlc())
"""
