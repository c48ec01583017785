"""Variants of CML's training step, side by side on the paper's validation split.

Run from the repository root::

    python benchmarks/bench_variants.py [--data PATH] [--dataset ml-1m]
        [--max-epochs 60] [--eval-every 10] [--threads 2] [--variants NAME ...]

Why: on MovieLens-1M a well-regularised ALS ranks about as well as
CMLRecommender (docs/benchmarks.md). This script tries changes to the
training step, each alone, against the paper's step (K=100, 10 negatives,
margin 1.0, AdaGrad learning rate 0.1, vectors in the unit ball; uniform
negatives and the last epoch's vectors, ``average=False``, unless a row
says otherwise), so that each difference is the variant's.

Every row is ``CMLRecommender`` itself, one ``partial_fit`` per epoch, so
the pair order, the covariance step, the averaging and the Hogwild threads
are the package's. A variant that is another loss is a small loss written
here and registered at run time in the package's registry
(``sklearn_cml._losses.LOSSES``): a NamedTuple of its hyperparameters, a
Numba step with the contract of ``sklearn_cml._solvers.hogwild.pair_step``
and a ``Loss``; ``CMLRecommender(loss=NAME)`` then trains with it. The rows:

- ``package``: ``loss="hinge"``, the hinge on the hardest of the drawn
  impostors with its WARP rank weight; ``reference``: the same loss through
  the step that the hinge variants below share (``hinge_variant_step``), a
  check of that step against the package's;
- ``popularity negatives, beta B``: negatives drawn in proportion to
  ``(popularity + 1) ** B`` (the package's sampler,
  ``negative_sampling_exponent``; the first stage of two-stage sampling,
  Tran et al. 2019), the rank estimate importance-weighted;
- which impostor gets the hinge: the first found (WARP's choice, a random
  violator), the closest one beyond the positive ("semi-hard"), or all of
  them, sharing the weight or each with it;
- an L2 penalty on the three vectors of a step (CML has none);
- a sampled softmax over ``-distance^2 / 0.3`` with its own draws for every
  pair (20 or 100, logQ-corrected; learning rate 0.05, negatives in
  proportion to ``(popularity + 1) ** 0.1``): the per-pair form of the
  package's ``loss="softmax"``, which shares ``16 * n_negatives`` draws
  among a group of 16 pairs of one user (the ``package-softmax`` row);
- the softmax over all items, no sampling: the package's groups of 16 pairs
  of a user and its softmax gradients, with every item that is not the
  user's a negative (learning rate 0.1, the epochs' vectors averaged,
  ``average=True``);
- ``als``: implicit's ALS at the setting that won the side-by-side suite on
  the dataset (30 sweeps), the target, when implicit is installed.

Pairs drawn user first, two vectors per user and an exponential moving
average of the iterates are neither a loss nor a sampler; they were measured
with this script at commit d306831 and removed (figures in
docs/benchmarks.md).

Each model is trained up to ``--max-epochs`` (ALS: 30 sweeps, every 3),
validation Recall@50 is measured every ``--eval-every`` epochs (ranking
every item but the user's training items), and the vectors of the best
epoch are scored on test. "train s" counts training only. "pop rank" is the
median popularity rank (0 = the item with the most training pairs) of the
items in the best epoch's top-50 lists: how much a model leans on popular
items. It is a benchmark, not a test: it prints figures and asserts nothing.
"""

import argparse
import math
from typing import NamedTuple

import numpy as np
from _common import (
    BestEpoch,
    cpu_model,
    find_data_dir,
    item_popularity,
    load_split,
    recalls,
    utc_now,
)
from numba import njit
from peers import INSTALL_HINT, cml, implicit_models
from threadpoolctl import threadpool_limits

from sklearn_cml._losses import LOSSES, Loss
from sklearn_cml._losses.hinge import triplet_gradients
from sklearn_cml._losses.softmax import (
    GROUP_SIZE,
    SoftmaxScratch,
    draw_negatives,
    group_gradients,
)
from sklearn_cml._numba_config import FASTMATH
from sklearn_cml._sampling import draw, inverse_probability
from sklearn_cml._steps import adagrad_step, contains_sorted, squared_distance

N_COMPONENTS = 100
STEP = {"inline": "always", "fastmath": FASTMATH, "error_model": "numpy"}

