"""nsl-edge: shared, dependency-light pieces (CLI, configuration, labels, errors, file I/O), and the Python API.

    from nsl import train, export, Recognizer      # nsl.api; Recognizer: nsl.edge.image_recognizer.ImageRecognizer

Nothing here imports TensorFlow, so both the train and the edge environment can use it: the API is imported on
first call (``import nsl`` stays light; ``Recognizer`` needs only the edge environment).

``nsl.train`` and ``nsl.export`` are also the stage packages. The names stay the API's functions whatever has been
imported (importing ``nsl.train.run`` would otherwise rebind ``nsl.train`` to the package, and a notebook's second
``from nsl import train`` would get a module): each is an entry that calls the function, and whose attributes are
the package's (``nsl.train.run`` still works; imports go through ``sys.modules`` and are unaffected).
"""

import importlib
import sys
import types

__version__ = "0.1.0"
__all__ = ["train", "export", "resume", "Recognizer", "__version__"]


class _Entry:
    """``nsl.train`` / ``nsl.export``: calls ``nsl.api.<name>``; attribute access reaches the stage package."""

    def __init__(self, name: str):
        self._name = name
        self.__doc__ = f"nsl.api.{name} (attributes: the nsl.{name} package)"

    def __call__(self, *args, **kwargs):
        from nsl import api

        return getattr(api, self._name)(*args, **kwargs)

    def __getattr__(self, attr: str):
        if attr.startswith("__"):
            raise AttributeError(attr)
        return getattr(importlib.import_module(f"{__name__}.{self._name}"), attr)

    def __repr__(self) -> str:
        return f"<function nsl.api.{self._name}>"


class _Package(types.ModuleType):
    def __setattr__(self, name, value):
        if name in ("train", "export") and isinstance(value, types.ModuleType):
            return  # the stage package is in sys.modules; the name stays the API's entry
        super().__setattr__(name, value)


train = _Entry("train")
export = _Entry("export")


def resume(*args, **kwargs):
    """nsl.api.resume: continue an interrupted run."""
    from nsl import api

    return api.resume(*args, **kwargs)


def __getattr__(name: str):
    if name == "Recognizer":
        from nsl.edge.image_recognizer import ImageRecognizer

        return ImageRecognizer
    raise AttributeError(f"module 'nsl' has no attribute {name!r}")


sys.modules[__name__].__class__ = _Package
