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


def cpu_facts():
    """The CPU's model, clock and last-level cache as Linux reports them
    (hosts of the same name differ: timings are only comparable on one)."""
    facts = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                key, value = key.strip(), value.strip()
                if key == "model name" and "cpu_model" not in facts:
                    facts["cpu_model"] = value
                elif key == "cpu MHz" and "cpu_mhz" not in facts:
                    facts["cpu_mhz"] = float(value)
                elif key == "flags" and "amx" not in facts:
                    facts["amx"] = "amx_tile" in value.split()
        with open("/sys/devices/system/cpu/cpu0/cache/index3/size") as f:
            facts["l3_cache"] = f.read().strip()
    except (OSError, ValueError):
        pass
    return facts


def machine_info():
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        **cpu_facts(),
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
