"""Device and dtype decisions, made once at the edge of the library.

Also where inference puts a fitted network on a device: an
:class:`InferenceContext` per call (or, cached in an :class:`InferenceCache`,
per fit), which never moves or mutates the fitted model itself.
"""

from __future__ import annotations

import contextlib
import contextvars
import copy
import itertools
import threading

import torch

__all__ = [
    "InferenceCache",
    "InferenceContext",
    "inference_net",
    "inference_scope",
    "resolve_device",
    "resolve_dtype",
    "same_device",
]

_DTYPES = {
    "float32": torch.float32,
    "float64": torch.float64,
    "bfloat16": torch.bfloat16,
    "float16": torch.float16,
}


def resolve_device(device="auto") -> torch.device:
    """``"auto"`` -> CUDA when present, else CPU; anything else is checked."""
    if device is None or (isinstance(device, str) and device == "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if not isinstance(device, (str, torch.device)):
        raise TypeError(
            f"device must be 'auto', a string such as 'cpu' or 'cuda:0', or a "
            f"torch.device; got {type(device).__name__}"
        )
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError):
        raise ValueError(
            f"device={device!r} is not a valid torch device; use 'auto', 'cpu' "
            "or 'cuda'"
        ) from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"device={device!r} was asked for but CUDA is not available"
            )
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(
                f"device={device!r}: only {torch.cuda.device_count()} CUDA "
                "device(s) are present"
            )
    elif dev.type not in ("cpu", "mps"):
        raise ValueError(f"device={device!r} is not supported; use 'cpu' or 'cuda'")
    return dev


def resolve_dtype(dtype=None) -> torch.dtype:
    """None -> float32; accepts names and torch dtypes of real floating types."""
    if dtype is None:
        return torch.float32
    if isinstance(dtype, torch.dtype):
        if dtype in _DTYPES.values():
            return dtype
    elif isinstance(dtype, str) and dtype in _DTYPES:
        return _DTYPES[dtype]
    raise ValueError(
        f"dtype={dtype!r} is not supported; use one of {sorted(_DTYPES)} "
        "(or the matching torch dtype)"
    )


def _canonical(device) -> torch.device:
    """``device`` with its index: "cuda" is the current CUDA device."""
    device = torch.device(device)
    if device.type == "cuda" and device.index is None:
        return torch.device("cuda", torch.cuda.current_device())
    return device


def same_device(a, b) -> bool:
    """Whether ``a`` and ``b`` name the same device ("cuda" is "cuda:<current>")."""
    a, b = torch.device(a), torch.device(b)
    return a.type == b.type and (a.type != "cuda" or _canonical(a) == _canonical(b))


def _runs_as(module, device, dtype) -> bool:
    """Whether ``module`` can run inference as it is: eval mode throughout, on
    ``device``, its floating tensors in ``dtype`` (None: any)."""
    if any(m.training for m in module.modules()):
        return False
    return all(
        same_device(t.device, device)
        and (dtype is None or not t.is_floating_point() or t.dtype == dtype)
        for t in itertools.chain(module.parameters(), module.buffers())
    )


def _own_dtype(module):
    """The one floating dtype of ``module``'s tensors (None: mixed or none)."""
    tensors = itertools.chain(module.parameters(), module.buffers())
    dtypes = {t.dtype for t in tensors if t.is_floating_point()}
    return dtypes.pop() if len(dtypes) == 1 else None


def _inference_copy(module, device, dtype):
    """A private eval-mode copy of ``module`` on ``device`` (in ``dtype``)."""
    return copy.deepcopy(module).to(device=device, dtype=dtype).eval()


_ACTIVE = contextvars.ContextVar("sktap_inference_context", default=None)


class InferenceContext:
    """Networks made ready for inference once, shared by whatever runs within.

    :meth:`net` gives a module in eval mode on a device: the module itself
    when it already is one (a fitted model on the CPU, run read-only under
    :func:`torch.inference_mode`), else a private copy made on the first
    request and handed out again afterwards. The caller's module is never
    moved, cast or switched to eval mode, so inference leaves fitted state
    alone and may run from several threads. A copied module's submodules
    resolve to the parts of its copy: encoding with a model and scoring with
    its alignment network share one copy.

    A context is made current in this thread (and its nested calls) by
    :meth:`active`; :func:`inference_net` draws from the current one.
    """

    def __init__(self):
        # (id(module), device) -> [(module, ready)]; holding the module
        # keeps its id from being reused while the context lives
        self._nets = {}
        self._lock = threading.Lock()

    def net(self, module, device, dtype=None):
        """``module`` ready for inference on ``device``, in ``dtype`` (None:
        its own); None stays None."""
        if module is None:
            return None
        device = _canonical(device)
        dtype = dtype or _own_dtype(module)
        with self._lock:
            for _, ready in self._nets.get((id(module), device), ()):
                if _runs_as(ready, device, dtype):
                    return ready
            ready = module
            if not _runs_as(module, device, dtype):
                ready = _inference_copy(module, device, dtype)
            for name, sub in module.named_modules():
                entry = (sub, ready.get_submodule(name))
                self._nets.setdefault((id(sub), device), []).append(entry)
            return ready

    @contextlib.contextmanager
    def active(self):
        """Make this context the current one within the ``with`` block."""
        token = _ACTIVE.set(self)
        try:
            yield self
        finally:
            _ACTIVE.reset(token)


def inference_net(module, device, dtype=None):
    """``module`` ready for inference (see :class:`InferenceContext`), from
    the current context, or made for this one use when there is none."""
    return (_ACTIVE.get() or InferenceContext()).net(module, device, dtype)


@contextlib.contextmanager
def inference_scope():
    """The context of one call: the current one if a caller made one (a k-NN
    search, a wider call), else a new one for the ``with`` block."""
    current = _ACTIVE.get()
    if current is not None:
        yield current
        return
    with InferenceContext().active() as context:
        yield context


class InferenceCache:
    """What inference prepares once per fit, kept between calls, never saved.

    :meth:`get` builds the value on the first call and hands it out until
    one of its ``sources`` (compared by identity) or ``settings`` (by
    equality) changes. It pickles and deep-copies as an empty cache, so
    ``pickle``, ``copy.deepcopy`` and ``save`` carry no device copies, and
    the copy rebuilds lazily; one lock makes concurrent first calls build
    once.
    """

    def __init__(self):
        self._entry = None  # (sources, settings, value)
        self._lock = threading.Lock()

    def get(self, build, *, sources=(), settings=()):
        sources, settings = tuple(sources), tuple(settings)
        with self._lock:
            entry = self._entry
            if (
                entry is None
                or len(entry[0]) != len(sources)
                or any(a is not b for a, b in zip(entry[0], sources))
                or entry[1] != settings
            ):
                entry = self._entry = (sources, settings, build())
            return entry[2]

    @property
    def built(self) -> bool:
        return self._entry is not None

    def __reduce__(self):
        return (type(self), ())

    def __deepcopy__(self, memo):
        return type(self)()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({'built' if self.built else 'empty'})"
