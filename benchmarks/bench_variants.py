"""Variants of CML's training step, side by side on the paper's validation split.

Run from the repository root::

    python benchmarks/bench_variants.py [--data PATH] [--dataset ml-1m]
        [--max-epochs 60] [--eval-every 10] [--threads 2] [--variants NAME ...]

Why: on MovieLens-1M a well-regularised ALS ranks better than
CMLRecommender (docs/benchmarks.md). This script tries the changes to the
training step that could close the gap, each alone, against the paper's
step (K=100, 10 uniformly drawn negatives, margin 1.0, AdaGrad learning
rate 0.1, vectors in the unit ball), so that each difference is the
variant's:

- where the negatives come from: in proportion to ``(popularity + 1) ** beta``
  (the first stage of two-stage sampling, Tran et al. 2019), with the rank
  estimate importance-weighted, ``sum(1 / (n_items * q_k)) * n_items / U``
  over the impostors, so that it stays an estimate of the number of
  negatives ranked above the positive (the package's alias tables,
  ``sklearn_cml._sampling``, now its ``negative_sampling_exponent``);
- which impostor gets the hinge: the hardest (the package), the first found
  (WARP's choice, a random violator), the closest one beyond the positive
  ("semi-hard"), or all of them, sharing the weight or each with it;
- how pairs are drawn: one per interaction (the package) or a user first,
  uniformly, then one of their items (each user counts equally, as in
  the user-averaged recall);
- an L2 penalty on the three vectors of a step (CML has none);
- several vectors per user, preference = the nearest (DPCML, Bao et al.
  2022);
- averaging the iterates (an exponential moving average after each epoch);
- a sampled softmax over ``-distance^2 / 0.3`` instead of the hinge, with its
  own draws for every pair (20 or 100, logQ-corrected; learning rate 0.05):
  the per-pair form of the package's ``loss="softmax"``, which shares
  ``16 * n_negatives`` draws among a group of 16 pairs of one user
  (the ``package, softmax`` row);
- the softmax over all items, no sampling: the package's groups of 16 pairs
  of a user and its softmax step, with every item that is not the user's a
  negative (learning rate 0.1, the epochs' vectors averaged as the
  package's ``average=True`` does).

The variants run through one Numba step written here, which reuses the
package's AdaGrad step, sampler RNG and pair order; the ``reference`` row
is that step with no variant and the ``package`` row is
``CMLRecommender.partial_fit`` itself with uniform negatives
(``negative_sampling_exponent=0``; the package's default, 0.1, came out
of these runs) and without averaging (``average=False``, like the other
rows); it also takes the covariance step, which has no measurable
effect on recall (docs/algorithm.md). The two agree within Hogwild noise,
so the other rows are comparable to the package; the ``package-softmax``
row is ``CMLRecommender(loss="softmax", learning_rate=0.05, average=False)``. With ``implicit``
installed, a row for implicit's ALS at the setting that won the
side-by-side suite on the dataset (30 sweeps) gives the target.

Each model is trained up to ``--max-epochs``, validation Recall@50 is
measured every ``--eval-every`` epochs (ranking every item but the user's
training items), and the vectors of the best epoch are scored on test.
"pop rank" is the median popularity rank (0 = the item with the most
training pairs) of the items in the best epoch's top-50 lists: how much a
model leans on popular items.
It is a benchmark, not a test: it prints figures and asserts nothing.
"""

import argparse
import math
import platform
import time

import numpy as np
from _data import find_data_dir, load_positives
from numba import get_num_threads, njit, prange, set_num_threads
from threadpoolctl import threadpool_limits

from sklearn_cml import CMLRecommender
from sklearn_cml._kernels import (
    adagrad_step,
    contains_sorted,
    row_of_entry,
    shuffle_pairs,
    update_running_mean,
)
from sklearn_cml._rng import random_below, seed_states
from sklearn_cml._sampling import draw_item, item_sampling_tables
from sklearn_cml._softmax import (
    GROUP_SIZE,
    draw_negatives,
    group_gradients,
    shuffle_within_rows,
    user_groups,
)
from sklearn_cml.metrics import embedding_scores, ranking_metrics
from sklearn_cml.model_selection import train_validation_test_split

