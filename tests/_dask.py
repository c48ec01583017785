"""What the Dask tests share: skipping, saying why, without dask, and a
LocalCluster of two single-threaded worker processes standing in for a
cluster (the workers unpickle models, import the package and load the
Numba kernels from the on-disk cache exactly as on remote machines)."""

from contextlib import contextmanager

import pytest

_REASON = "dask.distributed is not installed: pip install 'sklearn-cml[dask]'"


def needs_dask():
    """``dask.distributed``, or a skip that prints its reason."""
    try:
        return pytest.importorskip("dask.distributed", reason=_REASON)
    except pytest.skip.Exception:
        print(f"SKIP: {_REASON}")
        raise


@contextmanager
def local_client():
    """A client of two single-threaded worker processes, and its cluster."""
    distributed = needs_dask()
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        yield client
