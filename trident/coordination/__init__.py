"""Coordination primitives shared by every client and task of a cluster.

`Lock`, `MultiLock`, `Semaphore`, `Queue`, `Variable`, `Event`, `Pub` and `Sub` have the
constructors and methods of their dask.distributed namesakes. Their state lives on the
scheduler, which also does the waiting: an acquire, a `get` or a `wait` is answered when
its condition holds. Each works with blocking and asynchronous clients (and from inside
tasks, through the worker's client), and a lease held by a task is given back when that
task fails, is cancelled or loses its worker. See ``docs/coordination.md``.
"""

from .._public import publish
from .event import Event as Event
from .locks import Lock as Lock
from .locks import MultiLock as MultiLock
from .locks import Semaphore as Semaphore
from .pubsub import Pub as Pub
from .pubsub import Sub as Sub
from .queue import Queue as Queue
from .variable import Variable as Variable

__all__ = ["Event", "Lock", "MultiLock", "Pub", "Queue", "Semaphore", "Sub", "Variable"]


publish(globals())
