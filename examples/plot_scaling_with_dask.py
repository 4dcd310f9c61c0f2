"""
Scaling out with dask
=====================

:func:`sktap.metrics.cdist_tap` never builds the whole
``n_x x n_y x Lx x Ly`` tensor: it cuts the distance matrix into tiles whose
memory stays under ``working_memory`` MiB and runs them through
:class:`joblib.Parallel`. Inside a ``joblib.parallel_config(backend="dask")``
block, joblib hands those tiles to a dask cluster instead of local processes,
so the same call spreads over many machines with no change to sktap code.

Here the "cluster" is a :class:`distributed.LocalCluster` of two worker
processes on this machine; with a real cluster you would connect the
:class:`distributed.Client` to its scheduler address instead. On two CPU
cores there is nothing to gain in speed: the point is that the result is the
same as the local one.
"""

# %%
# Sequences and an alignment network
# ----------------------------------
import time

import numpy as np
from joblib import parallel_config

from sktap import TAPNet
from sktap.datasets import make_warped_sequences
from sktap.metrics import cdist_tap


def make_problem():
    """60 sequences and a small (untrained) alignment network."""
    X, _ = make_warped_sequences(
        n_classes=3, n_per_class=20, length_range=(20, 30), random_state=0
    )
    return X, TAPNet(channels=(8,), kernel_sizes=(5, 3))


# A small memory budget (MiB) cuts the 60 x 60 distance matrix into about
# 16 tiles, so that there is work to share out.
WORKING_MEMORY = 25


# %%
# The dask run
# ------------
# ``processes=True`` gives each worker its own Python process (and its own
# PyTorch threads). Binding to 127.0.0.1 and switching the dashboard off keeps
# the cluster private to this machine.
def cdist_on_dask(X, net):
    from distributed import Client, LocalCluster

    with (
        LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
        ) as cluster,
        Client(cluster),
        parallel_config(backend="dask"),
    ):
        return cdist_tap(X, net=net, working_memory=WORKING_MEMORY, device="cpu")


# %%
# Local and dask results side by side
# -----------------------------------
# Dask starts its workers as new Python processes that import this script
# again; the guard keeps them from running it.
if __name__ == "__main__":
    X, net = make_problem()

    start = time.perf_counter()
    D_local = cdist_tap(X, net=net, working_memory=WORKING_MEMORY, device="cpu")
    local_seconds = time.perf_counter() - start

    start = time.perf_counter()
    D_dask = cdist_on_dask(X, net)
    dask_seconds = time.perf_counter() - start

    print(f"distance matrix {D_dask.shape}")
    print(
        f"local: {local_seconds:.1f} s, dask (with cluster start): {dask_seconds:.1f} s"
    )
    print(f"largest difference: {np.abs(D_dask - D_local).max():.2e}")
    np.testing.assert_allclose(D_dask, D_local, rtol=1e-5, atol=1e-6)
