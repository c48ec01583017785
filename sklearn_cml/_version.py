"""The package's version, in a module of its own: the build reads it without
importing the package, and modules inside the package without importing
its ``__init__``."""

__version__ = "0.1.0.dev0"
