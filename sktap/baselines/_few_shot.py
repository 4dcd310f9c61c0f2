"""Few-shot baselines without training: prototypes of mean frames, and DTW."""

from __future__ import annotations

from numbers import Integral, Real

from tslearn.metrics import cdist_dtw, cdist_soft_dtw

from .._sklearn_compat import Interval, StrOptions
from .._validation import to_tslearn
from ..few_shot import EpisodicClassifier
from ..few_shot._episodes import PairwiseScorer, PrototypeScorer

__all__ = ["DTWFewShotClassifier", "PrototypeFewShotClassifier"]


class PrototypeFewShotClassifier(EpisodicClassifier):
    """Nearest class prototype of mean-pooled frames (a bag-of-frames baseline).

    Each sequence becomes the mean of its frames; a class's prototype is the
    mean of its support vectors, and a query goes to the nearest prototype
    in Euclidean distance (prototypical networks without a learned encoder).
    It ignores temporal order entirely.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    support_ : Sequences
    support_labels_ : ndarray of shape (n_support,)
    n_features_in_ : int

    References
    ----------
    .. [1] J. Snell, K. Swersky and R. Zemel, "Prototypical Networks for
       Few-shot Learning", NeurIPS 2017.

    Examples
    --------
    >>> import numpy as np
    >>> from sktap.baselines import PrototypeFewShotClassifier
    >>> X = [np.zeros((3, 2)), np.zeros((5, 2)), np.ones((4, 2)), np.ones((2, 2))]
    >>> clf = PrototypeFewShotClassifier().fit(X, ["a", "a", "b", "b"])
    >>> clf.predict([np.full((6, 2), 0.9)]).tolist()
    ['b']
    """

    def __init__(self):
        pass  # no parameters: the prototype rule is fixed

    def _embed(self, seqs):
        # padding is zero, so the sum over all steps is the sum of valid frames
        return seqs.data.sum(axis=1) / seqs.lengths[:, None]  # (n, d)

    def _make_scorer(self, Z):
        return PrototypeScorer(Z)


class DTWFewShotClassifier(EpisodicClassifier):
    """Few-shot classification by DTW or soft-DTW to the support sequences.

    Parameters
    ----------
    metric : {"dtw", "softdtw"}, default="dtw"
        tslearn's ``cdist_dtw`` or ``cdist_soft_dtw``.
    rule : {"1nn", "class_mean"}, default="1nn"
        Class of the nearest support sequence, or the class with the smallest
        mean distance.
    gamma : float, default=1.0
        Smoothing of soft-DTW.
    n_jobs : int, optional
        Passed to tslearn.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    support_ : Sequences
    support_labels_ : ndarray of shape (n_support,)
    n_features_in_ : int

    References
    ----------
    .. [1] H. Sakoe and S. Chiba, "Dynamic programming algorithm optimization
       for spoken word recognition", IEEE Trans. ASSP, 1978.
    .. [2] M. Cuturi and M. Blondel, "Soft-DTW: a Differentiable Loss
       Function for Time-Series", ICML 2017.

    Examples
    --------
    >>> import numpy as np
    >>> from sktap.baselines import DTWFewShotClassifier
    >>> X = [np.arange(5.0), np.arange(7.0), -np.arange(6.0), -np.arange(4.0)]
    >>> clf = DTWFewShotClassifier().fit(X, ["up", "up", "down", "down"])
    >>> clf.predict([np.arange(3.0), -np.arange(8.0)]).tolist()
    ['up', 'down']
    """

    _parameter_constraints = {
        "metric": [StrOptions({"dtw", "softdtw"})],
        "rule": [StrOptions({"1nn", "class_mean"})],
        "gamma": [Interval(Real, 0, None, closed="neither")],
        "n_jobs": [Integral, None],
    }

    def __init__(self, metric="dtw", *, rule="1nn", gamma=1.0, n_jobs=None):
        self.metric = metric
        self.rule = rule
        self.gamma = gamma
        self.n_jobs = n_jobs

    def _embed(self, seqs):
        return seqs

    def _cdist(self, A, B=None):
        if self.metric == "dtw":
            return cdist_dtw(A, B, n_jobs=self.n_jobs)
        return cdist_soft_dtw(A, B, gamma=self.gamma, n_jobs=self.n_jobs)

    def _make_scorer(self, Z):
        def pair_scores(a, b):
            return -self._cdist(to_tslearn(Z.take(a)), to_tslearn(Z.take(b)))

        def all_scores():  # tslearn computes one triangle when B is None
            return -self._cdist(to_tslearn(Z))

        rule = "max" if self.rule == "1nn" else "mean"
        return PairwiseScorer(pair_scores, len(Z), rule, all_scores)
