"""What fit's input checks cost, against a default fit, on MovieLens-1M.

Run from the repository root::

    python benchmarks/bench_input_checks.py [--data PATH] [--n-jobs 2] [--repeats 5]

The input is the training part of the paper's split of MovieLens-1M
(ratings >= 4, ``train_validation_test_split(X, random_state=0)``), as the
other benchmarks use.  The checks are what ``fit`` runs on ``X`` before
training (``validate_interactions``): the raw sparse structure, scikit-learn's
``validate_data``, finiteness, the sort order of each row and the sign of
the values.  They are timed (best of ``--repeats``, after a warm-up call) for
the matrix as ``fit`` usually gets it (CSR, sorted) and for inputs that need
more work: rows unsorted (sorted on a copy), CSC and COO (converted), dense.
The default fit is ``CMLRecommender(n_jobs=...)`` with every other parameter
at its default, timed once after a warm-up fit that compiles the kernels.

It is a benchmark, not a test: it prints figures and asserts nothing.
"""

import argparse
import time

import numpy as np
from _common import find_data_dir, load_split, utc_now

from sklearn_cml import CMLRecommender
from sklearn_cml._interactions import validate_interactions


def best_time(function, repeats):
    function()  # warm-up: compilation, caches
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return min(times)


def unsorted_rows(X):
    """``X`` with each row's indices reversed (and scipy told it is unsorted)."""
    reversed_ = X.copy()
    for row in range(X.shape[0]):
        start, stop = X.indptr[row], X.indptr[row + 1]
        reversed_.indices[start:stop] = X.indices[start:stop][::-1]
        reversed_.data[start:stop] = X.data[start:stop][::-1]
    reversed_.has_sorted_indices = False
    return reversed_


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=None)
    parser.add_argument("--n-jobs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)

    train = load_split("ml-1m", find_data_dir(args.data))[1][0]
    print(f"MovieLens-1M training part: {train.shape[0]} users x {train.shape[1]} items, "
          f"{train.nnz} pairs; n_jobs={args.n_jobs}; "
          f"{utc_now()}")

    model = CMLRecommender(n_jobs=args.n_jobs, n_epochs=1).fit(train)  # compiles
    model.set_params(n_epochs=CMLRecommender().n_epochs)
    started = time.perf_counter()
    model.fit(train)
    fit_seconds = time.perf_counter() - started
    print(f"default fit ({model.n_epochs} epochs, loss={model.loss!r}): {fit_seconds:.2f} s")

    inputs = {
        "CSR, sorted (the usual input)": train,
        "CSR, rows unsorted": unsorted_rows(train),
        "CSC": train.tocsc(),
        "COO": train.tocoo(),
        "dense": train.toarray(),
    }
    print(f"\n{'input':<32} {'checks (s)':>11} {'% of the fit':>13}")
    for label, matrix in inputs.items():
        seconds = best_time(lambda m=matrix: validate_interactions(
            CMLRecommender(), m, reset=True), args.repeats)
        print(f"{label:<32} {seconds:>11.4f} {100 * seconds / fit_seconds:>12.2f}%")
    np.testing.assert_array_equal(  # the unsorted input gives the same structure
        validate_interactions(CMLRecommender(), inputs["CSR, rows unsorted"],
                              reset=True).indices,
        validate_interactions(CMLRecommender(), train, reset=True).indices)


if __name__ == "__main__":
    main()