# --------------------------------------------------------------------------
# The hinge variants: which drawn impostors get the hinge, and an L2 penalty
# --------------------------------------------------------------------------

HARDEST, FIRST_FOUND, SEMI_HARD, ALL_SHARED, ALL_FULL = range(5)


class HingeVariant(NamedTuple):
    n_negatives: int
    margin: np.float32
    rule: int  # one of HARDEST ... ALL_FULL
    l2: np.float32


class HingeVariantScratch(NamedTuple):
    gradients: np.ndarray  # float32 (n_slots, 3, n_components): user, positive, negative
    found_items: np.ndarray  # int64 (n_slots, n_negatives): the impostors, in draw order
    found_distances: np.ndarray  # float32 (n_slots, n_negatives)


@njit(**STEP)
def find_impostors(parameters, sampler, user, user_vector, threshold, interactions, items,
                   found_items, found_distances, rng_state):
    """Draw ``n_negatives`` items; keep the impostors in draw order.

    An impostor is closer to the user than ``threshold`` and not one of the
    user's positives. Returns ``(n_found, rank, rng_state)``: ``rank``
    estimates the positive's rank as the package's hinge does (each
    impostor weighted by ``inverse_probability``).
    """
    indptr, indices = interactions.indptr, interactions.indices
    n_found = 0
    weighted = 0.0
    for _ in range(parameters.n_negatives):
        rng_state, candidate = draw(sampler, rng_state)
        distance = squared_distance(user_vector, items[candidate])
        if distance < threshold and not contains_sorted(indices, indptr[user],
                                                        indptr[user + 1], candidate):
            found_items[n_found] = candidate
            found_distances[n_found] = distance
            weighted += inverse_probability(sampler, candidate)
            n_found += 1
    return n_found, math.floor(items.shape[0] * weighted / parameters.n_negatives), rng_state


@njit(**STEP)
def chosen_impostors(rule, found_distances, n_found, positive_distance):
    """``(first, stop)``: the impostors ``first:stop`` (in draw order) get the hinge.

    All of them, or one: the first found (the draws are random, so it is a
    random violator), the hardest (closest, the package's choice) or the
    closest beyond the positive, else the hardest (semi-hard).
    """
    if rule >= ALL_SHARED:  # ALL_SHARED or ALL_FULL
        return 0, n_found
    if rule == FIRST_FOUND:
        return 0, 1
    chosen = 0
    for i in range(1, n_found):
        if found_distances[i] < found_distances[chosen]:
            chosen = i
    if rule == SEMI_HARD:
        best = np.float32(np.inf)
        for i in range(n_found):
            if positive_distance <= found_distances[i] and found_distances[i] < best:
                best, chosen = found_distances[i], i
    return chosen, chosen + 1


@njit(**STEP)
def penalised_triplet_step(embeddings, optimizer, user, positive, negative, weight, l2,
                           gradients, update_items):
    """AdaGrad steps on ``weight * (m + |u - p|^2 - |u - n|^2) + l2 / 2 * (|u|^2 +
    |p|^2 + |n|^2)``, the gradients taken from the current vectors."""
    user_vector = embeddings.users[user]
    positive_vector, negative_vector = embeddings.items[positive], embeddings.items[negative]
    triplet_gradients(user_vector, positive_vector, negative_vector, weight, gradients[0],
                      gradients[1], gradients[2])
    if l2 > 0.0:
        for d in range(user_vector.shape[0]):
            gradients[0, d] += l2 * user_vector[d]
            gradients[1, d] += l2 * positive_vector[d]
            gradients[2, d] += l2 * negative_vector[d]
    rate, radius = optimizer.learning_rate, optimizer.max_norm
    adagrad_step(user_vector, embeddings.user_grad_sq, user, gradients[0], rate, radius)
    if update_items:
        adagrad_step(positive_vector, embeddings.item_grad_sq, positive, gradients[1], rate,
                     radius)
        adagrad_step(negative_vector, embeddings.item_grad_sq, negative, gradients[2], rate,
                     radius)


