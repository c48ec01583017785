"""Popularity: every user gets the items with the most training interactions."""

import numpy as np
from _common import popularity_scores

NAME = "popularity"
SCHEDULE = "none"
GRID = ({},)


def missing():
    return None


def version():
    return np.__version__


def warm_up(threads):
    """Nothing to compile."""


def train(X, setting, *, n_components, threads, n_epochs, random_state, after_epoch):
    """Count each item's training interactions; one "epoch"."""
    scores = popularity_scores(X)
    after_epoch(1, lambda: scores)