N_COMPONENTS = 100
N_BLOCKS = 64
HARDEST, FIRST_FOUND, SEMI_HARD, ALL_SHARED, ALL_FULL = range(5)
DEFAULTS = {"popularity_exponent": 0.0, "impostor": HARDEST, "pairs_per_user": False,
            "l2": 0.0, "vectors_per_user": 1, "averaging": 0.0, "softmax_negatives": 0,
            "softmax_all_items": False, "mean_of_epochs": False, "learning_rate": 0.1}
SOFTMAX_TEMPERATURE = 0.3
VARIANTS = {
    "reference": {},
    "popularity negatives, beta 0.1": {"popularity_exponent": 0.1},
    "popularity negatives, beta 0.5": {"popularity_exponent": 0.5},
    "popularity negatives, beta -0.25": {"popularity_exponent": -0.25},
    "first impostor found (WARP)": {"impostor": FIRST_FOUND},
    "semi-hard impostor": {"impostor": SEMI_HARD},
    "all impostors, shared weight": {"impostor": ALL_SHARED},
    "all impostors, full weight": {"impostor": ALL_FULL},
    "pairs drawn user first": {"pairs_per_user": True},
    "L2 penalty 0.3": {"l2": 0.3},
    "2 vectors per user": {"vectors_per_user": 2},
    "iterate averaging 0.8": {"averaging": 0.8},
    "softmax, 20 draws per pair": {"softmax_negatives": 20, "popularity_exponent": 0.1,
                                   "learning_rate": 0.05},
    "softmax, 100 draws per pair": {"softmax_negatives": 100, "popularity_exponent": 0.1,
                                    "learning_rate": 0.05},
    "softmax over all items, averaged": {"softmax_all_items": True, "mean_of_epochs": True},
}


# --------------------------------------------------------------------------
# The training step with its variants
# --------------------------------------------------------------------------


@njit(inline="always", fastmath=True)
def nearest_user_vector(user_vectors, first, count, item):
    """(squared distance, row) of the user's vector nearest to ``item``."""
    best_distance = np.float32(np.inf)
    best_row = first
    for row in range(first, first + count):
        distance = np.float32(0.0)
        for d in range(item.shape[0]):
            diff = user_vectors[row, d] - item[d]
            distance += diff * diff
        if distance < best_distance:
            best_distance, best_row = distance, row
    return best_distance, best_row


@njit(inline="always", fastmath=True)
def triplet_step(user_vectors, user_grad_sq, pull_row, push_row, item_vectors, item_grad_sq,
                 positive, negative, weight, l2, learning_rate, gradients):
    """AdaGrad step on ``weight * (m + |u_a - p|^2 - |u_b - n|^2) + l2/2 |x|^2``."""
    pull, push = user_vectors[pull_row], user_vectors[push_row]
    positive_vector, negative_vector = item_vectors[positive], item_vectors[negative]
    scale = np.float32(2.0) * weight
    for d in range(pull.shape[0]):
        gradients[0, d] = scale * (pull[d] - positive_vector[d]) + l2 * pull[d]
        gradients[1, d] = scale * (negative_vector[d] - push[d]) + l2 * push[d]
        gradients[2, d] = scale * (positive_vector[d] - pull[d]) + l2 * positive_vector[d]
        gradients[3, d] = scale * (push[d] - negative_vector[d]) + l2 * negative_vector[d]
    if pull_row == push_row:
        for d in range(pull.shape[0]):
            gradients[0, d] += gradients[1, d] - l2 * push[d]
        adagrad_step(pull, user_grad_sq, pull_row, gradients[0], learning_rate, np.float32(1.0))
    else:
        adagrad_step(pull, user_grad_sq, pull_row, gradients[0], learning_rate, np.float32(1.0))
        adagrad_step(push, user_grad_sq, push_row, gradients[1], learning_rate, np.float32(1.0))
    adagrad_step(positive_vector, item_grad_sq, positive, gradients[2], learning_rate,
                 np.float32(1.0))
    adagrad_step(negative_vector, item_grad_sq, negative, gradients[3], learning_rate,
                 np.float32(1.0))