@njit(**STEP)
def hinge_variant_step(parameters, sampler, user, positives, weights, position, interactions,
                       embeddings, optimizer, scratch, slot, rng_state, update_items):
    """The step of the hinge variants (the contract of ``hogwild.pair_step``).

    The package's hinge on one pair (impostors among ``n_negatives`` draws,
    WARP weight ``log(rank + 1)``), with the impostors that get the hinge
    chosen by ``parameters.rule`` (``ALL_SHARED`` divides the weight among
    them) and an L2 penalty ``parameters.l2``.
    """
    items = embeddings.items
    user_vector, positive = embeddings.users[user], positives[0]
    positive_distance = squared_distance(user_vector, items[positive])
    threshold = positive_distance + parameters.margin
    found_items, found_distances = scratch.found_items[slot], scratch.found_distances[slot]
    n_found, rank, rng_state = find_impostors(
        parameters, sampler, user, user_vector, threshold, interactions, items, found_items,
        found_distances, rng_state)
    if n_found == 0:
        return rng_state, np.float32(0.0)
    weight = np.float32(math.log(rank + 1.0)) * weights[0]
    if parameters.rule == ALL_SHARED:
        weight /= n_found
    first, stop = chosen_impostors(parameters.rule, found_distances, n_found, positive_distance)
    loss = np.float32(0.0)
    for i in range(first, stop):
        loss += weight * (threshold - found_distances[i])
        penalised_triplet_step(embeddings, optimizer, user, positive, found_items[i], weight,
                               parameters.l2, scratch.gradients[slot], update_items)
    return rng_state, loss


def hinge_variant(name, rule, l2=0.0):
    """Register the hinge with impostor rule ``rule`` (and L2 penalty ``l2``) as
    ``loss=name``; return ``name``."""

    def parameters(params, reference_count, fold_in):
        return HingeVariant(params.n_negatives, np.float32(params.margin), rule,
                            np.float32(l2))

    def scratch(n_slots, n_components, n_items, params):
        return HingeVariantScratch(np.empty((n_slots, 3, n_components), np.float32),
                                   np.empty((n_slots, params.n_negatives), np.int64),
                                   np.empty((n_slots, params.n_negatives), np.float32))

    LOSSES[name] = Loss(name=name, group_size=1, parameters_type=HingeVariant,
                        parameters=parameters, scratch=scratch, pair_step=hinge_variant_step)
    return name


# --------------------------------------------------------------------------
# The softmax variants: draws of each pair's own, or every item
# --------------------------------------------------------------------------


class PairSoftmax(NamedTuple):
    n_negatives: int  # draws of each pair
    inv_temperature: np.float32


class AllItemsSoftmax(NamedTuple):
    inv_temperature: np.float32


@njit(**STEP)
def softmax_update(embeddings, optimizer, user, positives, weights, n_draws, inv_temperature,
                   scratch, slot, update_items):
    """The package's softmax step on the negatives already in the slot's
    ``scratch`` (``negatives[:n_draws]``, ``log_counts[:n_draws]``): its
    gradients (``group_gradients``), then AdaGrad on the positives, the
    negatives that got a push and the user. Returns the loss."""
    users, items = embeddings.users, embeddings.items
    negatives, terms = scratch.negatives[slot], scratch.negative_terms[slot]
    grad_user, grad_items = scratch.grad_user[slot], scratch.grad_items[slot]
    n_positives = positives.shape[0]
    loss = group_gradients(users[user], positives, weights, negatives, scratch.log_counts[slot],
                           n_draws, items, inv_temperature, update_items, grad_user,
                           grad_items[:n_positives], grad_items[n_positives:], terms)
    rate, radius = optimizer.learning_rate, optimizer.max_norm
    if update_items:
        for g in range(n_positives):
            adagrad_step(items[positives[g]], embeddings.item_grad_sq, positives[g],
                         grad_items[g], rate, radius)
        for k in range(n_draws):
            if terms[k] > 0.0:  # skipped draws and negligible pushes
                adagrad_step(items[negatives[k]], embeddings.item_grad_sq, negatives[k],
                             grad_items[n_positives + k], rate, radius)
    adagrad_step(users[user], embeddings.user_grad_sq, user, grad_user, rate, radius)
    return loss


@njit(**STEP)
def pair_softmax_step(parameters, sampler, user, positives, weights, position, interactions,
                      embeddings, optimizer, scratch, slot, rng_state, update_items):
    """The sampled softmax on one pair with ``n_negatives`` draws of its own."""
    indptr = interactions.indptr
    rng_state = draw_negatives(rng_state, parameters.n_negatives, embeddings.items.shape[0],
                               indptr[user], indptr[user + 1], interactions.indices, sampler,
                               scratch.negatives[slot], scratch.log_counts[slot])
    loss = softmax_update(embeddings, optimizer, user, positives, weights, parameters.n_negatives,
                          parameters.inv_temperature, scratch, slot, update_items)
    return rng_state, loss


