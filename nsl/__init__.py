"""nsl-edge: shared, dependency-light pieces (CLI, configuration, labels, errors, file I/O).

Nothing in this package imports TensorFlow, so both the train and the edge environment can use it.
"""

__version__ = "0.1.0"
