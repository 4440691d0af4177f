"""trident's worker-to-worker shuffle for dask dataframes, and rechunk for dask arrays.

dask's dataframes shuffle (``df.shuffle``, ``set_index``, ``sort_values``, hash joins in
``merge``) with one of the methods named by ``dataframe.shuffle.method``. Outside
dask.distributed the choice is dask's task-based shuffle, which splits every input
partition into one piece per output partition as graph tasks (n² tasks, and for more
than 32 partitions several stages that move the data several times). While a trident
client is dask's scheduler it selects ``"tasks"`` and, when it turns a dask expression
into tasks (`shuffle_graph`), replaces each task-based shuffle by the one built here:

* one **split** task per input partition hashes its rows to output partitions (as
  dask's own ``shuffle_group`` does, so rows land where dask's shuffle puts them) and
  reorders them once, stably, by group and output partition: one frame per group
  whose rows for each output partition are consecutive (a `tasks.Bundle`), not one
  small frame per output partition. A group is up to ``GROUP_SIZE`` (32) output
  partitions of one owning worker, so an unpack needs that many partitions' worth of
  rows in memory, not its owner's whole share;
* one **bundle** task per input partition and group, running where the split ran,
  holds the bundle of that group;
* one **receive** task per input partition and group, placed on the group's owner,
  takes the bundle over: the sender's copy then has no dependents and is released, so
  no bundle is held twice while the owners unpack;
* one **unpack** task per output partition, placed on its owner (loosely: it runs
  elsewhere when the owner is gone), slices its rows out of its group's bundles and
  concatenates them in input order, column by column where the dtypes allow (as
  ``pd.concat`` would, without a pandas object per piece).

Every bundle moves once, worker to worker, on the workers' ordinary data path: an
owner fetches the bundles from the worker that split them, in one request per peer.
Bundles carry their size, so the workers' memory accounting does not look inside
them. They are managed data, so they spill like any result and are recomputed from
their lineage when a worker dies. Set ``dask.config.set({"trident.shuffle": False})``
to keep dask's task-based shuffle.

A large exchange keeps what its owners receive on their disk: when a receive estimates
the shuffle (its bundle's bytes per output partition times input and output partitions)
above ``trident.exchange-disk-threshold`` (dask config, bytes or a string such as
``"1 GiB"``; default 256 MiB; None or False: never), the bundle it returns is marked
cold and the worker's spill store writes it to disk at once, one section per output
partition (its rows, as column arrays where the dtypes allow); each unpack reads only
its own partition's section of each of its group's bundles. A rechunk knows its size
when its graph is built: above the threshold its pieces go to disk too (each value
written whole), in groups of at most about 128 MiB of output blocks that are read back
into memory while they are assembled. Workers without a memory limit (no spill store)
keep everything in memory.

dask.array's rechunk goes the same way (`rechunk`): outside dask.distributed dask plans
it as one or more stages of slicing and concatenation tasks (its ``rechunk-merge-*``
layers), each stage moving the data again. When the client turns legacy array graphs
into tasks, `shuffle_graph` replaces each such chain of stages, before dask's low-level
optimization, by one **split** per input block (cut once into the pieces each output
block needs, gathered per group of up to ``GROUP_SIZE`` output blocks of one owner),
**bundle** and **receive** tasks per input block and group (the pieces move once, worker
to worker), and one **assemble** per output block on its owner (one copy into the new
block). Output blocks are owned in contiguous runs over the workers' threads. Only
rechunks where dask's plan has intermediate stages, or some output block takes pieces of
several input blocks while some input block feeds several, are replaced; plain merges
and splits, unknown or empty chunks and non-numpy chunks keep dask's tasks. Set
``dask.config.set({"trident.rechunk": False})`` to keep dask's task-based rechunk.

Nothing here imports dask until a dask expression is handed to `shuffle_graph`.
"""

from __future__ import annotations

from .expressions import shuffle_graph as shuffle_graph

__all__ = ["shuffle_graph"]