@njit(**STEP)
def all_items_softmax_step(parameters, sampler, user, positives, weights, position,
                           interactions, embeddings, optimizer, scratch, slot, rng_state,
                           update_items):
    """The softmax on a group of a user's pairs with every item a negative.

    ``scratch.negatives[slot]`` lists every item, each counted once (log
    count 0); the user's own items are left out (log count -inf) during
    the step.
    """
    indptr, indices = interactions.indptr, interactions.indices
    log_counts = scratch.log_counts[slot]
    for entry in range(indptr[user], indptr[user + 1]):
        log_counts[indices[entry]] = -np.inf
    loss = softmax_update(embeddings, optimizer, user, positives, weights,
                          embeddings.items.shape[0],
                          parameters.inv_temperature, scratch, slot, update_items)
    for entry in range(indptr[user], indptr[user + 1]):
        log_counts[indices[entry]] = 0.0
    return rng_state, loss


def softmax_scratch(n_slots, n_components, n_draws, group_size):
    """The package's softmax buffers for ``n_draws`` negatives and groups of
    ``group_size`` positives."""
    return SoftmaxScratch(np.empty((n_slots, n_draws), np.int64),
                          np.empty((n_slots, n_draws), np.float32),
                          np.empty((n_slots, n_draws), np.float32),
                          np.empty((n_slots, n_components), np.float32),
                          np.empty((n_slots, group_size + n_draws, n_components), np.float32))


def all_items_scratch(n_slots, n_components, n_items, params):
    scratch = softmax_scratch(n_slots, n_components, n_items, GROUP_SIZE)
    scratch.negatives[:] = np.arange(n_items)
    scratch.log_counts.fill(0.0)
    return scratch


LOSSES["softmax-per-pair"] = Loss(
    name="softmax-per-pair", group_size=1, parameters_type=PairSoftmax,
    parameters=lambda params, reference_count, fold_in: PairSoftmax(
        params.n_negatives, np.float32(1.0 / params.temperature)),
    scratch=lambda n_slots, n_components, n_items, params: softmax_scratch(
        n_slots, n_components, params.n_negatives, 1),
    pair_step=pair_softmax_step,
)
LOSSES["softmax-all-items"] = Loss(
    name="softmax-all-items", group_size=GROUP_SIZE, parameters_type=AllItemsSoftmax,
    parameters=lambda params, reference_count, fold_in: AllItemsSoftmax(
        np.float32(1.0 / params.temperature)),
    scratch=all_items_scratch, pair_step=all_items_softmax_step,
)

# --------------------------------------------------------------------------
# The rows: CMLRecommender parameters (K, threads and random_state added)
# --------------------------------------------------------------------------

# Every row trains with the per-pair solver (the only one with a step for
# the losses registered here) from the paper's step: the WARP hinge,
# learning rate 0.1.  Written out rather than left to the package's
# defaults, which have moved to the block solver and the softmax since.
PAPER = {"solver": "hogwild", "loss": "hinge", "learning_rate": 0.1}
HINGE = {**PAPER, "negative_sampling_exponent": 0.0, "average": False}
PAIR_SOFTMAX = {**PAPER, "loss": "softmax-per-pair", "learning_rate": 0.05, "average": False}
VARIANTS = {
    "package": HINGE,
    "package-softmax": {**PAPER, "loss": "softmax", "learning_rate": 0.05, "average": False},
    "reference": {**HINGE, "loss": hinge_variant("hinge-hardest", HARDEST)},
    "popularity negatives, beta 0.1": {**HINGE, "negative_sampling_exponent": 0.1},
    "popularity negatives, beta 0.5": {**HINGE, "negative_sampling_exponent": 0.5},
    "popularity negatives, beta -0.25": {**HINGE, "negative_sampling_exponent": -0.25},
    "first impostor found (WARP)": {**HINGE, "loss": hinge_variant("hinge-first", FIRST_FOUND)},
    "semi-hard impostor": {**HINGE, "loss": hinge_variant("hinge-semi-hard", SEMI_HARD)},
    "all impostors, shared weight": {**HINGE,
                                     "loss": hinge_variant("hinge-all-shared", ALL_SHARED)},
    "all impostors, full weight": {**HINGE, "loss": hinge_variant("hinge-all-full", ALL_FULL)},
    "L2 penalty 0.3": {**HINGE, "loss": hinge_variant("hinge-l2", HARDEST, l2=0.3)},
    "softmax, 20 draws per pair": {**PAIR_SOFTMAX, "n_negatives": 20},
    "softmax, 100 draws per pair": {**PAIR_SOFTMAX, "n_negatives": 100},
    "softmax over all items, averaged": {**PAPER, "loss": "softmax-all-items",
                                         "learning_rate": 0.1, "average": True},
}
LABELS = {"package": "package, uniform negatives",
          "package-softmax": "package, softmax (160 shared)"}
