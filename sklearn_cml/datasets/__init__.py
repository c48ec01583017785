"""Implicit-feedback datasets: a synthetic generator and loaders for standard files.

``make_interactions`` plants the two structures a metric-learning recommender
has to cope with: a long tail of item popularity and user/item taste clusters.
The loaders read MovieLens, CiteULike-a and the Amazon 5-core review sets
(S3-Rec's files) from a folder the user already has; nothing here downloads
data (all of them are research-only and are not shipped with the package).

What is where (the modules are private; import from ``sklearn_cml.datasets``):

- ``_synthetic``: :func:`make_interactions`, the synthetic generator.
- ``_movielens``: :func:`load_movielens` (ratings) and
  :func:`load_movielens_genres` (movie genres as item features).
- ``_citeulike``: :func:`load_citeulike` (user libraries) and
  :func:`load_citeulike_tags` (article tags as item features).
- ``_amazon``: :func:`load_amazon` (user reviews) and
  :func:`load_amazon_attributes` (item attributes as item features).
- ``_parsing``: file helpers shared by the loaders and the generator (finding
  a dataset's file, reading number tables and lines of integers, building
  a CSR matrix from (row, column) pairs).
"""

from ._amazon import load_amazon, load_amazon_attributes
from ._citeulike import load_citeulike, load_citeulike_tags
from ._movielens import load_movielens, load_movielens_genres
from ._synthetic import make_interactions

__all__ = [
    "load_amazon",
    "load_amazon_attributes",
    "load_citeulike",
    "load_citeulike_tags",
    "load_movielens",
    "load_movielens_genres",
    "make_interactions",
]
