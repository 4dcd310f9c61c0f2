"""TAP distances and neighbour search on a dask.distributed cluster.

Beyond one machine, the work goes to the workers and stays there: the
distance's weights are sent to every worker once, the references are
encoded on the workers that hold them, and searches reduce on the workers
(top-k, pairs within a radius) so that the client receives only results.
Needs ``pip install "dask[distributed]"``; dask is imported only when used.

- :func:`pairwise_distances`: all pairs, as a lazy dask array of blocks
  computed on the workers;
- :class:`DistributedReferences`: a reference set kept on the cluster
  between queries, with ``kneighbors``, ``kneighbors_graph``,
  ``radius_neighbors_graph`` and ``pairwise_distances``.
"""

from ._pairwise import pairwise_distances
from ._references import DistributedReferences

__all__ = ["DistributedReferences", "pairwise_distances"]
