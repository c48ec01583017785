"""Memory guards: refuse a request whose big buffers cannot fit, before allocating them.

An oversized parameter (``n_components``, ``pool_size``, ``n_negatives``,
``hidden_size``) or input (a catalogue of a billion items, a query of
millions of users) would otherwise allocate gigabytes and then fail with
numpy's or Numba's "Allocation failed", or be killed by the system.  So
``fit``, ``partial_fit``, fold-in and the queries first estimate the bytes
of their big buffers from the parameters and shapes alone, and compare
the sum with what this process may use (``memory_limit``).

The estimates count only the buffers that grow with a parameter or a
shape, each at its smallest: a request refused here could not have run.
"""

import os
import sys
from typing import NamedTuple

GIB = 1 << 30


class Need(NamedTuple):
    """One big buffer: its size, what it holds, and how to make it smaller."""

    n_bytes: int
    what: str
    fix: str


def memory_limit():
    """Bytes this process may use at most, or None when unknown.

    The physical memory, lowered by an address-space limit
    (``ulimit -v``, RLIMIT_AS) or a container's (cgroup) memory limit.
    """
    known = [limit for limit in (_physical_memory(), _address_space_limit(), _cgroup_limit())
             if limit]
    return min(known) if known else None


def check_memory(needs, action):
    """Raise ValueError if the ``needs`` of ``action`` exceed ``memory_limit``.

    The message gives the total in GiB, the limit, and the fix of the
    largest need.
    """
    total = sum(need.n_bytes for need in needs)
    limit = memory_limit()
    if limit is None or total <= limit:
        return
    largest = max(needs, key=lambda need: need.n_bytes)
    raise ValueError(
        f"{action} would need at least {total / GIB:.1f} GiB of memory, more than the "
        f"{limit / GIB:.1f} GiB this machine has (physical memory, or this process's "
        f"limit). The largest part is {largest.what}: {largest.n_bytes / GIB:.1f} GiB. "
        f"{largest.fix}."
    )


# ------------------------------------------------------------- estimates


def training_needs(config, data, n_features=None):
    """The big buffers of ``fit`` / ``partial_fit`` (``config``: a
    ``_config.Config``; ``data``: ``Interactions``; ``n_features``: the
    number of item features, None without)."""
    n_users, n_items, k = data.n_users, data.n_items, config.n_components
    needs = [
        Need(4 * (n_users + n_items) * (k + 1),
             f"the vectors of {n_users} users and {n_items} items in n_components={k} "
             "dimensions, and their AdaGrad sums",
             "Lower n_components, or give fewer users (rows) or items (columns)"),
        # Item popularity, the sampler's tables and the item maps.
        Need(24 * n_items, f"the per-item tables of {n_items} items",
             "Give fewer items (columns): drop the items no user has"),
    ]
    if config.covariance_weight > 0:
        # Gram matrices of the users and of the items, and their covariance.
        needs.append(Need(12 * k * k, f"the covariance step's {k} x {k} matrices",
                          "Lower n_components, or set covariance_weight=0"))
    needs += solver_needs(config, data, n_items)
    if n_features is not None:
        needs.append(network_need(config.hidden_size, n_features, k))
    return needs


def fold_in_needs(config, data, n_items):
    """The big buffers of placing the new users of ``data`` against ``n_items``
    frozen items (``transform``, ``predict``, ``score``)."""
    return [
        Need(4 * data.n_users * config.n_components,
             f"the vectors of {data.n_users} new users in n_components="
             f"{config.n_components} dimensions", "Pass fewer rows at a time"),
        *solver_needs(config, data, n_items, fold_in=True),
    ]


