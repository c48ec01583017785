"""
==========================================
Why was this recommended?
==========================================

Training pulls each user's items near the user, so an item near the user
is, by the triangle inequality, near some of the user's items.
:meth:`~sklearn_cml.CMLRecommender.explain` names them: each of the user's
items gets a share, the probability under the model's own similarity kernel
(the softmax of minus the squared distances, at the model's temperature)
that it is the user's item nearest to the recommended one. The shares of
all the user's items add up to 1, so they read as percentages
(:doc:`/guide_explain`).

Here, on synthetic data with six taste clusters, a user whose items come
from several clusters gets a recommendation; the left panel shows which of
the user's items explain it, the right one where they lie around it.
"""

import matplotlib.pyplot as plt
import numpy as np
from sklearn.decomposition import PCA

from sklearn_cml import CMLRecommender
from sklearn_cml.datasets import make_interactions

X, _, item_cluster = make_interactions(
    n_users=800, n_items=300, n_clusters=6, cluster_affinity=0.7, random_state=0,
    return_labels=True,
)
model = CMLRecommender(n_components=32, n_epochs=15, random_state=0).fit(X)

# A user with 10 to 20 items from as many clusters as can be found.
n_user_items = X.getnnz(axis=1)
candidates = np.flatnonzero((n_user_items >= 10) & (n_user_items <= 20))
n_clusters_of = [np.unique(item_cluster[X[u].indices]).size for u in candidates]
user = int(candidates[np.argmax(n_clusters_of)])
item = int(model.recommend([user], n_items=1)[0, 0])
why = model.explain(user, item, n=5)

print(f"User {user} has {n_user_items[user]} items; recommended: item {item} "
      f"(cluster {item_cluster[item]}), at distance {why.distance:.2f}.")
print("Because the user has:")
for neighbor, share, distance in zip(why.neighbors, why.shares, why.distances):
    print(f"  item {neighbor:3d} (cluster {item_cluster[neighbor]}): {share:6.1%}, "
          f"{distance:.2f} away")
print(f"  the user's other items:          {why.other_share:6.1%}")

# %%
# The shares, and the user's items around the recommended one
# -----------------------------------------------------------
# The projection is fitted on the points drawn (the user's items, the user
# and the item), so that it keeps as much of their layout as two directions
# can. Every line joins the recommended item to one of the user's items;
# its width is that item's share. The items of the left panel are labelled
# with their numbers.
all_shares = model.explain(user, item, n=n_user_items[user])
user_items = all_shares.neighbors
points = np.vstack([model.item_embeddings_[user_items], model.user_embeddings_[user],
                    model.item_embeddings_[item]])
projected = PCA(n_components=2, random_state=0).fit_transform(points)
items_2d, user_2d, item_2d = projected[:-2], projected[-2], projected[-1]
colours = plt.get_cmap("tab10").colors

fig, (ax_bar, ax_map) = plt.subplots(1, 2, figsize=(12, 5),
                                     gridspec_kw={"width_ratios": [1, 1.2]})
labels = [f"item {j} (cluster {item_cluster[j]})" for j in why.neighbors]
labels.append(f"{n_user_items[user] - why.neighbors.size} other items")
values = [*why.shares, why.other_share]
bar_colours = [colours[item_cluster[j]] for j in why.neighbors] + ["0.7"]
ax_bar.barh(labels[::-1], values[::-1], color=bar_colours[::-1])
for y, value in enumerate(values[::-1]):
    ax_bar.text(value, y, f" {value:.0%}", va="center")
ax_bar.set_xlim(0, max(values) * 1.25)
ax_bar.set(xlabel="share of the explanation",
           title=f"Why item {item} (cluster {item_cluster[item]}) for user {user}")

for (x, y), share in zip(items_2d, all_shares.shares):
    ax_map.plot([item_2d[0], x], [item_2d[1], y], color="black", alpha=0.5,
                linewidth=0.3 + 25 * share, zorder=1)
for j, (x, y) in zip(user_items[:why.neighbors.size], items_2d):
    ax_map.annotate(f"{j}", (x, y), xytext=(5, 5), textcoords="offset points", fontsize=8)
for c in np.unique(item_cluster[user_items]):
    mine = item_cluster[user_items] == c
    ax_map.scatter(*items_2d[mine].T, s=60, color=colours[c], edgecolors="black",
                   linewidths=0.5, label=f"the user's items of cluster {c}", zorder=2)
ax_map.scatter(*user_2d, s=250, marker="*", color="gold", edgecolors="black",
               label="the user", zorder=3)
ax_map.scatter(*item_2d, s=140, marker="D", color=colours[item_cluster[item]],
               edgecolors="black", linewidths=1.5, label="the recommended item", zorder=3)
ax_map.legend(loc="best", fontsize=8)
ax_map.set(title="Lines weighted by share", xlabel="first principal direction",
           ylabel="second principal direction")
fig.tight_layout()
plt.show()