@njit(parallel=True, fastmath=True)
def variant_epoch(pair_order, indptr, indices, active_users, user_vectors, user_grad_sq,
                  item_vectors, item_grad_sq, vectors_per_user, n_negatives, margin,
                  learning_rate, l2, impostor_rule, pairs_per_user, threshold, other,
                  inverse_probability, rng_states, gradients, impostor_items, impostor_rows,
                  impostor_distances):
    """One Hogwild epoch of the variant step over ``N_BLOCKS`` blocks of pairs."""
    n_pairs = pair_order.shape[0]
    n_items = item_vectors.shape[0]
    for block in prange(N_BLOCKS):
        rng_state = rng_states[block]
        found_items = impostor_items[block]
        found_rows = impostor_rows[block]
        found_distances = impostor_distances[block]
        for position in range(n_pairs * block // N_BLOCKS, n_pairs * (block + 1) // N_BLOCKS):
            if pairs_per_user:
                rng_state, pick = random_below(rng_state, active_users.shape[0])
                user = active_users[pick]
                rng_state, offset = random_below(rng_state, indptr[user + 1] - indptr[user])
                pair = indptr[user] + offset
            else:
                pair = pair_order[position]
                user = row_of_entry(indptr, pair)
            positive = indices[pair]
            first_row = user * vectors_per_user
            positive_distance, pull_row = nearest_user_vector(
                user_vectors, first_row, vectors_per_user, item_vectors[positive])
            limit = positive_distance + margin
            n_found = 0
            weighted_count = np.float32(0.0)
            for _ in range(n_negatives):
                rng_state, candidate = draw_item(rng_state, threshold, other)
                distance, row = nearest_user_vector(
                    user_vectors, first_row, vectors_per_user, item_vectors[candidate])
                if distance < limit and not contains_sorted(
                        indices, indptr[user], indptr[user + 1], candidate):
                    found_items[n_found] = candidate
                    found_rows[n_found] = row
                    found_distances[n_found] = distance
                    weighted_count += inverse_probability[candidate]
                    n_found += 1
            if n_found == 0:
                continue
            rank = np.int64(n_items * weighted_count / n_negatives)
            weight = np.float32(math.log(rank + 1.0))
            chosen = 0  # FIRST_FOUND: draws are random, so the first is a random violator
            if impostor_rule == HARDEST or impostor_rule == SEMI_HARD:
                best = np.float32(np.inf)
                for i in range(n_found):
                    if found_distances[i] < best:
                        best, chosen = found_distances[i], i
                if impostor_rule == SEMI_HARD:
                    best = np.float32(np.inf)
                    for i in range(n_found):
                        if positive_distance <= found_distances[i] and found_distances[i] < best:
                            best, chosen = found_distances[i], i
            if impostor_rule == ALL_SHARED or impostor_rule == ALL_FULL:
                share = weight / n_found if impostor_rule == ALL_SHARED else weight
                for i in range(n_found):
                    triplet_step(user_vectors, user_grad_sq, pull_row, found_rows[i],
                                 item_vectors, item_grad_sq, positive, found_items[i], share, l2,
                                 learning_rate, gradients[block])
            else:
                triplet_step(user_vectors, user_grad_sq, pull_row, found_rows[chosen],
                             item_vectors, item_grad_sq, positive, found_items[chosen], weight,
                             l2, learning_rate, gradients[block])
        rng_states[block] = rng_state


@njit(parallel=True, fastmath=True)
def softmax_pair_epoch(pair_order, indptr, indices, user_vectors, user_grad_sq, item_vectors,
                       item_grad_sq, n_negatives, inv_temperature, learning_rate, tables,
                       rng_states, negatives, log_counts, terms, user_gradients, item_gradients):
    """One Hogwild epoch of the sampled softmax, ``n_negatives`` draws per pair.

    The package's softmax step (``sklearn_cml._softmax``) with every pair a
    group of one, so with draws of its own instead of draws shared by 16.
    """
    n_pairs = pair_order.shape[0]
    n_items = item_vectors.shape[0]
    for block in prange(N_BLOCKS):
        rng_state = rng_states[block]
        drawn, term = negatives[block], terms[block]
        grad_user, grad_items = user_gradients[block], item_gradients[block]
        for position in range(n_pairs * block // N_BLOCKS, n_pairs * (block + 1) // N_BLOCKS):
            pair = pair_order[position]
            user = row_of_entry(indptr, pair)
            rng_state = draw_negatives(rng_state, n_negatives, n_items, indptr[user],
                                       indptr[user + 1], indices, tables, drawn,
                                       log_counts[block])
            group_gradients(user_vectors[user], indices[pair:pair + 1], drawn, log_counts[block],
                            n_negatives, item_vectors, inv_temperature, True, grad_user,
                            grad_items[:1], grad_items[1:], term)
            adagrad_step(item_vectors[indices[pair]], item_grad_sq, indices[pair], grad_items[0],
                         learning_rate, np.float32(1.0))
            for k in range(n_negatives):
                if term[k] > 0.0:  # skipped draws and negligible pushes
                    adagrad_step(item_vectors[drawn[k]], item_grad_sq, drawn[k],
                                 grad_items[1 + k], learning_rate, np.float32(1.0))
            adagrad_step(user_vectors[user], user_grad_sq, user, grad_user, learning_rate,
                         np.float32(1.0))
        rng_states[block] = rng_state


@njit(parallel=True, fastmath=True)
def softmax_all_items_epoch(group_order, group_starts, group_users, indptr, indices, shuffled,
                            user_vectors, user_grad_sq, item_vectors, item_grad_sq,
                            inv_temperature, learning_rate, all_items, log_counts, terms,
                            user_gradients, item_gradients):
    """One Hogwild epoch of the softmax over every item, by groups of a user's pairs.

    The package's softmax step (``group_gradients``) with every item a
    negative, counted once (log count 0), and the user's own items left out
    (log count -inf).  One slot of scratch per thread: a slot's gradients
    hold a row per item.
    """
    n_slots = log_counts.shape[0]
    n_groups = group_order.shape[0]
    n_items = item_vectors.shape[0]
    for slot in prange(n_slots):
        counts, term = log_counts[slot], terms[slot]
        grad_user, grad_items = user_gradients[slot], item_gradients[slot]
        for position in range(n_groups * slot // n_slots, n_groups * (slot + 1) // n_slots):
            group = group_order[position]
            user = group_users[group]
            start = group_starts[group]
            stop = min(start + GROUP_SIZE, indptr[user + 1])
            n_positives = stop - start
            for entry in range(indptr[user], indptr[user + 1]):
                counts[indices[entry]] = -np.inf
            positives = shuffled[start:stop]
            group_gradients(user_vectors[user], positives, all_items, counts, n_items,
                            item_vectors, inv_temperature, True, grad_user,
                            grad_items[:n_positives], grad_items[n_positives:], term)
            for entry in range(indptr[user], indptr[user + 1]):
                counts[indices[entry]] = 0.0
            for g in range(n_positives):
                adagrad_step(item_vectors[positives[g]], item_grad_sq, positives[g],
                             grad_items[g], learning_rate, np.float32(1.0))
            for k in range(n_items):
                if term[k] > 0.0:
                    adagrad_step(item_vectors[k], item_grad_sq, k, grad_items[n_positives + k],
                                 learning_rate, np.float32(1.0))
            adagrad_step(user_vectors[user], user_grad_sq, user, grad_user, learning_rate,
                         np.float32(1.0))


def softmax_all_items_pass(train, learning_rate):
    """A function running one epoch of ``softmax_all_items_epoch`` on given vectors."""
    n_items = train.shape[1]
    n_slots = get_num_threads()
    group_starts, group_users = user_groups(train.indptr, GROUP_SIZE)
    group_order = np.empty(group_starts.shape[0], np.int32)
    shuffled = np.empty_like(train.indices)
    scratch = (np.arange(n_items, dtype=np.int64), np.zeros((n_slots, n_items), np.float32),
               np.empty((n_slots, n_items), np.float32),
               np.empty((n_slots, N_COMPONENTS), np.float32),
               np.empty((n_slots, GROUP_SIZE + n_items, N_COMPONENTS), np.float32))

    def run(epoch, user_vectors, user_grad_sq, item_vectors, item_grad_sq):
        shuffle_pairs(group_order, epoch)
        shuffle_within_rows(train.indptr, train.indices, shuffled, epoch * 7_919)
        softmax_all_items_epoch(group_order, group_starts, group_users, train.indptr,
                                train.indices, shuffled, user_vectors, user_grad_sq,
                                item_vectors, item_grad_sq,
                                np.float32(1.0 / SOFTMAX_TEMPERATURE),
                                np.float32(learning_rate), *scratch)

    return run


# --------------------------------------------------------------------------
# Training and evaluation
# --------------------------------------------------------------------------


def nearest_vector_scores(user_vectors, item_vectors, vectors_per_user):
    """Scores ``-min_c |u_c - v|^2`` for batches of users."""
    if vectors_per_user == 1:
        return embedding_scores(user_vectors, item_vectors)
    per_vector = [embedding_scores(user_vectors[c::vectors_per_user], item_vectors)
                  for c in range(vectors_per_user)]
    return lambda users: np.max([scores(users) for scores in per_vector], axis=0)


def unit_ball_vectors(rng, n_rows):
    vectors = rng.standard_normal((n_rows, N_COMPONENTS), dtype=np.float32)
    vectors /= np.float32(np.sqrt(N_COMPONENTS))
    norms = np.linalg.norm(vectors, axis=1)
    vectors[norms > 1] /= norms[norms > 1, None]
    return vectors


def train_variant(train, settings, n_epochs, evaluate):
    """Train one variant epoch by epoch, calling ``evaluate(epoch, scores)``."""
    options = {**DEFAULTS, **settings}
    per_user = options["vectors_per_user"]
    n_users, n_items = train.shape
    rng = np.random.default_rng(0)
    user_vectors = unit_ball_vectors(rng, n_users * per_user)
    item_vectors = unit_ball_vectors(rng, n_items)
    user_grad_sq = np.full(n_users * per_user, 0.1, np.float32)  # the package's start
    item_grad_sq = np.full(n_items, 0.1, np.float32)
    counts = np.diff(train.indptr)
    # Exponent 0 gives exact uniform tables: draws as the package's uniform path.
    tables = item_sampling_tables(train.indices, n_items, options["popularity_exponent"])
    rng_states = seed_states(1, N_BLOCKS)
    gradients = np.empty((N_BLOCKS, 4, N_COMPONENTS), np.float32)
    found = (np.empty((N_BLOCKS, 10), np.int64), np.empty((N_BLOCKS, 10), np.int64),
             np.empty((N_BLOCKS, 10), np.float32))
    n_drawn = options["softmax_negatives"]
    softmax_scratch = (np.empty((N_BLOCKS, n_drawn), np.int64),
                       np.empty((N_BLOCKS, n_drawn), np.float32),
                       np.empty((N_BLOCKS, n_drawn), np.float32),
                       np.empty((N_BLOCKS, N_COMPONENTS), np.float32),
                       np.empty((N_BLOCKS, 1 + n_drawn, N_COMPONENTS), np.float32))
    pair_order = np.empty(train.nnz, np.int32)
    averages = (user_vectors.copy(), item_vectors.copy())
    all_items_pass = (softmax_all_items_pass(train, options["learning_rate"])
                      if options["softmax_all_items"] else None)
    seconds = 0.0
    for epoch in range(1, n_epochs + 1):
        started = time.perf_counter()
        shuffle_pairs(pair_order, epoch)
        if all_items_pass is not None:
            all_items_pass(epoch, user_vectors, user_grad_sq, item_vectors, item_grad_sq)
        elif options["softmax_negatives"]:
            softmax_pair_epoch(
                pair_order, train.indptr, train.indices, user_vectors, user_grad_sq,
                item_vectors, item_grad_sq, options["softmax_negatives"],
                np.float32(1.0 / SOFTMAX_TEMPERATURE), np.float32(options["learning_rate"]),
                tables, rng_states, *softmax_scratch)
        else:
            variant_epoch(pair_order, train.indptr, train.indices, np.flatnonzero(counts),
                          user_vectors, user_grad_sq, item_vectors, item_grad_sq, per_user, 10,
                          np.float32(1.0), np.float32(options["learning_rate"]),
                          np.float32(options["l2"]), options["impostor"],
                          options["pairs_per_user"], *tables, rng_states, gradients, *found)
        if options["averaging"]:
            for average, current in zip(averages, (user_vectors, item_vectors)):
                average += np.float32(1.0 - options["averaging"]) * (current - average)
        elif options["mean_of_epochs"]:  # as the package's average=True
            for average, current in zip(averages, (user_vectors, item_vectors)):
                if epoch == 1:
                    average[:] = current
                else:
                    update_running_mean(average, current, epoch)
        seconds += time.perf_counter() - started
        averaged = options["averaging"] or options["mean_of_epochs"]
        shown = averages if averaged else (user_vectors, item_vectors)
        evaluate(epoch, lambda: nearest_vector_scores(*(v.copy() for v in shown), per_user))
    return seconds


# The package rows: uniform hinge (the reference's step) and the softmax loss
# at the pilots' learning rate, with the default exponent.  Both publish the
# last epoch's vectors, as the variants do (their "averaging" is an option).
PACKAGE_SETTINGS = {
    "package": ("package, uniform negatives",
                {"negative_sampling_exponent": 0.0, "average": False}),
    "package-softmax": ("package, softmax (160 shared)",
                        {"loss": "softmax", "learning_rate": 0.05, "average": False}),
}


def train_package(train, settings, n_epochs, evaluate, threads):
    model = CMLRecommender(n_components=N_COMPONENTS, n_epochs=1, n_jobs=threads,
                           random_state=0, **settings)
    seconds = 0.0
    for epoch in range(1, n_epochs + 1):
        started = time.perf_counter()
        model.partial_fit(train)
        seconds += time.perf_counter() - started
        evaluate(epoch, lambda: embedding_scores(model.user_embeddings_.copy(),
                                                 model.item_embeddings_.copy()))
    return seconds


# implicit ALS at the setting that won the side-by-side suite on each dataset.
ALS_SETTINGS = {"ml-1m": {"regularization": 100.0, "alpha": 10.0},
                "citeulike-a": {"regularization": 10.0, "alpha": 40.0}}


def train_als(train, setting, n_epochs, evaluate, threads):
    from implicit.cpu.als import AlternatingLeastSquares

    model = AlternatingLeastSquares(factors=N_COMPONENTS, iterations=n_epochs,
                                    num_threads=threads, random_state=0, **setting)
    started = time.perf_counter()
    model.fit(train.astype(np.float32), show_progress=False)
    seconds = time.perf_counter() - started
    user_factors, item_factors = model.user_factors, model.item_factors
    evaluate(n_epochs, lambda: (lambda users: user_factors[users] @ item_factors.T))
    return seconds


class BestEpoch:
    """Validation Recall@50 every ``every`` epochs; keeps the best scores."""

    def __init__(self, split, every, last):
        self.train, self.validation, _ = split
        self.every, self.last = every, last
        self.recall, self.epoch, self.scores, self.curve = -1.0, 0, None, []

    def __call__(self, epoch, snapshot):
        if epoch % self.every and epoch != self.last:
            return
        scores = snapshot()
        recall = recall_at_50(self.validation, scores, self.train)
        self.curve.append(round(recall, 4))
        if recall > self.recall:
            self.recall, self.epoch, self.scores = recall, epoch, scores


def median_popularity_rank(scores, train, k=50, batch=1000):
    """Median popularity rank (0: most trained-on item) of the top-k lists.

    Tells how far a model leans on popular items; the lists exclude each
    user's training items, as the recall does.
    """
    popularity = np.bincount(train.indices, minlength=train.shape[1])
    rank_of_item = np.argsort(np.argsort(-popularity, kind="stable"))
    ranks = []
    for start in range(0, train.shape[0], batch):
        users = np.arange(start, min(start + batch, train.shape[0]))
        user_scores = np.array(scores(users), dtype=np.float64)
        user_scores[train[users].nonzero()] = -np.inf
        ranks.append(rank_of_item[np.argpartition(-user_scores, k, axis=1)[:, :k]])
    return float(np.median(np.concatenate(ranks)))


def recall_at_50(truth, scores, train):
    return ranking_metrics(truth, scores, k=50, exclude=train, metrics=("recall",))["recall"]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=None)
    parser.add_argument("--dataset", choices=("ml-1m", "citeulike-a"), default="ml-1m")
    parser.add_argument("--max-epochs", type=int, default=60)
    parser.add_argument("--eval-every", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--variants", nargs="+", choices=[*VARIANTS, *PACKAGE_SETTINGS, "als"],
                        default=[*PACKAGE_SETTINGS, "als", *VARIANTS])
    args = parser.parse_args(argv)
    set_num_threads(args.threads)
    split = train_validation_test_split(load_positives(args.dataset, find_data_dir(args.data)),
                                        random_state=0)
    train = split[0].tocsr()
    train.sort_indices()
    print(f"{args.dataset}: train {train.nnz}, validation {split[1].nnz}, test {split[2].nnz} "
          f"positives; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; "
          f"{platform.processor() or platform.machine()}, {args.threads} threads; "
          f"up to {args.max_epochs} epochs, validation every {args.eval_every}")
    print(f"{'variant':<34} {'val R@50':>8} {'epoch':>5} {'test R@50':>9} {'pop rank':>8} "
          f"{'train s':>7}  validation curve")
    with threadpool_limits(1):
        # Compile outside the timed epochs (Numba caches nothing here).
        for name in {"reference", *(name for name in args.variants if name in VARIANTS)}:
            train_variant(train[:50], VARIANTS[name], 1, lambda epoch, snapshot: None)
        for name in args.variants:
            n_epochs = 30 if name == "als" else args.max_epochs
            best = BestEpoch(split, 3 if name == "als" else args.eval_every, n_epochs)
            if name == "als":
                try:
                    setting = ALS_SETTINGS[args.dataset]
                    seconds = train_als(train, setting, n_epochs, best, args.threads)
                except ImportError:
                    print(f"{'implicit ALS':<34} skipped: pip install -e '.[bench]'")
                    continue
                name = "implicit ALS (reg {regularization:g}, alpha {alpha:g})".format(**setting)
            elif name in PACKAGE_SETTINGS:
                name, settings = PACKAGE_SETTINGS[name]
                seconds = train_package(train, settings, n_epochs, best, args.threads)
            else:
                seconds = train_variant(train, VARIANTS[name], n_epochs, best)
            test = recall_at_50(split[2], best.scores, train)
            popularity = median_popularity_rank(best.scores, train)
            print(f"{name:<34} {best.recall:>8.4f} {best.epoch:>5} {test:>9.4f} "
                  f"{popularity:>8.0f} {seconds:>7.1f}  {best.curve}", flush=True)


if __name__ == "__main__":
    main()
