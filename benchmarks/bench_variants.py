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
the pair order, the sampling, the covariance step, the averaging and the
Hogwild threads are the package's. A variant that is another loss is a
small loss written here and registered at run time in the package's
registry (``sklearn_cml._losses.LOSSES``): a NamedTuple of its
hyperparameters, a Numba weights function with the contract of
``sklearn_cml._losses.weigh_row`` (the weights ``dL/dD`` of a row of
squared distances) and a ``Loss``; ``CMLRecommender(loss=NAME)`` then
trains with it. The rows:

- ``package``: ``loss="hinge"``, the hinge on the hardest of the drawn
  impostors with its WARP rank weight; ``reference``: the same loss through
  the weights function that the hinge variants below share
  (``hinge_variant_weights``), a check of it against the package's;
- ``popularity negatives, beta B``: negatives drawn in proportion to
  ``(popularity + 1) ** B`` (the package's sampler,
  ``negative_sampling_exponent``; the first stage of two-stage sampling,
  Tran et al. 2019), the rank estimate importance-weighted;
- which impostor gets the hinge: the first found (WARP's choice, a random
  violator), the closest one beyond the positive ("semi-hard"), or all of
  them, sharing the weight or each with it;
- a sampled softmax over ``-distance^2 / 0.3`` with its own draws for every
  pair (20 or 100, logQ-corrected; learning rate 0.05, negatives in
  proportion to ``(popularity + 1) ** 0.1``): the per-pair form of the
  package's ``loss="softmax"``, which shares ``16 * n_negatives`` draws
  among a group of 16 pairs of one user (the ``package-softmax`` row);
- ``als``: implicit's ALS at the setting that won the side-by-side suite on
  the dataset (30 sweeps), the target, when implicit is installed.

Pairs drawn user first, two vectors per user and an exponential moving
average of the iterates are neither a loss nor a sampler; they were measured
with this script at commit d306831 and removed (figures in
docs/benchmarks.md).  An L2 penalty on the vectors of a step and the softmax
over every item are not functions of a row of sampled distances; they were
measured at commit 1886de0 and removed with the per-pair steps.

Each model is trained up to ``--max-epochs`` (ALS: 30 sweeps, every 3),
validation Recall@50 is measured every ``--eval-every`` epochs (ranking
every item but the user's training items), and the vectors of the best
epoch are scored on test. "train s" counts training only. "pop rank" is the
median popularity rank (0 = the item with the most training pairs) of the
items in the best epoch's top-50 lists: how much a model leans on popular
items. It is a benchmark, not a test: it prints figures and asserts nothing.
"""

import argparse
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
from sklearn_cml._losses.hinge import rank_weight
from sklearn_cml._losses.softmax import SoftmaxParameters

N_COMPONENTS = 100

# --------------------------------------------------------------------------
# The hinge variants: which drawn impostors get the hinge
# --------------------------------------------------------------------------

HARDEST, FIRST_FOUND, SEMI_HARD, ALL_SHARED, ALL_FULL = range(5)


class HingeVariant(NamedTuple):
    margin: np.float32
    use_rank_weight: bool  # read by the package's ``rank_weight``
    rule: int  # one of HARDEST ... ALL_FULL


@njit
def chosen_impostors(rule, original, threshold, positive_distance):
    """``(first, stop)``: the draws ``first:stop`` that get the hinge are the
    impostors among them (closer than ``threshold``).

    All of them, or one: the first found in draw order (the draws are
    random, so it is a random violator), the hardest (closest, the
    package's choice) or the closest beyond the positive, else the hardest
    (semi-hard).
    """
    n_draws = original.shape[0]
    if rule >= ALL_SHARED:  # ALL_SHARED or ALL_FULL
        return 0, n_draws
    chosen = -1
    for n in range(n_draws):
        if original[n] < threshold:
            if rule == FIRST_FOUND:
                return n, n + 1
            if chosen < 0 or original[n] < original[chosen]:
                chosen = n
    if rule == SEMI_HARD:
        best = np.float32(np.inf)
        for n in range(n_draws):
            if positive_distance <= original[n] and original[n] < min(threshold, best):
                best, chosen = original[n], n
    return chosen, chosen + 1


@njit
def hinge_variant_weights(parameters, row, pair_coef, scratch):
    """The weights of the hinge variants (the contract of ``weigh_row``).

    The package's hinge on each pair (impostors among the row's draws, WARP
    weight from their counts), with the impostors that get the hinge chosen
    by ``parameters.rule`` (``ALL_SHARED`` divides the weight among them).
    """
    distances = row.distances
    original = scratch.values[:distances.shape[0]]
    original[:] = distances
    distances[:] = 0.0
    loss = np.float32(0.0)
    for b in range(row.positive_distances.shape[0]):
        pair_coef[b] = 0.0
        threshold = row.positive_distances[b] + parameters.margin
        n_impostors, rank_sum = 0, np.float32(0.0)
        for n in range(distances.shape[0]):
            if original[n] < threshold:
                n_impostors += 1
                rank_sum += row.counts[n]
        if n_impostors == 0 or row.pair_weights[b] == 0.0:
            continue
        weight = rank_weight(parameters, rank_sum, row.n_items) * row.pair_weights[b]
        if parameters.rule == ALL_SHARED:
            weight /= n_impostors
        first, stop = chosen_impostors(parameters.rule, original, threshold,
                                       row.positive_distances[b])
        for n in range(first, stop):
            violation = threshold - original[n]
            if violation > 0.0:
                loss += weight * violation
                pair_coef[b] += weight
                distances[n] -= weight
    return distances.sum(), loss


def hinge_variant(name, rule):
    """Register the hinge with impostor rule ``rule`` as ``loss=name``; return
    ``name``."""

    def parameters(config, reference_count, shared_negatives):
        return HingeVariant(np.float32(config.margin), bool(config.rank_weight), rule)

    LOSSES[name] = Loss(name=name, parameters_type=HingeVariant, parameters=parameters,
                        weights=hinge_variant_weights)
    return name


# --------------------------------------------------------------------------
# The softmax with draws of each pair's own
# --------------------------------------------------------------------------

# The package's softmax on groups of one pair: its weights, each pair with
# ``n_negatives`` draws of its own.
LOSSES["softmax-per-pair"] = Loss(
    name="softmax-per-pair", parameters_type=SoftmaxParameters,
    parameters=LOSSES["softmax"].parameters, weights=LOSSES["softmax"].weights, group_size=1,
)

# --------------------------------------------------------------------------
# The rows: CMLRecommender parameters (K, threads and random_state added)
# --------------------------------------------------------------------------

# Every row trains with the per-pair solver from the paper's step: the WARP
# hinge, learning rate 0.1.  Written out rather than left to the package's
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
    "softmax, 20 draws per pair": {**PAIR_SOFTMAX, "n_negatives": 20},
    "softmax, 100 draws per pair": {**PAIR_SOFTMAX, "n_negatives": 100},
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
