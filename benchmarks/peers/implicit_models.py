"""implicit's BPR and ALS (CPU classes), trained with ``fit(callback=...)``.

implicit runs all of its epochs inside one ``fit`` call and calls
``callback`` after each one, so ``after_epoch`` is called from that callback
(the caller's clock is stopped meanwhile).  Calling ``fit`` again per epoch
would not do: with an int ``random_state`` every call would reseed the
samplers and replay the same pairs.

BPR: ``user_factors`` has ``factors + 1`` columns, the last one fixed at 1,
and ``item_factors``' last column is the item bias, so a pair's score is the
plain dot product of the two rows (bias included).  Negatives are drawn from
the training pairs' items, that is in proportion to popularity.  Grid:
learning rate 0.01 (default) or 0.1 x regularization 0.001 or 0.01
(default).  A pilot on both validation splits (learning rates 0.01 to 0.2,
regularization 0.001 to 0.1, 60 epochs) found 0.01 best on MovieLens-1M and
far too slow on CiteULike-a, where 0.1 to 0.2 were still improving at epoch
60; regularization above 0.01 only hurt.

ALS (conjugate-gradient solver, 3 steps): confidence ``alpha * x`` for a
positive entry ``x``, score ``user . item``; one epoch is one sweep (users,
then items).  Grid: regularization 10 or 100 x alpha 10 or 40.  The defaults
(0.01, 1) are far from the best on binary data with 100 factors: a pilot
over regularization 0.01 to 300 and alpha 1 to 40 found the best validation
recall at (100, 10) on MovieLens-1M and (3 to 10, 40) on CiteULike-a.
"""

from importlib import metadata

from ._scores import dot_product_scores


class _ImplicitModel:
    """The peer interface (see ``peers/__init__.py``) for one implicit class."""

    def __init__(self, name, schedule, grid, make):
        self.NAME = name
        self.SCHEDULE = schedule
        self.GRID = grid
        self._make = make

    @staticmethod
    def missing():
        try:
            import implicit.cpu  # noqa: F401
        except ImportError as error:
            return f"implicit is not importable ({error})"
        return None

    @staticmethod
    def version():
        return metadata.version("implicit")

    @staticmethod
    def warm_up(threads):
        """Nothing to compile."""

    def train(self, X, setting, *, n_components, threads, n_epochs, random_state,
              after_epoch):
        """One ``fit`` of ``n_epochs`` epochs, ``after_epoch`` from its callback."""
        model = self._make(setting, factors=n_components, iterations=n_epochs,
                           num_threads=threads, random_state=random_state)

        def snapshot():
            return dot_product_scores(model.user_factors, model.item_factors)

        def callback(epoch, *_):
            after_epoch(epoch + 1, snapshot)

        model.fit(X, show_progress=False, callback=callback)


def _make_bpr(setting, **kwargs):
    from implicit.cpu.bpr import BayesianPersonalizedRanking

    return BayesianPersonalizedRanking(learning_rate=setting["learning_rate"],
                                       regularization=setting["regularization"], **kwargs)


def _make_als(setting, **kwargs):
    from implicit.cpu.als import AlternatingLeastSquares

    return AlternatingLeastSquares(regularization=setting["regularization"],
                                   alpha=setting["alpha"], **kwargs)


bpr = _ImplicitModel(
    "implicit BPR", "sgd",
    tuple({"learning_rate": learning_rate, "regularization": regularization}
          for learning_rate in (0.01, 0.1) for regularization in (0.001, 0.01)),
    _make_bpr,
)
als = _ImplicitModel(
    "implicit ALS", "als",
    tuple({"regularization": regularization, "alpha": alpha}
          for regularization in (10.0, 100.0) for alpha in (10.0, 40.0)),
    _make_als,
)
