"""
===============================
The two solvers side by side
===============================

``solver="block"`` (the default) trains on blocks of about ``block_size``
pairs against one pool of ``pool_size`` negatives shared by the block, with
distances and gradients computed as matrix products; it is bitwise
reproducible for a fixed ``random_state`` whatever the number of threads.
``solver="hogwild"`` is the paper's algorithm: SGD on one pair at a time
against ``n_negatives`` draws of its own, threads updating the vectors
without locks.

Both fit the same data here, with the default loss (the softmax) and the
same number of epochs, one epoch at a time (``partial_fit``), and the
held-out recall is measured after each. The time is the training time on
the machine that built this page; each solver first fits a tiny matrix, so
that loading (or compiling) its kernels is not counted.
"""

import time

import matplotlib.pyplot as plt
import numpy as np

from sklearn_cml import CMLRecommender
from sklearn_cml.datasets import make_interactions
from sklearn_cml.metrics import recall_at_k
from sklearn_cml.model_selection import train_test_split

X = make_interactions(n_users=2000, n_items=1000, mean_interactions=20, random_state=0)
X_train, X_test = train_test_split(X, test_size=0.2, random_state=0)
n_epochs = 12

curves = {}
for solver in ["block", "hogwild"]:
    CMLRecommender(n_components=32, solver=solver, n_epochs=1).fit(X_train[:50])  # warm-up
    model = CMLRecommender(n_components=32, solver=solver, n_jobs=2, random_state=0)
    seconds, recalls = [], []
    for _ in range(n_epochs):
        start = time.perf_counter()
        model.partial_fit(X_train)
        seconds.append(time.perf_counter() - start)
        recalls.append(recall_at_k(X_test, model, k=20, exclude=X_train))
    curves[solver] = (np.cumsum(seconds), np.array(recalls))
    print(f"{solver:>8}: recall@20 after {n_epochs} epochs {recalls[-1]:.3f}, "
          f"{np.median(seconds) * 1000:.0f} ms per epoch (median)")

# %%
# Recall per epoch, and per second of training
# --------------------------------------------
fig, (ax_epoch, ax_time) = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
epochs = np.arange(1, n_epochs + 1)
for solver, (elapsed, recalls) in curves.items():
    ax_epoch.plot(epochs, recalls, marker=".", label=f"solver='{solver}'")
    ax_time.plot(elapsed, recalls, marker=".", label=f"solver='{solver}'")
ax_epoch.set(xlabel="epoch", ylabel="test recall@20", title="Held-out recall after each epoch")
ax_time.set(xlabel="training time, seconds (2 threads)", title="The same, against training time")
for ax in (ax_epoch, ax_time):
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
fig.suptitle("Synthetic data, 2,000 users x 1,000 items")
fig.tight_layout()
plt.show()
