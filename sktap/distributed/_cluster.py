"""The client side of the dask path: optional imports and input checks.

dask and distributed are optional: they are imported inside the functions
that need them, so ``import sktap`` (and ``import sktap.distributed``) works
without them.
"""

from __future__ import annotations

import copy
import numbers

import numpy as np
import torch
from sklearn.frozen import FrozenEstimator
from sklearn.utils.validation import check_is_fitted

from .._validation import Sequences, check_sequences

__all__ = [
    "Packed",
    "check_client",
    "check_device",
    "check_learner",
    "check_resources",
    "chunk_workers",
    "contiguous_chunks",
    "import_distributed",
    "owners",
    "pack",
    "scatter_models",
    "scatter_to",
    "validate",
]

_INSTALL = (
    'sktap.distributed needs dask and distributed: pip install "dask[distributed]"'
)


def import_distributed():
    """``(dask, distributed)``, or an ImportError that says what to install."""
    try:
        import dask
        import distributed
    except ImportError as exc:
        raise ImportError(f"{_INSTALL} ({exc})") from exc
    return dask, distributed


def check_client(client):
    """``client``, or the current default client when None; never a closed one."""
    _, distributed = import_distributed()
    if client is None:
        try:
            client = distributed.default_client()
        except ValueError:
            raise ValueError(
                "client=None needs a running distributed.Client (the default "
                "one); start one, e.g. Client(LocalCluster()), or pass client="
            ) from None
    if not isinstance(client, distributed.Client):
        raise TypeError(
            f"client must be a distributed.Client or None; got {type(client).__name__}"
        )
    if client.status in ("closing", "closed"):
        raise ValueError(f"the client is {client.status}; pass a running client")
    return client


def check_device(device):
    """``device`` as a string the workers resolve; its availability is theirs
    to check (the client may have no GPU)."""
    if isinstance(device, torch.device):
        device = str(device)
    if not isinstance(device, str):
        raise TypeError(
            "device must be 'auto', a string such as 'cpu' or 'cuda', or a "
            f"torch.device; got {type(device).__name__}"
        )
    if device != "auto":
        try:
            kind = torch.device(device).type
        except (RuntimeError, ValueError):
            kind = None
        if kind not in ("cpu", "cuda", "mps"):
            raise ValueError(
                f"device={device!r} is not supported; use 'auto', 'cpu' or 'cuda'"
            )
    return device


def check_resources(resources):
    """``resources`` as a new ``{name: amount}`` dict (None: no constraint)."""
    if resources is None:
        return None
    if not isinstance(resources, dict) or not all(
        isinstance(k, str)
        and isinstance(v, numbers.Real)
        and not isinstance(v, bool)
        and v > 0
        for k, v in resources.items()
    ):
        raise ValueError(
            "resources must be None or a dict of positive amounts such as "
            f"{{'GPU': 1}}; got {resources!r}"
        )
    return dict(resources) or None


def check_learner(metric_learner, device):
    """A private copy of a fitted learner, set to run on ``device``; or None.

    The copy carries the weights to the workers; the caller's learner is
    never modified. Its ``device`` parameter, if it has one, becomes
    ``device`` (the workers', not the machine's it was fitted on).
    """
    if metric_learner is None:
        return None
    learner = metric_learner
    if isinstance(learner, FrozenEstimator):
        learner = learner.estimator
    if not (
        callable(getattr(learner, "encode", None))
        and callable(getattr(learner, "distance_kernel", None))
    ):
        raise TypeError(
            "metric_learner must be None or a fitted sktap metric learner (with "
            f"encode and distance_kernel); got {type(metric_learner).__name__}"
        )
    if hasattr(learner, "fit"):
        check_is_fitted(learner)
    learner = copy.deepcopy(learner)
    get_params = getattr(learner, "get_params", None)
    if get_params is not None and "device" in get_params(deep=False):
        learner.set_params(device=device)
    return learner


def validate(X, name, n_features):
    """``X`` validated, as float32 (what the kernels compute in) Sequences."""
    seqs = check_sequences(X, name=name, n_features=n_features)
    return Sequences(seqs.data.astype(np.float32), seqs.lengths)


