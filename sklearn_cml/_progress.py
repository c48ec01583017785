"""What ``verbose`` prints during training: compilation, epochs, early stopping.

Three kinds of line, all prefixed ``[CMLRecommender]``:

- before the first epoch, when the training kernels still have to be
  compiled by Numba (nothing else is printed for a minute otherwise), and
  likewise before new users are first placed or a model first scored;
- after each epoch: its loss, its validation score when it was scored,
  the time elapsed and an estimate of the time left;
- at the end of a fit with early stopping: whether and when it stopped,
  and which epoch's vectors were kept.
"""

import time

from numba.core.caching import NullCache

PREFIX = "[CMLRecommender]"


# ------------------------------------------------------------- compilation


def compilation_notice(kernels, what="the training kernels", duration="about a minute"):
    """The line to print before ``kernels`` first run, or None if nothing compiles.

    ``kernels`` are the Numba dispatchers a call runs (the solvers' kernels
    are dispatchers of their own for each loss); ``what`` names them and
    ``duration`` says roughly how long compiling them takes.  Every entry
    point converts its arrays to one set of dtypes, so a kernel with any
    signature compiled or cached has the one the call needs.
    """
    readiness = [_kernel_readiness(kernel) for kernel in kernels]
    if all(ready == "compiled" for ready in readiness):
        return None
    if "unknown" in readiness:
        return f"{PREFIX} Compiling {what} (may take {duration} on first use)..."
    if "not cached" in readiness:
        return f"{PREFIX} Compiling {what} ({duration}; they are not cached on disk)..."
    return (f"{PREFIX} Compiling {what} (first use in this environment, {duration}; "
            "`python -m sklearn_cml --warmup` compiles every kernel once)...")


def announce_compilation(verbose, kernels, what, duration):
    """With ``verbose``, print ``compilation_notice``'s line, if any; return
    whether ``kernels`` will compile."""
    if not verbose:
        return False
    notice = compilation_notice(kernels, what, duration)
    if notice is not None:
        print(notice, flush=True)
    return notice is not None


def _kernel_readiness(kernel):
    """``"compiled"`` when the kernel is compiled in this process, or cached
    on disk; else ``"cold"`` (it will be compiled and cached), ``"not
    cached"`` (compiled in every process: the on-disk cache is off) or
    ``"unknown"`` (Numba's cache could not be read)."""
    if kernel.signatures:
        return "compiled"
    try:
        cache = kernel._cache
        if isinstance(cache, NullCache):
            return "not cached"
        signatures = _cached_signatures(kernel, cache)
    except Exception:  # Numba's private cache API changed: say less
        return "unknown"
    return "compiled" if signatures else "cold"


def _cached_signatures(kernel, cache):
    """Signatures of the on-disk cache index that this process can load:
    same source (Numba drops the index when the file changes), bytecode and
    machine."""
    codegen = kernel.targetctx.codegen()
    index = cache._cache_file._load_index()
    return [key[0] for key in index if key[1:] == cache._index_key(key[0], codegen)[1:]]


# ------------------------------------------------------------------ epochs


class EpochReport:
    """Prints one line per epoch: loss, validation, time elapsed and left.

    The time left is the mean training time of an epoch times the epochs
    left, plus, with early stopping every ``validation_interval`` epochs,
    the mean time of a validation times the validations left.  The first
    epoch and the first validation are left out of the means once a second
    one is timed: they carry the first touches of memory and Numba's
    compilation.  When the first epoch compiled (``compiling``), no
    estimate follows it.
    """

    def __init__(self, last_epoch, top_k, validation_interval=None, compiling=False):
        self.last_epoch = last_epoch
        self.top_k = top_k
        self.validation_interval = validation_interval
        self.compiling = compiling
        self.started = time.perf_counter()
        self.epoch_started = self.training_ended = self.started
        self.training_durations = []
        self.validation_durations = []

    def start_epoch(self):
        self.epoch_started = time.perf_counter()

    def end_training(self):
        """Called between the epoch's training and its validation."""
        self.training_ended = time.perf_counter()

    def end_epoch(self, epoch, loss, validation_score=None):
        now = time.perf_counter()
        self.training_durations.append(self.training_ended - self.epoch_started)
        if validation_score is not None:
            self.validation_durations.append(now - self.training_ended)
        print(self.line(epoch, loss, validation_score, now - self.epoch_started,
                        now - self.started), flush=True)

    def line(self, epoch, loss, validation_score, seconds, elapsed):
        validation = ("" if validation_score is None
                      else f", validation recall@{self.top_k} {validation_score:.4f}")
        line = (f"{PREFIX} epoch {epoch}/{self.last_epoch}: loss {loss:.5f}{validation}, "
                f"{seconds:.2f} s; {format_duration(elapsed)} elapsed")
        if epoch == self.last_epoch:
            return line
        if self.compiling and len(self.training_durations) == 1:
            return f"{line} (with compilation)"
        left = _mean_but_first(self.training_durations) * (self.last_epoch - epoch)
        if self.validation_interval is None:
            return f"{line}, about {format_duration(left)} left"
        validations_left = sum(
            1 for later in range(epoch + 1, self.last_epoch + 1)
            if later % self.validation_interval == 0 or later == self.last_epoch
        )  # fmt: skip
        left += _mean_but_first(self.validation_durations) * validations_left
        # Early stopping may end training sooner: the estimate is a bound.
        return f"{line}, at most {format_duration(left)} left"


def _mean_but_first(durations):
    """Mean of the durations after the first (of the first alone if it is
    the only one; 0 if there is none)."""
    timed = durations[1:] or durations
    return sum(timed) / len(timed) if timed else 0.0


def format_duration(seconds):
    """``"4.2 s"``, ``"3 min 05 s"``, ``"2 h 07 min"``."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, seconds = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


# ---------------------------------------------------------- early stopping


def early_stopping_summary(stopper, n_iter, best_epoch, top_k):
    """The line that ends a fit with early stopping (``_engine.EarlyStopping``)."""
    kept = (f"keeping the vectors of epoch {best_epoch} (validation recall@{top_k} "
            f"{stopper.best_score:.4f})")
    if stopper.stopped:
        return f"{PREFIX} Early stopping at epoch {n_iter}: {stopper.reason()}; {kept}."
    return f"{PREFIX} Reached epoch {n_iter} without early stopping; {kept}, the best."


def resolved_summary(resolved):
    """The line that says what the "auto" parameters resolved to on the data."""
    values = ", ".join(f"{name}={value!r}" for name, value in resolved.items())
    return f"{PREFIX} Resolved from the data: {values}."


def validation_notice(n_pairs, n_users, top_k, interval):
    """The line that says what early stopping watches, before the first epoch."""
    every = "every epoch" if interval == 1 else f"every {interval} epochs"
    return (f"{PREFIX} Early stopping: watching recall@{top_k} of {n_pairs} held-out "
            f"interactions of {n_users} users, {every}.")


def temperature_notice(measured, n_pairs, n_iter, start, softer):
    """The line that says which temperature ``temperature="auto"`` measured."""
    return (f"{PREFIX} Temperature: {measured:g}, {softer:g} times the most likely for "
            f"{n_pairs} held-out interactions after {n_iter} epochs at {start:g}; "
            "training on with it.")
