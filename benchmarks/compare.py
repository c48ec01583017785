"""Side-by-side benchmark: CMLRecommender against LightFM, implicit, EASE and popularity.

Run from the repository root (``pip install -e '.[bench]'`` first for the peers)::

    python benchmarks/compare.py --suite quick|full|amazon|large|defaults [--data PATH]
        [--threads 2]
        [--out docs/benchmarks] [--models NAME ...] [--pause 0.2]
    python benchmarks/compare.py --render docs/benchmarks/results.json   # redraw in place

It writes ``results.md`` (one table per dataset), ``results.json`` (all the
figures, validation curves included) and one PNG per dataset (validation
Recall@50 against training seconds) into ``--out``.

Protocol, the same for every model and measured in one run:

- Data through the package loaders.  ``full``: MovieLens-1M (ratings >= 4 are
  positives) and CiteULike-a.  ``quick``: MovieLens-100K (ratings >= 4) with
  a tiny epoch budget, a smoke run of about a minute.  ``amazon``: the
  three Amazon 5-core review sets of S3-Rec (Beauty, Sports and Outdoors,
  Toys and Games; 12,000 to 18,000 items, 0.05% to 0.07% dense; every
  review a positive), with ``full``'s budget.  ``large``: a
  synthetic catalogue of 40,000 items (``make_interactions``, 40,000 users,
  about 2 million positives; no files needed), for how the defaults fare
  on a catalogue ten times MovieLens-1M's: CML runs its defaults alone
  (``SUITE_GRIDS``), the peers their grids; validation every 10 epochs (ALS:
  every 5 sweeps), as ranking 40,000 items for 40,000 users takes a while.
  ``defaults``: the five catalogues with files (``full``'s and ``amazon``'s),
  with ``full``'s budget, for one default fit against the tuned peers.
- Split: ``train_validation_test_split(X, random_state=0)``, per user 60% /
  20% / 20% of the items, users with at least 5.  Models train on the train
  part only.  Validation and test rank every item except the user's
  training items (``exclude=train``), as the CML paper does.
- Models: embedding size 100, ``--threads`` threads each, ``random_state=0``;
  the peers and their grids of settings are in ``benchmarks/peers/``:
  CML defaults (one default ``fit``, timed whole, nothing tuned),
  CMLRecommender (tuned epoch by epoch), LightFM WARP, implicit BPR and ALS, EASE (a closed form,
  no embedding) and popularity.
- Tuning, one budget for all: every setting of a model's grid (at most 4) is
  trained epoch by epoch up to the suite's maximum (``SCHEDULES``); every few
  epochs, and after the last, validation Recall@50 is measured and the
  parameters of the best epoch so far are kept (copied).  The best (setting,
  epoch) on validation is scored on test: Recall@50, Recall@100, NDCG@50
  (``sklearn_cml.metrics.ranking_metrics``, scores computed in batches).
- Timing: wall time inside the training calls only; the clock stops during
  evaluation and during a short pause after it (``--pause``, 0.2 s by
  default; BLAS is held to one thread for the whole run, so no idle thread
  spins into the next epoch; implicit's ALS asks for that anyway).
  Reported for the chosen setting: seconds to the best validation epoch
  (cumulative, from the start of training, JIT compilation excluded by a
  warm-up), median seconds per epoch and the training seconds of the whole
  grid.  CMLRecommender's time to its best validation recall is divided by
  LightFM WARP's and implicit BPR's (same run, same threads).  A closed
  form (EASE, popularity) is one "epoch": its time is the fit.

A model whose library is not installed is skipped with the command that
installs it; a model that cannot run on a dataset (EASE when its
n_items x n_items matrix does not fit in the memory available) is skipped
on that dataset, with the reason, and runs on the others.  It is a
benchmark, not a test: it prints and writes figures and asserts nothing.
"""

import argparse
import json
import os
import shlex
import statistics
import sys
import time
from pathlib import Path

