"""The one place sktap imports scikit-learn's private helpers.

Parameter validation (``Interval``, ``StrOptions``) and the ``fit`` context
that runs it are private in scikit-learn (``sklearn.utils._param_validation``,
``sklearn.base._fit_context``) and may move between releases; every sktap
module takes them from here, so a move is one edit.
"""

from sklearn.base import _fit_context as fit_context
from sklearn.utils._param_validation import Interval, StrOptions

__all__ = ["Interval", "StrOptions", "fit_context"]
