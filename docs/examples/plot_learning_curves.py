"""
===========================================
Learning curves and early stopping
===========================================

With ``early_stopping=True``, ``fit`` holds out ``validation_fraction`` of
each user's items, measures their recall@``top_k`` after every epoch
(``validation_scores_``), stops when it has not improved by more than
``tol`` for ``n_iter_no_change`` epochs, and keeps the vectors of the best
epoch (``best_epoch_``). ``loss_curve_`` records the mean training loss of
every epoch that ran.

Here the validation recall levels off within a few epochs while the
training loss goes on falling slowly: the later epochs fit the training
pairs a little better without ranking the held-out items higher. Early
stopping ends the run once ``n_iter_no_change`` epochs have brought no gain
above ``tol``, and the model keeps the best epoch's vectors, not the last.
"""

import matplotlib.pyplot as plt
import numpy as np

from sklearn_cml import CMLRecommender
from sklearn_cml.datasets import make_interactions

X = make_interactions(n_users=2000, n_items=1000, mean_interactions=15, random_state=0)

model = CMLRecommender(
    n_components=32,
    n_epochs=100,
    early_stopping=True,
    validation_fraction=0.2,
    n_iter_no_change=8,
    top_k=20,
    random_state=0,
).fit(X)
print(f"ran {model.n_iter_} epochs; best validation recall@20 "
      f"{model.best_validation_score_:.3f} at epoch {model.best_epoch_}, whose vectors are kept")

# %%
# The two curves, epoch by epoch
# ------------------------------
epochs = np.arange(1, model.n_iter_ + 1)
fig, (ax_loss, ax_recall) = plt.subplots(1, 2, figsize=(10, 4))

ax_loss.plot(epochs, model.loss_curve_, marker=".", color="tab:blue")
ax_loss.set(title="Training loss (loss_curve_)", xlabel="epoch",
            ylabel="mean embedding loss per pair")

ax_recall.plot(epochs, model.validation_scores_, marker=".", color="tab:green",
               label="validation recall@20")
ax_recall.axvline(model.best_epoch_, color="black", linestyle="--",
                  label=f"best epoch ({model.best_epoch_}): vectors kept")
ax_recall.axvspan(model.best_epoch_, model.n_iter_, color="0.9",
                  label=f"{model.n_iter_no_change} epochs without gain: stop")
ax_recall.set(title="Validation recall (validation_scores_)", xlabel="epoch",
              ylabel="recall@20 of the held-out 20%")
ax_recall.legend(loc="lower right")
for ax in (ax_loss, ax_recall):
    ax.grid(alpha=0.3)
fig.suptitle("Early stopping on synthetic data (2,000 users, 1,000 items)")
fig.tight_layout()
plt.show()