# implicit ALS at the setting that won the side-by-side suite on each dataset.
ALS_SETTINGS = {"ml-1m": {"regularization": 100.0, "alpha": 10.0},
                "citeulike-a": {"regularization": 10.0, "alpha": 40.0}}


def run_row(name, split, args):
    """Train one row; return its label and its ``BestEpoch``."""
    if name == "als":
        setting, n_epochs, every = ALS_SETTINGS[args.dataset], 30, 3
        peer = implicit_models.als
        label = "implicit ALS (reg {regularization:g}, alpha {alpha:g})".format(**setting)
    else:
        setting, n_epochs, every = VARIANTS[name], args.max_epochs, args.eval_every
        peer, label = cml, LABELS.get(name, name)
        cml.warm_up(args.threads, [setting])  # compile outside the timed epochs
    best = BestEpoch(split, every, n_epochs)
    peer.train(split[0], setting, n_components=N_COMPONENTS, threads=args.threads,
               n_epochs=n_epochs, random_state=0, after_epoch=best)
    return label, best.stop()


def median_popularity_rank(scores, train, k=50, batch=1000):
    """Median popularity rank (0: most trained-on item) of the top-k lists.

    Tells how far a model leans on popular items; the lists exclude each
    user's training items, as the recall does.
    """
    rank_of_item = np.argsort(np.argsort(-item_popularity(train), kind="stable"))
    ranks = []
    for start in range(0, train.shape[0], batch):
        users = np.arange(start, min(start + batch, train.shape[0]))
        user_scores = np.array(scores(users), dtype=np.float64)
        user_scores[train[users].nonzero()] = -np.inf
        ranks.append(rank_of_item[np.argpartition(-user_scores, k, axis=1)[:, :k]])
    return float(np.median(np.concatenate(ranks)))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=None)
    parser.add_argument("--dataset", choices=("ml-1m", "citeulike-a"), default="ml-1m")
    parser.add_argument("--max-epochs", type=int, default=60)
    parser.add_argument("--eval-every", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2)
    names = list(VARIANTS)
    parser.add_argument("--variants", nargs="+", choices=[*names, "als"],
                        default=[*names[:2], "als", *names[2:]])
    args = parser.parse_args(argv)
    _, split = load_split(args.dataset, find_data_dir(args.data))
    train, validation, test = split
    print(f"{args.dataset}: train {train.nnz}, validation {validation.nnz}, test {test.nnz} "
          f"positives; {utc_now()}; {cpu_model()}, {args.threads} threads; "
          f"up to {args.max_epochs} epochs, validation every {args.eval_every}")
    print(f"{'variant':<34} {'val R@50':>8} {'epoch':>5} {'test R@50':>9} {'pop rank':>8} "
          f"{'train s':>7}  validation curve")
    with threadpool_limits(1):
        for name in args.variants:
            if name == "als" and implicit_models.als.missing() is not None:
                print(f"{'implicit ALS':<34} skipped: {INSTALL_HINT}")
                continue
            label, best = run_row(name, split, args)
            test_recall = recalls(test, best.scores, train, ks=(50,))[50]
            popularity = median_popularity_rank(best.scores, train)
            curve = [round(point["recall"], 4) for point in best.curve]
            print(f"{label:<34} {best.recall:>8.4f} {best.epoch:>5} {test_recall:>9.4f} "
                  f"{popularity:>8.0f} {best.total:>7.1f}  {curve}", flush=True)


if __name__ == "__main__":
    main()