class Packed:
    """Sequences without their padding, as they travel to the workers.

    ``frames`` (sum of lengths, d) float32 and ``lengths`` (n,); dask sizes
    it by its arrays (``__sizeof__``).
    """

    __slots__ = ("frames", "lengths")

    def __init__(self, frames, lengths):
        self.frames = frames
        self.lengths = lengths

    def __len__(self):
        return len(self.lengths)

    def __sizeof__(self):
        return self.frames.nbytes + self.lengths.nbytes + 64

    def __reduce__(self):
        return (Packed, (self.frames, self.lengths))

    def unpack(self) -> Sequences:
        """The zero-padded Sequences (n, max length, d)."""
        n, d = len(self.lengths), self.frames.shape[1]
        width = int(self.lengths.max())
        data = np.zeros((n, width, d), dtype=self.frames.dtype)
        mask = np.arange(width)[None, :] < self.lengths[:, None]
        data[mask] = self.frames  # row-major: sequence by sequence
        return Sequences(data, self.lengths)


def pack(seqs: Sequences, indices) -> Packed:
    """The sequences ``indices`` of ``seqs`` without padding."""
    sub = seqs.take(indices)
    mask = np.arange(sub.data.shape[1])[None, :] < sub.lengths[:, None]
    return Packed(np.ascontiguousarray(sub.data[mask]), sub.lengths.copy())


def contiguous_chunks(lengths, chunk_size, frame_budget=None):
    """Index ranges cutting ``range(len(lengths))`` in order.

    Each has at most ``chunk_size`` sequences and, if ``frame_budget`` is
    given, at most that many frames (or one sequence).
    """
    chunks, start, n = [], 0, len(lengths)
    while start < n:
        stop = min(n, start + chunk_size)
        if frame_budget is not None:
            total = np.cumsum(lengths[start:stop])
            stop = start + max(1, int(np.searchsorted(total, frame_budget, "right")))
        chunks.append(np.arange(start, stop))
        start = stop
    return chunks


def chunk_workers(client, resources):
    """``{address: nthreads}`` of the workers that can run the tasks.

    With ``resources``, only the workers that declare at least those amounts
    (``dask worker --resources GPU=1``); a task asking for resources that no
    worker has would wait forever, so that is an error here.
    """
    try:
        info = client.scheduler_info(n_workers=-1)["workers"]
    except TypeError:  # distributed < 2025: every worker, no argument
        info = client.scheduler_info()["workers"]
    if not info:
        raise ValueError("the client's cluster has no workers; start some first")
    workers = {
        addr: w["nthreads"]
        for addr, w in sorted(info.items())
        if all(
            w.get("resources", {}).get(k, 0) >= v for k, v in (resources or {}).items()
        )
    }
    if not workers:
        raise ValueError(
            f"no worker of the cluster declares resources={resources}; start "
            "workers with e.g. `dask worker ... --resources GPU=1`"
        )
    return workers


def owners(workers, n_chunks):
    """The worker of each of ``n_chunks`` chunks: round robin over the
    workers' threads (``workers``: ``{address: nthreads}``)."""
    slots = [
        addr
        for t in range(max(workers.values()))
        for addr, n in workers.items()
        if t < n
    ]
    return [slots[j % len(slots)] for j in range(n_chunks)]


def scatter_to(client, items, where):
    """Futures of ``items``, item ``j`` on worker ``where[j]`` (one key each;
    one scatter call per worker)."""
    futures = [None] * len(items)
    for w in dict.fromkeys(where):
        js = [j for j, x in enumerate(where) if x == w]
        placed = client.scatter([items[j] for j in js], workers=[w], hash=False)
        for j, future in zip(js, placed):
            futures[j] = future
    return futures


def scatter_models(client, model, workers):
    """``{address: future}``: a copy of ``model`` on each worker, one key each.

    Not one broadcast key: dask's active memory manager drops the replicas
    of a key that no task awaits, and the weights would travel again.
    """
    workers = list(workers)
    return dict(zip(workers, scatter_to(client, [model] * len(workers), workers)))
