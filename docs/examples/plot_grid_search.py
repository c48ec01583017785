"""
==============================================
Tuning with GridSearchCV and a ranking scorer
==============================================

:class:`~sklearn.model_selection.GridSearchCV` works on
:class:`~sklearn_cml.CMLRecommender` as on any estimator. Each fold trains
on some users and scores the others: their vectors are folded in from part
of their items and the rest are ranked
(:func:`~sklearn_cml.metrics.make_ranking_scorer`). Here the search is over
the dimension of the space and the learning rate, scored by recall@20 and
NDCG@20, and refit with the best recall.
"""

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.model_selection import GridSearchCV, KFold

from sklearn_cml import CMLRecommender
from sklearn_cml.datasets import make_interactions
from sklearn_cml.metrics import make_ranking_scorer

X = make_interactions(n_users=900, n_items=400, mean_interactions=15, random_state=0)

param_grid = {"n_components": [8, 32], "learning_rate": [0.02, 0.05, 0.15]}
search = GridSearchCV(
    CMLRecommender(n_epochs=10, random_state=0),
    param_grid,
    scoring={"recall@20": make_ranking_scorer("recall", k=20),
             "ndcg@20": make_ranking_scorer("ndcg", k=20)},
    refit="recall@20",
    cv=KFold(3, shuffle=True, random_state=0),
).fit(X)
print("best:", search.best_params_, f"recall@20 {search.best_score_:.3f}")

# %%
# The results table
# -----------------
# ``cv_results_`` holds one row per setting: the mean and spread of each
# score over the three folds of users, and the fit time.
columns = ["param_n_components", "param_learning_rate", "mean_test_recall@20",
           "std_test_recall@20", "mean_test_ndcg@20", "rank_test_recall@20", "mean_fit_time"]
results = pd.DataFrame(search.cv_results_)[columns].sort_values("rank_test_recall@20")
results.round(3)

# %%
# The grid as a picture
# ---------------------
recall = results.pivot(index="param_n_components", columns="param_learning_rate",
                       values="mean_test_recall@20")
fig, ax = plt.subplots(figsize=(6, 3.5))
image = ax.imshow(recall.to_numpy(), cmap="viridis", aspect="auto")
middle = (recall.to_numpy().min() + recall.to_numpy().max()) / 2
for (row, col), value in np.ndenumerate(recall.to_numpy()):
    ax.text(col, row, f"{value:.3f}", ha="center", va="center",
            color="black" if value > middle else "white")
ax.set_xticks(range(recall.shape[1]), [str(v) for v in recall.columns])
ax.set_yticks(range(recall.shape[0]), [str(v) for v in recall.index])
ax.set(xlabel="learning_rate", ylabel="n_components",
       title="Mean recall@20 of the held-out users (3 folds)")
fig.colorbar(image, ax=ax, label="recall@20")
fig.tight_layout()
plt.show()
