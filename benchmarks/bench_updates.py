"""Updating a fitted model (``partial_fit``) against refitting it, as time passes.

Run from the repository root::

    python benchmarks/bench_updates.py [--data PATH] [--dataset ml-100k]
        [--epochs 1 3 10 20] [--refit-at T ...] [--n-jobs 2] [--quick]
        [--set NAME=VALUE ...]

The positives are put in time order and cut in 11 parts: the first 80%
(step 0) and 10 chunks (steps 1 to 10), by one of two protocols, chosen
by the dataset:

- ``ml-100k``, by global time: ratings >= 4, sorted by timestamp (ties
  in file order); the first 80% of them, then 10 chunks of equal size;
- an Amazon 5-core set (``amazon-toys-games`` is the smallest), by each
  user's own order (the files hold no times): the items at relative
  positions ``p / n < 0.8`` of each user's sequence of ``n``, then chunk
  ``t`` holds those in ``[0.8 + 0.02 (t - 1), 0.8 + 0.02 t)``; chunks
  are of unequal size (a user with 5 items has its last one in chunk 1).

Users and items are numbered in order of first appearance, so that the
data up to step ``t`` is a plain matrix whose first rows and columns are
those of step ``t - 1``: new users and items are the extra ones.  The
initial model is a default ``fit`` on step 0.  Then for ``t = 1 .. 9``:

- incremental: ``partial_fit(cumulative data up to t, n_epochs=k)`` of
  the previous incremental model (one chain per ``k`` of ``--epochs``);
- refit: a fresh default ``fit`` on the same data (one chain, shared).

Each model after step ``t`` is evaluated on chunk ``t + 1`` (step 10 is
only evaluation data): Recall@50 and NDCG@50 of the chunk's pairs of the
users the model knows, every item but the user's cumulative data ranked
(``ranking_metrics``, ``exclude`` = the data up to ``t``); items of the
chunk the model does not have yet cannot be ranked and count as misses.
Row 0 is the initial model on chunk 1.  Time: wall seconds of the
``partial_fit`` call and of the ``fit`` (kernels compiled beforehand).
Changed top-10: for the users known before step ``t``, the mean share of
their top-10 (items they took up to ``t`` left out) that differs between
the model before and after the update; the refit chain compares each
refit with the previous refit (the initial model for ``t = 1``).

Every model: package defaults (``--set`` changes them), ``n_jobs``,
``random_state=0``.  The defaults average the vectors over the epochs
(``average=5``), and ``partial_fit`` carries on the running means of the
first fit, so an update of ``k`` epochs moves what the model answers with
by about ``k / n_iter_`` of the way; ``--update-average off`` sets
``average=False`` on the updated models, which then answer with their
last epoch's vectors.  With ``--refit-at``, refits run only at those steps
(their change is then measured against the previous refit made).

It is a benchmark, not a test: it prints figures and asserts nothing.
"""

import argparse
import copy
import time

import numpy as np
import scipy.sparse as sp
from _common import (
    AMAZON_DATASETS,
    add_setting_option,
    find_data_dir,
    machine_description,
    other_cores_meter,
    tiny_matrix,
    utc_now,
)

from sklearn_cml import CMLRecommender
from sklearn_cml.metrics import embedding_scores, ranking_metrics

MIN_RATING = 4  # MovieLens positives, as _common.load_positives takes them
INITIAL_SHARE, N_CHUNKS = 0.8, 10
K_EVAL, K_STABLE = 50, 10
UNRANKABLE = -1e6  # score of an item the model lacks: below every -distance^2 (>= -4 max_norm^2)
QUICK_SETTINGS = {"n_components": 8, "n_epochs": 3}


# --------------------------------------------------------------------------
# Data in steps
# --------------------------------------------------------------------------


def movielens_by_time(folder):
    """``(users, items, steps)`` of ML-100K's positives in global time order."""
    table = np.loadtxt(folder / "u.data", dtype=np.int64, ndmin=2)
    table = table[table[:, 2] >= MIN_RATING]
    table = table[np.argsort(table[:, 3], kind="stable")]
    n_initial = int(round(INITIAL_SHARE * len(table)))
    steps = np.zeros(len(table), np.int64)
    for t, chunk in enumerate(np.array_split(np.arange(n_initial, len(table)), N_CHUNKS), 1):
        steps[chunk] = t
    return table[:, 0], table[:, 1], steps


