"""trident's worker-to-worker shuffle for dask dataframes.

dask's dataframes shuffle (``df.shuffle``, ``set_index``, ``sort_values``, hash joins in
``merge``) with one of the methods named by ``dataframe.shuffle.method``. Outside
dask.distributed the choice is dask's task-based shuffle, which splits every input
partition into one piece per output partition as graph tasks (n² tasks, and for more
than 32 partitions several stages that move the data several times). While a trident
client is dask's scheduler it selects ``"tasks"`` and, when it turns a dask expression
into tasks (`shuffle_graph`), replaces each task-based shuffle by the one built here:

* one **split** task per input partition groups its rows into the output partitions
  (with dask's own ``shuffle_group``, so rows land where dask's shuffle puts them) and
  bundles the pieces by the worker that will own each output partition;
* one **bundle** task per input partition and owning worker, running where the split
  ran, holds the pieces that worker needs;
* one **unpack** task per output partition, placed on its owner (loosely: it runs
  elsewhere when the owner is gone), concatenates its pieces in input order.

Every piece moves once, worker to worker, on the workers' ordinary data path: an
owner fetches each bundle from the worker that split it, in one request per peer. The
bundles are managed data, so they spill like any result and are recomputed from their
lineage when a worker dies. Set ``dask.config.set({"trident.shuffle": False})`` to keep
dask's task-based shuffle.

Nothing here imports dask until a dask expression is handed to `shuffle_graph`.
"""

from __future__ import annotations

from .expressions import shuffle_graph as shuffle_graph

__all__ = ["shuffle_graph"]