from _common import (
    AMAZON_DATASETS,
    REPO_ROOT,
    BestEpoch,
    cpu_model,
    find_data_dir,
    library_versions,
    load_split,
    machine_description,
    other_cores_meter,
    utc_now,
)
from peers import INSTALL_HINT, PEERS, Skipped
from threadpoolctl import threadpool_limits

from sklearn_cml.metrics import ranking_metrics

N_COMPONENTS = 100
RANDOM_STATE = 0
# Untimed pause after each evaluation (the default of --pause), so that
# threads it left busy settle before the training clock starts again.
PAUSE_SECONDS = 0.2

# (maximum epochs, evaluate every) for each model schedule, per suite.
SCHEDULES = {
    "quick": {"sgd": (10, 2), "als": (10, 2), "none": (1, 1)},
    "full": {"sgd": (60, 5), "als": (30, 3), "none": (1, 1)},
    # The Amazon sets have about as many training pairs as CiteULike-a (100k
    # to 180k), so full's budget serves.
    "amazon": {"sgd": (60, 5), "als": (30, 3), "none": (1, 1)},
    "large": {"sgd": (40, 10), "als": (15, 5), "none": (1, 1)},
    # Every catalogue with files, for the defaults against the tuned peers.
    "defaults": {"sgd": (60, 5), "als": (30, 3), "none": (1, 1)},
}
SUITE_DATASETS = {"quick": ("ml-100k",), "full": ("ml-1m", "citeulike-a"),
                  "amazon": AMAZON_DATASETS, "large": ("synthetic-40k",),
                  "defaults": ("ml-1m", "citeulike-a", *AMAZON_DATASETS)}
DATASET_LABELS = {
    "ml-100k": "MovieLens-100K (ratings >= 4)",
    "ml-1m": "MovieLens-1M (ratings >= 4)",
    "citeulike-a": "CiteULike-a",
    "amazon-beauty": "Amazon Beauty (5-core)",
    "amazon-sports-outdoors": "Amazon Sports and Outdoors (5-core)",
    "amazon-toys-games": "Amazon Toys and Games (5-core)",
    "synthetic-40k": "Synthetic, 40,000 items (make_interactions)",
}
# Grids a suite replaces: on the large catalogue CML runs its defaults alone
# (what a user gets without tuning), against the peers' full grids.
SUITE_GRIDS = {"large": {"CMLRecommender": ({},)}}
CML, RATIO_PEERS = "CMLRecommender", ("LightFM WARP", "implicit BPR")
DEFAULTS = "CML defaults"  # one default fit, as a user runs it
TARGET = "implicit ALS"  # whose best validation recall the others race to


# --------------------------------------------------------------------------
# Training one setting, with the clock stopped during evaluation
# --------------------------------------------------------------------------


def run_setting(peer, setting, split, threads, schedule, pause=PAUSE_SECONDS):
    """Train one setting epoch by epoch; return its curve and best snapshot.

    The curve holds, at each evaluated epoch, the validation Recall@50 and
    the training seconds so far.  The score function of the best epoch is
    returned apart (it is not JSON).  ``pause``: untimed seconds after each
    evaluation.
    """
    max_epochs, every = schedule
    best = BestEpoch(split, every, max_epochs, pause=pause)
    peer.train(split[0], setting, n_components=N_COMPONENTS, threads=threads,
               n_epochs=max_epochs, random_state=RANDOM_STATE, after_epoch=best)
    best.stop()
    run = {"setting": setting, "curve": best.curve, "epoch_seconds": best.laps,
           "total_seconds": best.total, "best_epoch": best.epoch,
           "best_validation_recall": best.recall, "seconds_to_best": best.seconds}
    return run, best.scores


def test_metrics(split, scores):
    """Recall@50, Recall@100 and NDCG@50 on test, ranking all but the training items."""
    train, _, test = split
    at_50 = ranking_metrics(test, scores, k=50, exclude=train, metrics=("recall", "ndcg"))
    at_100 = ranking_metrics(test, scores, k=100, exclude=train, metrics=("recall",))
    return {"recall@50": at_50["recall"], "recall@100": at_100["recall"],
            "ndcg@50": at_50["ndcg"]}


