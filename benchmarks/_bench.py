"""Helpers the benchmark scripts share: subsampling, timing, the machine."""

from __future__ import annotations

import os
import platform
import time

import numpy as np
import sklearn
import torch
import tslearn
from sklearn.model_selection import train_test_split

import sktap


def subsample(X, y, size, seed):
    """At most ``size`` sequences, stratified when every class can be kept."""
    if len(X) <= size:
        return X, y
    idx = np.arange(len(X))
    try:
        keep, _ = train_test_split(idx, train_size=size, stratify=y, random_state=seed)
    except ValueError:  # a class too small to stratify
        keep, _ = train_test_split(idx, train_size=size, random_state=seed)
    keep = np.sort(keep)
    return [X[i] for i in keep], np.asarray(y)[keep]


def timed(fn, *a, **kw):
    t0 = time.perf_counter()
    out = fn(*a, **kw)
    return out, time.perf_counter() - t0


def machine_info():
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "numba_num_threads": os.environ.get("NUMBA_NUM_THREADS"),
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "sklearn": sklearn.__version__,
        "torch": torch.__version__,
        "tslearn": tslearn.__version__,
        "sktap": sktap.__version__,
    }
