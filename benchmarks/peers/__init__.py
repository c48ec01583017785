"""One small module per model family, all with the same interface.

``benchmarks/compare.py`` drives every model through these names:

``NAME``
    Label in the results.
``SCHEDULE``
    Which epoch budget of the suite applies: ``"sgd"`` (one epoch is one pass
    over the training pairs), ``"als"`` (one epoch is one ALS sweep) or
    ``"none"`` (nothing to train).
``GRID``
    The settings tried on the validation split (at most 4), a tuple of dicts.
``missing()``
    None when the model can run, else why not (for example, its library is
    not installed).
``version()``
    Version of the library that trains the model.
``warm_up(threads)``
    One-off work that must not be timed (JIT compilation); may do nothing.
``train(X, setting, *, n_components, threads, n_epochs, random_state, after_epoch)``
    Train on the CSR matrix ``X`` for ``n_epochs`` epochs and call
    ``after_epoch(epoch, snapshot)`` after each one (1-based).
    ``snapshot()`` copies the current parameters and returns a score function
    of an int array of user indices -> (n, n_items) scores, higher is
    better, for ``sklearn_cml.metrics.ranking_metrics``.  The caller stops
    its training clock while ``after_epoch`` runs.  A model that cannot run
    on this data (EASE: its n_items x n_items matrix does not fit in memory)
    raises ``Skipped`` with the reason, before training; the caller reports
    it as skipped on that dataset and goes on.

The models: CMLRecommender with every default, one ``fit`` as a user
runs it (``cml_defaults``), CMLRecommender tuned epoch by epoch
(``cml``), LightFM WARP (``lightfm_warp``),
implicit's BPR and ALS (``implicit_models``), EASE (``ease``, a closed form
over the item-item Gram matrix) and popularity (``popularity``).
"""

from . import cml, cml_defaults, ease, implicit_models, lightfm_warp, popularity
from ._skip import Skipped

# The order of the results tables.
PEERS = (cml_defaults, cml, lightfm_warp, implicit_models.bpr, implicit_models.als, ease,
         popularity)

INSTALL_HINT = "pip install -e '.[bench]'"

__all__ = ["INSTALL_HINT", "PEERS", "Skipped"]
