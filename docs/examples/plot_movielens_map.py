"""
=====================================================
Fit, recommend and explain: a map of MovieLens-100K
=====================================================

Fit :class:`~sklearn_cml.CMLRecommender` on the films that MovieLens-100K's
users rated 4 or 5, recommend films to one user, explain each
recommendation by the film of the user's that is closest to it, and draw
the learned space: the films coloured by genre, the user and the films
recommended to them.

Recommending *is* looking at this map: a user's recommendations are the
films nearest to the user, and films near each other are liked by the same
people. The map is the plane of the space's two principal directions
(:class:`~sklearn.decomposition.PCA`), a flat view of a 32-dimensional
space, so neighbours on the plane are not always neighbours in the space.

Without the MovieLens files, the example runs on synthetic data and colours
items by their taste cluster instead of their genre.
"""

# %%
# Load the data
# -------------
# The loaders read a folder you already have; nothing is downloaded. The
# folder is ``$SKLEARN_CML_DATA``, else ``shared/data`` beside the checkout.
import os
import sys
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from sklearn.decomposition import PCA

from sklearn_cml import CMLRecommender
from sklearn_cml.datasets import load_movielens, load_movielens_genres, make_interactions


def data_folder():
    """``$SKLEARN_CML_DATA``, else ``shared/data`` beside the checkout, else None."""
    if os.environ.get("SKLEARN_CML_DATA"):
        return Path(os.environ["SKLEARN_CML_DATA"])
    # Examples run from docs/examples (in the build) or the repository root.
    for parent in [Path.cwd(), *Path.cwd().parents]:
        if (parent / "shared" / "data" / "ml-100k").is_dir():
            return parent / "shared" / "data"
    return None


folder = data_folder()
if folder is not None and (folder / "ml-100k").is_dir():
    movielens = load_movielens(folder / "ml-100k", min_rating=4)
    X = movielens.interactions
    names = movielens.item_names
    genres = load_movielens_genres(folder / "ml-100k", movielens.item_ids)
    genre_names = genres.feature_names
    # One colour per film: the first of these genres it has; grey otherwise.
    shown = ["Children's", "Horror", "Romance", "Documentary", "Sci-Fi"]
    has = genres.features.toarray()[:, [list(genre_names).index(g) for g in shown]] > 0
    item_group = np.where(has.any(axis=1), has.argmax(axis=1), -1)
    group_names = shown
    print("MovieLens-100K, ratings >= 4:", X.shape, "users x films,", X.nnz, "interactions")
else:
    print("MovieLens-100K not found: running on synthetic data instead")
    X, _, item_group = make_interactions(
        n_users=943, n_items=1682, n_clusters=5, random_state=0, return_labels=True
    )
    names = np.array([f"item {j} (cluster {c})" for j, c in enumerate(item_group)], dtype=object)
    group_names = [f"cluster {c}" for c in range(5)]

# %%
# Fit
# ---
model = CMLRecommender(n_components=32, n_epochs=30, random_state=0)
model.fit(X)

# %%
# Recommend, and explain
# ----------------------
# ``recommend`` returns the nearest films the user has not rated. Each is
# explained by the user's own film nearest to it: the film that pulled it
# close to the user's taste.
user = 7
liked = X[user].indices
distances, recommended = model.recommend([user], n_items=10, return_distance=True)
recommended, distances = recommended[0], distances[0]

item_vectors = model.item_embeddings_
gaps = ((item_vectors[recommended, None, :] - item_vectors[None, liked, :]) ** 2).sum(axis=2)
because = liked[gaps.argmin(axis=1)]
print(f"User {user} liked {len(liked)} films. Recommended:")
for item, distance, reason in zip(recommended, distances, because):
    print(f"  {names[item]:<45} distance {distance:.2f}  because: {names[reason]}")

# %%
# The map
# -------
# Users and films are projected together on the same plane. Films with
# fewer than five interactions, which training barely moves, are left out
# of the picture. The first direction follows popularity: popular films lie
# on one side, where users with mainstream tastes are too.
pca = PCA(n_components=2, random_state=0).fit(np.vstack([item_vectors, model.user_embeddings_]))
items_2d = pca.transform(item_vectors)
user_2d = pca.transform(model.user_embeddings_[[user]])[0]
popularity = X.getnnz(axis=0)
if np.corrcoef(items_2d[:, 0], np.log1p(popularity))[0, 1] < 0:
    items_2d[:, 0], user_2d[0] = -items_2d[:, 0], -user_2d[0]  # popular films to the right
print("correlation of the first direction with log popularity:",
      round(np.corrcoef(items_2d[:, 0], np.log1p(popularity))[0, 1], 2))
shown_items = popularity >= 5

fig, ax = plt.subplots(figsize=(8, 6.5))
other = shown_items & (item_group < 0)
ax.scatter(*items_2d[other].T, s=6, c="0.82", label="other films", linewidths=0)
colours = plt.get_cmap("tab10").colors
for g, label in enumerate(group_names):
    ax.scatter(*items_2d[shown_items & (item_group == g)].T, s=12, color=colours[g], label=label,
               linewidths=0)
ax.scatter(*items_2d[liked].T, s=24, facecolors="none", edgecolors="0.25", linewidths=0.8,
           label=f"films user {user} liked")
ax.scatter(*items_2d[recommended].T, s=100, facecolors="none", edgecolors="black",
           linewidths=1.8, label="recommended to them")
ax.scatter(*user_2d, marker="*", s=360, c="gold", edgecolors="black", zorder=5,
           label=f"user {user}")
share = pca.explained_variance_ratio_.sum()
ax.set(
    title=f"The learned space, projected on its main plane ({share:.0%} of the variance)",
    xlabel="first principal direction (more popular films to the right)",
    ylabel="second principal direction",
)
ax.legend(loc="lower left", fontsize=8, markerscale=1.2, framealpha=0.9)
fig.tight_layout()

# Run as a script with a file name, it also saves the figure; the README's
# picture is made so: python docs/examples/plot_movielens_map.py docs/images/metric_space.png
if len(sys.argv) > 1:
    fig.savefig(sys.argv[1], dpi=80)
plt.show()