def amazon_by_position(folder):
    """``(users, items, steps)`` of an Amazon set, by position in each user's
    sequence: step 0 below 80%, then 2% of relative position per chunk."""
    users, items, steps = [], [], []
    # S3-Rec's <Name>.txt, not its <Name>_sample.txt (load_amazon reads the same).
    (file,) = [path for path in folder.glob("*.txt") if not path.stem.endswith("_sample")]
    for line in file.read_text().splitlines():
        user, *sequence = map(int, line.split())
        # A pair is kept at its first use (the files hold none twice).
        _, first = np.unique(sequence, return_index=True)
        sequence = np.asarray(sequence)[np.sort(first)]
        n = len(sequence)
        position = np.arange(n)
        # floor(50 p / n) - 39 is the chunk of relative position p / n >= 0.8,
        # in integers so that 4/5 is exactly the start of chunk 1.
        step = np.maximum(50 * position // n - 39, 0)
        users.append(np.full(n, user))
        items.append(sequence)
        steps.append(step)
    return np.concatenate(users), np.concatenate(items), np.concatenate(steps)


def number_by_first_use(ids, steps):
    """Ids renumbered 0.. in order of first use (by step, then position)."""
    order = np.argsort(steps, kind="stable")
    unique, first = np.unique(ids[order], return_index=True)
    rank = np.empty(len(unique), np.int64)
    rank[np.argsort(first)] = np.arange(len(unique))
    return rank[np.searchsorted(unique, ids)]


class Steps:
    """The pairs numbered by first use, with their step; matrices of them."""

    def __init__(self, users, items, steps):
        self.users = number_by_first_use(users, steps)
        self.items = number_by_first_use(items, steps)
        self.steps = steps
        self.n_users = [int(self.users[steps <= t].max()) + 1 for t in range(N_CHUNKS + 1)]
        self.n_items = [int(self.items[steps <= t].max()) + 1 for t in range(N_CHUNKS + 1)]

    def matrix(self, keep, n_users, n_items):
        keep &= (self.users < n_users) & (self.items < n_items)
        X = sp.csr_matrix((np.ones(int(keep.sum()), np.float32),
                           (self.users[keep], self.items[keep])), shape=(n_users, n_items))
        X.sort_indices()
        return X

    def up_to(self, t):
        """The data of steps 0..t (every user and item of them)."""
        return self.matrix(self.steps <= t, self.n_users[t], self.n_items[t])

    def evaluation(self, t):
        """``(truth, exclude)``: chunk t+1's pairs of the users of steps 0..t,
        over every item up to t+1, and their data up to t."""
        n_users, n_items = self.n_users[t], self.n_items[t + 1]
        return (self.matrix(self.steps == t + 1, n_users, n_items),
                self.matrix(self.steps <= t, n_users, n_items))

    def describe(self, t):
        chunk = self.steps == t
        return (int(chunk.sum()),
                self.n_users[t] - (self.n_users[t - 1] if t else 0),
                self.n_items[t] - (self.n_items[t - 1] if t else 0))


# --------------------------------------------------------------------------
# Measures
# --------------------------------------------------------------------------


def padded_scores(model, n_items):
    """The model's scores over ``n_items`` items; those it lacks score lowest."""
    scores = embedding_scores(model.user_embeddings_, model.item_embeddings_)
    missing = n_items - model.item_embeddings_.shape[0]
    return lambda users: np.pad(scores(users), ((0, 0), (0, missing)),
                                constant_values=UNRANKABLE)


def next_chunk_metrics(model, data, t):
    """Recall@50 and NDCG@50 of chunk t+1 (NaN when it has no known users' pairs)."""
    truth, exclude = data.evaluation(t)
    if truth.nnz == 0:
        return {"recall": np.nan, "ndcg": np.nan}
    return ranking_metrics(truth, padded_scores(model, truth.shape[1]), k=K_EVAL,
                           exclude=exclude, metrics=("recall", "ndcg"))


def changed_top(before, after, seen):
    """Mean share of the top-10 of ``before``'s users that ``after`` changes,
    both leaving out the items of ``seen`` (the data after the update)."""
    users = np.arange(before.user_embeddings_.shape[0])
    old = before.recommend(users, n_items=K_STABLE,
                           user_items=seen[users][:, :before.item_embeddings_.shape[0]])
    new = after.recommend(users, n_items=K_STABLE)
    kept = [np.intersect1d(a[a >= 0], b[b >= 0]).size for a, b in zip(old, new)]
    return 1.0 - float(np.mean(kept)) / K_STABLE


def timed(call):
    start = time.perf_counter()
    result = call()
    return result, time.perf_counter() - start


# --------------------------------------------------------------------------
# The runs
# --------------------------------------------------------------------------


def refit_chain(data, make, initial, refit_at):
    """Metrics of a fresh fit at each step of ``refit_at`` (dict by step)."""
    rows, previous = {}, initial
    for t in range(1, N_CHUNKS):
        if t not in refit_at:
            continue
        X = data.up_to(t)
        model, seconds = timed(lambda X=X: make().fit(X))
        rows[t] = {"seconds": seconds, "changed": changed_top(previous, model, X),
                   **next_chunk_metrics(model, data, t)}
        previous = model
    return rows


def update_chain(data, initial, k, average):
    """Metrics of ``partial_fit(..., n_epochs=k)`` at each step (dict by step);
    ``average`` False: the updates answer with their last epoch's vectors."""
    rows, model = {}, copy.deepcopy(initial)
    if not average:
        model.set_params(average=False)
    for t in range(1, N_CHUNKS):
        X = data.up_to(t)
        before = copy.deepcopy(model)
        _, seconds = timed(lambda X=X: model.partial_fit(X, n_epochs=k))
        rows[t] = {"seconds": seconds, "changed": changed_top(before, model, X),
                   **next_chunk_metrics(model, data, t)}
    return rows


def fmt(value, spec):
    return "-" if value is None or np.isnan(value) else format(value, spec)


def evaluated(data, t):
    """``users / pairs (of new items)`` that chunk t+1 evaluates after step t."""
    truth = data.evaluation(t)[0]
    unrankable = int((truth.indices >= data.n_items[t]).sum())
    return f"{int((truth.getnnz(axis=1) > 0).sum())} / {truth.nnz} ({unrankable})"


def print_table(data, k, updates, refits, initial_row):
    print(f"\nk = {k} epochs per update")
    print("| step | pairs | new users | new items | next chunk: users / pairs (new items) "
          "| Recall@50 upd / refit | NDCG@50 upd / refit | s upd / refit "
          "| top-10 changed upd / refit |")
    print("|---:|---:|---:|---:|---:|---|---|---|---|")
    print(f"| 0 | {data.describe(0)[0]} | | | {evaluated(data, 0)} "
          f"| {fmt(initial_row['recall'], '.4f')} | {fmt(initial_row['ndcg'], '.4f')} "
          f"| {fmt(initial_row['seconds'], '.2f')} (fit) | |")
    for t in range(1, N_CHUNKS):
        pairs, new_users, new_items = data.describe(t)
        u, get = updates[t], refits.get(t, {}).get
        print(f"| {t} | {pairs} | {new_users} | {new_items} | {evaluated(data, t)} "
              f"| {fmt(u['recall'], '.4f')} / {fmt(get('recall'), '.4f')} "
              f"| {fmt(u['ndcg'], '.4f')} / {fmt(get('ndcg'), '.4f')} "
              f"| {fmt(u['seconds'], '.2f')} / {fmt(get('seconds'), '.2f')} "
              f"| {fmt(u['changed'], '.1%')} / {fmt(get('changed'), '.1%')} |")


def summary(k, updates, refits):
    """Means over the steps (the refit's over the steps it ran; recall and
    NDCG of the updates also over those steps, to compare like with like)."""
    def mean(rows, key, steps):
        values = [rows[t][key] for t in steps if not np.isnan(rows[t][key])]
        return float(np.mean(values)) if values else np.nan

    steps = sorted(refits)
    row = {"k": k}
    for key in ("recall", "ndcg", "seconds", "changed"):
        row[key] = (mean(updates, key, steps), mean(refits, key, steps))
    row["seconds_all"] = mean(updates, "seconds", sorted(updates))
    return row


def print_summary(dataset, rows):
    print(f"\nSummary, {dataset}: means over the refit steps")
    print("| k | Recall@50 upd / refit | ratio | NDCG@50 upd / refit "
          "| s per update / refit | speed-up | top-10 changed upd / refit |")
    print("|---:|---|---:|---|---|---:|---|")
    for row in rows:
        (ru, rr), (nu, nr), (su, sr), (cu, cr) = (row[key] for key in
                                                  ("recall", "ndcg", "seconds", "changed"))
        print(f"| {row['k']} | {fmt(ru, '.4f')} / {fmt(rr, '.4f')} | {fmt(ru / rr, '.0%')} "
              f"| {fmt(nu, '.4f')} / {fmt(nr, '.4f')} | {fmt(su, '.2f')} / {fmt(sr, '.2f')} "
              f"| {fmt(sr / su, '.1f')}x | {fmt(cu, '.1%')} / {fmt(cr, '.1%')} |")


def warm_up(make):
    """Compile the kernels of fit, growth and partial_fit outside the timed runs."""
    X = tiny_matrix()
    model = make().set_params(n_epochs=1).fit(X[:40, :80])
    model.partial_fit(X, n_epochs=1)
    model.recommend(np.arange(5), n_items=K_STABLE)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=None)
    parser.add_argument("--dataset", default="ml-100k",
                        choices=["ml-100k", *AMAZON_DATASETS])
    parser.add_argument("--epochs", type=int, nargs="+", default=[1, 3, 10, 20],
                        help="epochs per update (partial_fit's n_epochs), one chain each")
    parser.add_argument("--refit-at", type=int, nargs="+", default=None,
                        help="refit only at these steps (1..9); default every step")
    parser.add_argument("--update-average", choices=["keep", "off"], default="keep",
                        help="off: the updated models answer with the last epoch's vectors "
                             "(set_params(average=False) before partial_fit), not running "
                             "means that go back to the first fit")
    parser.add_argument("--n-jobs", type=int, default=2)
    parser.add_argument("--quick", action="store_true",
                        help=f"a smoke run: {QUICK_SETTINGS} for every model")
    add_setting_option(parser)
    args = parser.parse_args(argv)
    settings = {**(QUICK_SETTINGS if args.quick else {}), **dict(args.settings)}

    def make():
        return CMLRecommender(**settings, n_jobs=args.n_jobs, random_state=0)

    folder = find_data_dir(args.data) / args.dataset
    if args.dataset == "ml-100k":
        protocol = "global time (timestamps), ratings >= 4"
        data = Steps(*movielens_by_time(folder))
    else:
        protocol = "each user's own order (relative position in the sequence)"
        data = Steps(*amazon_by_position(folder))
    refit_at = set(args.refit_at or range(1, N_CHUNKS))

    print(f"{args.dataset}, by {protocol}; {utc_now()}")
    print(f"{len(data.steps)} pairs; step 0: {data.describe(0)[0]} pairs, "
          f"{data.n_users[0]} users, {data.n_items[0]} items; at the end "
          f"{data.n_users[-1]} users, {data.n_items[-1]} items")
    print(f"settings {settings or 'package defaults'}, n_jobs={args.n_jobs}, random_state=0; "
          f"refit at steps {sorted(refit_at)}; updates: average "
          f"{'as fitted' if args.update_average == 'keep' else 'off'}")
    print(f"machine {machine_description(args.n_jobs)}")
    warm_up(make)
    others = other_cores_meter()
    started = time.perf_counter()

    initial, seconds = timed(lambda: make().fit(data.up_to(0)))
    initial_row = {"seconds": seconds, **next_chunk_metrics(initial, data, 0)}
    refits = refit_chain(data, make, initial, refit_at)
    rows = []
    for k in args.epochs:
        updates = update_chain(data, initial, k, args.update_average == "keep")
        print_table(data, k, updates, refits, initial_row)
        rows.append(summary(k, updates, refits))
    print_summary(args.dataset, rows)
    busy = others()
    print(f"\n{time.perf_counter() - started:.0f} s in all; other processes kept "
          f"{fmt(busy, '.1f')} cores busy on average meanwhile")


if __name__ == "__main__":
    main()
