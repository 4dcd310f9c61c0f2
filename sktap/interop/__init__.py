"""sktap's learned distance inside aeon, sktime, tslearn and scikit-learn.

The scikit-learn adapters need nothing more than sktap does. The aeon and
sktime adapters import those libraries only when they are first used
(``pip install 'sktap[aeon]'`` or ``'sktap[sktime]'``).
"""

import importlib
from typing import TYPE_CHECKING

from ._distance_transformer import TAPDistanceTransformer
from ._kernel_transformer import TAPKernelTransformer

if TYPE_CHECKING:  # seen by type checkers and the API docs; imported lazily below
    from ._aeon import aeon_distance
    from ._sktime import TAPPairwiseTransformerPanel

__all__ = [
    "TAPDistanceTransformer",
    "TAPKernelTransformer",
    "TAPPairwiseTransformerPanel",
    "aeon_distance",
]

# name -> (private module, the optional library it needs)
_LAZY = {
    "aeon_distance": ("._aeon", "aeon"),
    "TAPPairwiseTransformerPanel": ("._sktime", "sktime"),
}


def __getattr__(name):
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module, library = _LAZY[name]
    try:
        value = getattr(importlib.import_module(module, __name__), name)
    except ModuleNotFoundError as exc:
        if exc.name is None or exc.name.split(".")[0] != library:
            raise
        raise ImportError(
            f"sktap.interop.{name} needs {library}: pip install 'sktap[{library}]'"
        ) from None
    globals()[name] = value
    return value


def __dir__():
    return sorted(__all__)