def run_model(peer, split, threads, schedule, grid, pause=PAUSE_SECONDS):
    """Every setting of ``grid``; the best on validation is scored on test."""
    peer.warm_up(threads)
    runs, best_scores, chosen = [], None, None
    for setting in grid:
        run, scores = run_setting(peer, setting, split, threads, schedule, pause)
        runs.append(run)
        print(f"  {peer.NAME:<15} {format_setting(setting):<32} best epoch "
              f"{run['best_epoch']:>3}: validation Recall@50 "
              f"{run['best_validation_recall']:.4f}, {run['seconds_to_best']:.1f} s to best, "
              f"{run['total_seconds']:.1f} s in all", flush=True)
        if chosen is None or run["best_validation_recall"] > chosen["best_validation_recall"]:
            chosen, best_scores = run, scores
    epochs = chosen["epoch_seconds"]
    facts = getattr(peer, "fit_facts", None)
    return {
        "version": peer.version(),
        **({"fit_facts": facts()} if facts else {}),
        "schedule": {"max_epochs": schedule[0], "evaluate_every": schedule[1]},
        "runs": runs,
        "chosen": {
            "setting": chosen["setting"],
            "best_epoch": chosen["best_epoch"],
            "validation_recall@50": chosen["best_validation_recall"],
            "seconds_to_best": chosen["seconds_to_best"],
            "seconds_per_epoch": statistics.median(epochs),
            "grid_training_seconds": sum(run["total_seconds"] for run in runs),
        },
        "test": test_metrics(split, best_scores),
    }


# --------------------------------------------------------------------------
# One dataset
# --------------------------------------------------------------------------


def describe_split(X, split):
    train, validation, test = split
    return {"users": X.shape[0], "items": X.shape[1], "positives": int(X.nnz),
            "train": int(train.nnz), "validation": int(validation.nnz),
            "test": int(test.nnz), "test_users": int((test.getnnz(axis=1) > 0).sum())}


def time_to_best_ratios(models):
    """CML's seconds to best validation recall over LightFM WARP's and BPR's."""
    if CML not in models:
        return {}
    cml_seconds = models[CML]["chosen"]["seconds_to_best"]
    return {peer: cml_seconds / models[peer]["chosen"]["seconds_to_best"]
            for peer in RATIO_PEERS
            if peer in models and models[peer]["chosen"]["seconds_to_best"] > 0}


def add_seconds_to_target(models):
    """Each model's training seconds until its chosen setting first reaches
    the target's best validation Recall@50 (None if it never does)."""
    if TARGET not in models:
        return
    target = models[TARGET]["chosen"]["validation_recall@50"]
    for model in models.values():
        chosen = next(run for run in model["runs"]
                      if run["setting"] == model["chosen"]["setting"])
        # One default fit is one "epoch"; its traced fit has the epochs' curve.
        curve = model.get("fit_facts", {}).get("curve") or chosen["curve"]
        model["chosen"]["seconds_to_target"] = next(
            (point["seconds"] for point in curve if point["recall"] >= target), None)


def run_dataset(name, data_dir, peers, threads, schedules, grids, pause=PAUSE_SECONDS):
    """Split, run every available peer, return the dataset's results.

    A peer that raises ``Skipped`` (it cannot run on this dataset) is left
    out of ``models`` and listed, with the reason, in ``skipped``."""
    X, split = load_split(name, data_dir)
    info = describe_split(X, split)
    print(f"\n== {DATASET_LABELS[name]}: {info['users']} users x {info['items']} items, "
          f"{info['positives']} positives; train {info['train']}, validation "
          f"{info['validation']}, test {info['test']} ==", flush=True)
    other_cores, started = other_cores_meter(), time.perf_counter()
    models, skipped = {}, {}
    for peer in peers:
        try:
            models[peer.NAME] = run_model(peer, split, threads, schedules[peer.SCHEDULE],
                                          grids[peer.NAME], pause)
        except Skipped as why:
            skipped[peer.NAME] = str(why)
            print(f"  {peer.NAME:<15} skipped on this dataset: {why}", flush=True)
    add_seconds_to_target(models)
    return {"label": DATASET_LABELS[name], "data": info, "models": models, "skipped": skipped,
            "time_to_best_ratios": time_to_best_ratios(models),
            "wall_seconds": time.perf_counter() - started,
            "other_processes_cores": other_cores()}


