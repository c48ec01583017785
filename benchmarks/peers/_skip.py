"""How a peer says it cannot run on a dataset (see ``peers/__init__.py``)."""


class Skipped(Exception):
    """Raised by a peer's ``train`` when it cannot run on the data it was given.

    The message says why (for example ``"needs 9.7 GB, 3.1 GB available"``).
    ``compare.py`` reports the model as skipped on that dataset and carries
    on with the next model; ``missing()`` is for reasons that hold whatever
    the data (a library that is not installed).
    """