def solver_needs(config, data, n_items, fold_in=False):
    """The solver's buffers (see ``_solvers.block`` and ``_solvers.hogwild``)."""
    name, n_threads, k = config.solver.name, config.n_threads, config.n_components
    if name == "block":
        pool_size = config.pool_size
        pool_fix = "Lower pool_size (or leave it at 'auto')"
        if fold_in:  # one pool per thread
            return [Need(n_threads * (12 * n_items + pool_size * (4 * k + 16)),
                         f"{n_threads} pools of pool_size={pool_size} negatives in "
                         f"{k} dimensions", pool_fix)]
        # Two (users in a block) x pool_size float32 matrices dominate, with
        # two copies of the pool's vectors and the pool's item maps.
        slots = _slots_per_block(data, config.block_size)
        return [Need(8 * slots * pool_size + pool_size * (8 * k + 48) + 28 * n_items,
                     f"the block solver's workspace for pools of pool_size={pool_size} "
                     f"negatives, about {slots} users per block, in {k} dimensions",
                     pool_fix)]
    if name == "hogwild":
        group_size = config.loss.group_size
        n_draws = group_size * config.n_negatives
        return [Need(n_threads * (4 * n_items + 28 * n_draws
                                  + 4 * k * (1 + group_size + n_draws)),
                     f"the per-pair solver's buffers ({n_threads} thread(s)) for "
                     f"n_negatives={config.n_negatives} draws per pair ({group_size} pairs "
                     f"a step) in {k} dimensions",
                     "Lower n_negatives")]
    return []  # a solver registered from outside: no estimate


def network_need(hidden_size, n_features, n_components):
    """The feature network's weights and their gradients."""
    return Need(8 * hidden_size * (n_features + n_components + 1),
                f"the feature network of hidden_size={hidden_size} units on {n_features} "
                f"features and {n_components} dimensions", "Lower hidden_size")


def answer_need(n_queries, width, what, fix):
    """An answer of ``n_queries`` rows of ``width`` (float32 distance, int64 index) pairs."""
    return Need(12 * n_queries * width,
                f"the answer of {n_queries} rows of {width} {what} (distances and indices)",
                fix)


def _slots_per_block(data, block_size):
    """About how many users a block of ``block_size`` pairs holds."""
    n_pairs = max(data.n_interactions, 1)
    n_active = max(int(data.n_users), 1)
    return max(1, min(n_active, min(block_size, n_pairs) * n_active // n_pairs))


# ------------------------------------------------------- what there is


def _physical_memory():
    """Total physical memory in bytes, or None."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        pass
    if sys.platform == "win32":
        return _windows_memory()
    return _meminfo_total()


def _meminfo_total():
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _windows_memory():
    try:
        import ctypes

        class MemoryStatus(ctypes.Structure):
            _fields_ = [("dwLength", ctypes.c_ulong), ("dwMemoryLoad", ctypes.c_ulong),
                        ("ullTotalPhys", ctypes.c_ulonglong),
                        ("ullAvailPhys", ctypes.c_ulonglong),
                        ("ullTotalPageFile", ctypes.c_ulonglong),
                        ("ullAvailPageFile", ctypes.c_ulonglong),
                        ("ullTotalVirtual", ctypes.c_ulonglong),
                        ("ullAvailVirtual", ctypes.c_ulonglong),
                        ("ullAvailExtendedVirtual", ctypes.c_ulonglong)]

        status = MemoryStatus()
        status.dwLength = ctypes.sizeof(MemoryStatus)
        if ctypes.windll.kernel32.GlobalMemoryStatusEx(ctypes.byref(status)):
            return int(status.ullTotalPhys)
    except (AttributeError, OSError):
        pass
    return None


def _address_space_limit():
    """The soft RLIMIT_AS in bytes (``ulimit -v``), or None."""
    try:
        import resource
    except ImportError:  # not POSIX
        return None
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    return None if soft == resource.RLIM_INFINITY else soft


# cgroup v2, then v1; v1 reports an unlimited group as a huge number.
_CGROUP_FILES = ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes")


def _cgroup_limit():
    for path in _CGROUP_FILES:
        try:
            with open(path) as limit_file:
                text = limit_file.read().strip()
        except OSError:
            continue
        if text.isdigit() and int(text) < 1 << 60:
            return int(text)
    return None