# --------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------


def format_setting(setting):
    return ", ".join(
        f"{key}={value}" if isinstance(value, str) else f"{key}={value:g}"
        for key, value in setting.items()
    ) or "defaults"


def results_table(dataset):
    """A markdown table of one dataset's results, then the ratio lines."""
    lines = [
        "| model | best setting | best epoch | Recall@50 | Recall@100 | NDCG@50 "
        f"| s/epoch | s to best | s to {TARGET} best | grid s |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, model in dataset["models"].items():
        chosen, test = model["chosen"], model["test"]
        # A closed form (one "epoch"): no epochs to count, its time is the fit.
        timed = model["schedule"]["max_epochs"] > 1
        per_epoch = f"{chosen['seconds_per_epoch']:.3f}" if timed else "-"
        lines.append(
            f"| {name} | {format_setting(chosen['setting'])} | "
            f"{chosen['best_epoch'] if timed else '-'} | {test['recall@50']:.4f} | "
            f"{test['recall@100']:.4f} | {test['ndcg@50']:.4f} | {per_epoch} | "
            f"{chosen['seconds_to_best']:.1f} | "
            f"{_seconds(chosen.get('seconds_to_target'))} | "
            f"{chosen['grid_training_seconds']:.1f} |"
        )
    skipped = dataset.get("skipped")  # absent from results.json of older runs
    if skipped:
        lines.append("")
        lines.append("Skipped on this dataset: " + "; ".join(
            f"{name} ({why})" for name, why in skipped.items()) + ".")
    ratios = dataset["time_to_best_ratios"]
    if ratios:
        lines.append("")
        lines.append("CMLRecommender's time to best validation Recall@50, relative to: "
                     + "; ".join(f"{peer} {ratio:.2f}x" for peer, ratio in ratios.items())
                     + " (below 1: CML gets there sooner).")
    models = dataset["models"]
    if DEFAULTS in models:
        lines.append("")
        lines.append(defaults_line(models))
    if CML in models and TARGET in models:
        reached = models[CML]["chosen"].get("seconds_to_target")
        own = models[TARGET]["chosen"]["seconds_to_best"]
        lines.append("")
        lines.append(
            f"CMLRecommender's time to {TARGET}'s best validation Recall@50: "
            + (f"{reached:.1f} s, {reached / own:.2f}x {TARGET}'s own {own:.1f} s."
               if reached is not None else f"never reached ({TARGET}: {own:.1f} s)."))
    return "\n".join(lines)


def defaults_line(models):
    """What a user gets from one default fit, against the best tuned peers."""
    model = models[DEFAULTS]
    facts, seconds = model.get("fit_facts", {}), model["chosen"]["seconds_to_best"]
    recall = model["test"]["recall@50"]
    parts = [f"{DEFAULTS}: one fit of {seconds:.1f} s"]
    if TARGET in models:
        own = models[TARGET]["chosen"]["seconds_to_best"]
        parts[0] += f", {seconds / own:.2f}x {TARGET}'s"
        reached = model["chosen"].get("seconds_to_target")
        if facts.get("curve"):
            parts.append(f"reached {TARGET}'s best validation Recall@50 "
                         + (f"after {reached:.1f} s, {reached / own:.2f}x {TARGET}'s time"
                            if reached is not None else "in none of its epochs"))
    if facts:
        kept = facts["epoch_kept"]
        parts.append(f"ran {facts['epochs_run']} epochs"
                     + (f", kept epoch {kept}" if kept is not None else "")
                     + "; resolved " + ", ".join(f"{name}={value}" for name, value
                                                 in facts["resolved_params"].items()))
    for peer in (TARGET, "EASE"):
        if peer in models:
            peer_recall = models[peer]["test"]["recall@50"]
            parts.append(f"test Recall@50 {recall / peer_recall - 1:+.1%} against {peer}")
    return "; ".join(parts) + "."


def _seconds(value):
    return "" if value is None else f"{value:.1f}"


def markdown_report(results, protocol_link="../benchmarks.md"):
    meta = results["meta"]
    machine = meta["machine"]
    versions = ", ".join(f"{name} {version}" for name, version in meta["versions"].items())
    lines = [
        "# Benchmark results",
        "",
        f"Written by `{meta['command']}` on {meta['date']} "
        f"({meta['wall_seconds'] / 60:.1f} min). Protocol: [benchmarks.md]({protocol_link}).",
        "",
        f"- machine: {machine['cpu']}, {machine['logical_cores']} logical cores "
        f"({machine['usable_cores']} usable); {machine['threads']} threads per model",
        f"- versions: {versions}",
        f"- suite `{meta['suite']}`: " + "; ".join(
            f"{kind} models up to {budget[0]} epochs, validation every {budget[1]}"
            for kind, budget in meta["schedules"].items() if kind != "none"),
        "- Recall and NDCG on test, ranking every item but the user's training ones; "
        "times are training seconds only (s/epoch: median; s to best: up to the best "
        f"validation epoch of the chosen setting; s to {TARGET} best: up to the first "
        f"evaluated epoch whose validation Recall@50 reaches {TARGET}'s best, blank if "
        "none does; grid s: all settings, all epochs).",
    ]
    lines.append("- grids (validation Recall@50 picks one setting and epoch per model; "
                 "reasons in `benchmarks/peers/`): " + "; ".join(
                     f"{name}: " + " / ".join(format_setting(setting) for setting in grid)
                     for name, grid in meta["grids"].items() if grid != [{}]))
    if meta["skipped"]:
        lines.append("- skipped: " + "; ".join(f"{name} ({why})"
                                                for name, why in meta["skipped"].items()))
    for name, dataset in results["datasets"].items():
        data = dataset["data"]
        others = dataset["other_processes_cores"]
        lines += [
            "",
            f"## {dataset['label']}",
            "",
            f"{data['users']} users x {data['items']} items; train {data['train']}, "
            f"validation {data['validation']}, test {data['test']} positives "
            f"({data['test_users']} users with test items)."
            + ("" if others is None else
               f" Other processes kept {others:.2f} cores busy on average meanwhile."),
            "",
            results_table(dataset),
            "",
            f"![Validation Recall@50 against training seconds, {dataset['label']}]"
            f"({name}.png)",
        ]
    return "\n".join(lines) + "\n"


def plot_curves(dataset, path):
    """Validation Recall@50 against cumulative training seconds, chosen settings."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FormatStrFormatter, NullFormatter

    figure, axes = plt.subplots(figsize=(7, 4.5))
    for name, model in dataset["models"].items():
        chosen = next(run for run in model["runs"]
                      if run["setting"] == model["chosen"]["setting"])
        traced = model.get("fit_facts", {}).get("curve")
        if traced:  # one default fit, traced epoch by epoch
            axes.plot([point["seconds"] for point in traced],
                      [point["recall"] for point in traced], label=name)
            continue
        if model["schedule"]["max_epochs"] == 1:  # nothing trained: a level
            axes.axhline(chosen["best_validation_recall"], color="grey", linestyle="--",
                         label=name)
            continue
        seconds = [point["seconds"] for point in chosen["curve"]]
        recalls = [point["recall"] for point in chosen["curve"]]
        axes.plot(seconds, recalls, marker="o", markersize=3,
                  label=f"{name} ({format_setting(chosen['setting'])})")
    axes.set_xscale("log")
    axes.xaxis.set_major_formatter(FormatStrFormatter("%g"))
    axes.xaxis.set_minor_formatter(NullFormatter())
    axes.set_xlabel("training seconds (cumulative, evaluation excluded, log scale)")
    axes.set_ylabel("validation Recall@50")
    axes.set_title(dataset["label"])
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize=8, loc="lower right")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def write_outputs(results, out_dir):
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    protocol = Path(os.path.relpath(REPO_ROOT / "docs" / "benchmarks.md", out_dir.resolve()))
    (out_dir / "results.md").write_text(markdown_report(results, protocol.as_posix()))
    for name, dataset in results["datasets"].items():
        try:
            plot_curves(dataset, out_dir / f"{name}.png")
        except ImportError:
            print(f"matplotlib is not installed: no plot ({INSTALL_HINT})")


# --------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------


def available_peers(selected):
    """The peers to run, and why the others are skipped."""
    peers, skipped = [], {}
    for peer in PEERS:
        if selected and peer.NAME not in selected:
            continue
        why = peer.missing()
        if why is None:
            peers.append(peer)
        else:
            skipped[peer.NAME] = why
            print(f"{peer.NAME} skipped: {why}. To include it: {INSTALL_HINT}")
    return peers, skipped


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--suite", choices=sorted(SCHEDULES), default="quick")
    parser.add_argument("--data", help="folder holding ml-100k/, ml-1m/, citeulike-a/, "
                        "amazon-beauty/, amazon-sports-outdoors/, amazon-toys-games/ "
                        "(default: $SKLEARN_CML_DATA, else ../shared/data)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=None,
                        help="where the results go (default: docs/benchmarks; with "
                        "--render, the results.json's own folder)")
    parser.add_argument("--models", nargs="+", metavar="NAME",
                        help="run only these models (names as in the tables)")
    parser.add_argument("--render", metavar="JSON", help="run nothing: rewrite results.md "
                        "and the plots in --out from a results.json")
    parser.add_argument("--pause", type=float, default=PAUSE_SECONDS, metavar="SECONDS",
                        help="untimed pause after each evaluation, so that threads it left "
                        f"busy settle (default {PAUSE_SECONDS})")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.out is None:
        args.out = str(Path(args.render).parent if args.render
                       else REPO_ROOT / "docs" / "benchmarks")
    if args.render:
        results = json.loads(Path(args.render).read_text())
        write_outputs(results, Path(args.out))
        print(f"rendered {args.render} into {args.out}: results.md and one plot per "
              "dataset (if matplotlib is installed)")
        return
    command = "python benchmarks/compare.py " + shlex.join(
        sys.argv[1:] if argv is None else argv)
    needs_files = any(not name.startswith("synthetic") for name in SUITE_DATASETS[args.suite])
    data_dir = find_data_dir(args.data) if needs_files else None
    peers, skipped = available_peers(args.models)
    schedules = SCHEDULES[args.suite]
    grids = {peer.NAME: SUITE_GRIDS.get(args.suite, {}).get(peer.NAME, peer.GRID)
             for peer in peers}
    started = time.perf_counter()
    date = utc_now()
    print(f"{command}\n{date}; data {data_dir}; {cpu_model()}, {os.cpu_count()} cores; "
          f"{args.threads} threads; load average {os.getloadavg()[0]:.2f}")
    with threadpool_limits(limits=1, user_api="blas"):
        datasets = {name: run_dataset(name, data_dir, peers, args.threads, schedules, grids,
                                      args.pause)
                    for name in SUITE_DATASETS[args.suite]}
    results = {
        "meta": {"suite": args.suite, "command": command, "date": date,
                 "wall_seconds": time.perf_counter() - started,
                 "machine": machine_description(args.threads),
                 "versions": library_versions(),
                 "schedules": schedules, "n_components": N_COMPONENTS,
                 "random_state": RANDOM_STATE, "pause_seconds": args.pause,
                 "skipped": skipped,
                 "grids": {name: list(grid) for name, grid in grids.items()}},
        "datasets": datasets,
    }
    for dataset in datasets.values():
        print(f"\n{dataset['label']}\n\n{results_table(dataset)}")
    write_outputs(results, Path(args.out))
    print(f"\nwrote {args.out}/results.md, results.json and "
          f"{', '.join(name + '.png' for name in datasets)}")


if __name__ == "__main__":
    main()
