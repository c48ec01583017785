"""LightFM with the WARP loss (``lightfm`` module of the ``lightfm-next`` package).

Grid: learning rate x L2 penalty around the defaults (learning rate 0.05, no
penalty): learning rate 0.025 or 0.05, ``item_alpha = user_alpha`` 0 or 1e-4.
A pilot on both validation splits found 0.1 too fast (worse by epoch 5), 0.05
over-fitting after about 10 epochs unless penalised, and penalties of 1e-6
to 1e-5 making no difference while 1e-3 is far too strong.  AdaGrad
schedule and ``max_sampled=10`` (the defaults).  Without user or item
features LightFM learns one vector and one bias per user and item; a pair's
score is ``user . item + item_bias`` (the user bias does not change a
user's ranking).
"""

from importlib import metadata

from ._scores import dot_product_scores

NAME = "LightFM WARP"
SCHEDULE = "sgd"
GRID = tuple(
    {"learning_rate": learning_rate, "alpha": alpha}
    for learning_rate in (0.025, 0.05)
    for alpha in (0.0, 1e-4)
)


def missing():
    try:
        import lightfm  # noqa: F401
    except ImportError as error:
        return f"lightfm is not importable ({error})"
    return None


def version():
    try:
        return metadata.version("lightfm-next")
    except metadata.PackageNotFoundError:
        return metadata.version("lightfm")


def warm_up(threads):
    """Nothing to compile."""


def train(X, setting, *, n_components, threads, n_epochs, random_state, after_epoch):
    """One ``fit_partial(epochs=1)`` per epoch on a COO copy made once."""
    from lightfm import LightFM

    interactions = X.tocoo()
    model = LightFM(no_components=n_components, loss="warp",
                    learning_rate=setting["learning_rate"], item_alpha=setting["alpha"],
                    user_alpha=setting["alpha"], random_state=random_state)

    def snapshot():
        return dot_product_scores(model.user_embeddings, model.item_embeddings,
                                  model.item_biases)

    for epoch in range(1, n_epochs + 1):
        model.fit_partial(interactions, epochs=1, num_threads=threads)
        after_epoch(epoch, snapshot)
