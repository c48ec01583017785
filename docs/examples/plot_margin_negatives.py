"""
=====================================================
The margin and the number of negatives
=====================================================

Three settings of the training objective, each against the recall@20 of a
validation part of every user's items, on synthetic data:

- ``margin``, the margin of the paper's triplet hinge, in squared distance.
  It applies to ``loss="hinge"`` only (the default ``loss="softmax"`` has a
  ``temperature`` instead), so these fits use the hinge.
- ``n_negatives``, the items drawn per (user, item) pair to find impostors
  and estimate the item's rank, with ``solver="hogwild"`` (the paper's
  per-pair SGD), also with the hinge.
- ``pool_size``, the negatives drawn per block of pairs and shared by all
  of them, with ``solver="block"`` (the default), with its default softmax
  loss. ``n_negatives`` does not apply to this solver.

Every vector lives in the ball of radius ``max_norm`` (1 here), so two
vectors are at most 4 apart in squared distance: a margin near that asks
for the impossible, and one near 0 pushes nothing away.
"""

import matplotlib.pyplot as plt

from sklearn_cml import CMLRecommender
from sklearn_cml.datasets import make_interactions
from sklearn_cml.metrics import recall_at_k
from sklearn_cml.model_selection import train_test_split

X = make_interactions(n_users=1500, n_items=600, mean_interactions=15, random_state=0)
X_train, X_valid = train_test_split(X, test_size=0.2, random_state=0)


def validation_recall(**params):
    """Recall@20 of the validation items, ranking all the others but the training ones."""
    model = CMLRecommender(n_components=32, n_epochs=20, random_state=0, **params)
    model.fit(X_train)
    return recall_at_k(X_valid, model, k=20, exclude=X_train)


margins = [0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0]
by_margin = [validation_recall(loss="hinge", margin=m) for m in margins]

negatives = [1, 2, 5, 10, 20, 50]
by_negatives = [
    validation_recall(loss="hinge", solver="hogwild", n_negatives=n) for n in negatives
]

pools = [16, 64, 256, 1024, 2048]
by_pool = [validation_recall(solver="block", pool_size=p) for p in pools]

for name, values, scores in [("margin", margins, by_margin),
                             ("n_negatives", negatives, by_negatives),
                             ("pool_size", pools, by_pool)]:
    print(name, " ".join(f"{v}: {s:.3f}" for v, s in zip(values, scores)))

# %%
# The three curves
# ----------------
fig, axes = plt.subplots(1, 3, figsize=(13, 4), sharey=True)
panels = [
    (margins, by_margin, "margin (loss='hinge')", "linear"),
    (negatives, by_negatives, "n_negatives (solver='hogwild', loss='hinge')", "log"),
    (pools, by_pool, "pool_size (solver='block', loss='softmax')", "log"),
]
for ax, (values, scores, label, scale) in zip(axes, panels):
    ax.plot(values, scores, marker="o")
    ax.set_xscale(scale)
    ax.set(xlabel=label, title=f"Validation recall against {label.split()[0]}")
    ax.grid(alpha=0.3)
axes[0].axvline(1.0, color="0.5", linestyle=":", label="default margin")
axes[0].legend(loc="lower right")
axes[0].set_ylabel("validation recall@20")
fig.suptitle("Synthetic data, 1,500 users x 600 items, 20 epochs each")
fig.tight_layout()
plt.show()
