"""trident: a distributed task and actor runtime for Python, built on trio.

The public API follows dask.distributed's Client API; every remote operation obeys trio
cancel scopes and timeouts. Import what you need from here::

    from trident import Client, LocalCluster, as_completed, wait
"""

# Names load on first use (PEP 562): a worker process imports only what it runs, which
# keeps its start-up short. Type checkers read the imports below.

from __future__ import annotations

import importlib
from types import ModuleType
from typing import TYPE_CHECKING, Any

from ._public import EXPORTS as _EXPORTS
from ._version import __version__ as __version__

if TYPE_CHECKING:
    from builtins import TimeoutError as TimeoutError  # what timeouts raise, as dask's

    from ._exceptions import ActorDied as ActorDied
    from ._exceptions import ActorRestarted as ActorRestarted
    from ._exceptions import AuthenticationError as AuthenticationError
    from ._exceptions import CancelledError as CancelledError
    from ._exceptions import DependencyError as DependencyError
    from ._exceptions import FutureLostError as FutureLostError
    from ._exceptions import KilledWorker as KilledWorker
    from ._exceptions import ProtocolError as ProtocolError
    from ._exceptions import Reschedule as Reschedule
    from ._exceptions import SchedulerError as SchedulerError
    from ._exceptions import SchedulerLostError as SchedulerLostError
    from ._plugins import NannyPlugin as NannyPlugin
    from ._plugins import SchedulerPlugin as SchedulerPlugin
    from ._plugins import UploadFile as UploadFile
    from ._plugins import WorkerPlugin as WorkerPlugin
    from .client.actor_handle import Actor as Actor
    from .client.actor_handle import ActorFuture as ActorFuture
    from .client.client import Client as Client
    from .client.client import default_client as default_client
    from .client.future import Future as Future
    from .client.structures import futures_of as futures_of
    from .client.task_group import TaskGroup as TaskGroup
    from .client.waiting import ALL_COMPLETED as ALL_COMPLETED
    from .client.waiting import FIRST_COMPLETED as FIRST_COMPLETED
    from .client.waiting import FIRST_EXCEPTION as FIRST_EXCEPTION
    from .client.waiting import as_completed as as_completed
    from .client.waiting import fire_and_forget as fire_and_forget
    from .client.waiting import wait as wait
    from .client.worker_client import get_client as get_client
    from .client.worker_client import local_client as local_client
    from .client.worker_client import worker_client as worker_client
    from .cluster.adaptive import Adaptive as Adaptive
    from .cluster.kube.cluster import KubeCluster as KubeCluster
    from .cluster.local import LocalCluster as LocalCluster
    from .cluster.manager import ClusterManager as ClusterManager
    from .cluster.servers import Nanny as Nanny
    from .cluster.servers import Scheduler as Scheduler
    from .cluster.servers import Worker as Worker
    from .cluster.ssh import SSHCluster as SSHCluster
    from .coordination import Event as Event
    from .coordination import Lock as Lock
    from .coordination import MultiLock as MultiLock
    from .coordination import Pub as Pub
    from .coordination import Queue as Queue
    from .coordination import Semaphore as Semaphore
    from .coordination import Sub as Sub
    from .coordination import Variable as Variable
    from .deploy.jobqueue.cluster import LSFCluster as LSFCluster
    from .deploy.jobqueue.cluster import PBSCluster as PBSCluster
    from .deploy.jobqueue.cluster import SGECluster as SGECluster
    from .deploy.jobqueue.cluster import SLURMCluster as SLURMCluster
    from .diagnostics.performance import performance_report as performance_report
    from .diagnostics.progress import progress as progress
    from .diagnostics.remote_print import print as print
    from .diagnostics.remote_print import warn as warn
    from .diagnostics.task_stream import get_task_stream as get_task_stream
    from .protocol.errors import SerializationError as SerializationError
    from .protocol.failures import RemoteException as RemoteException
    from .security import Security as Security
    from .worker.context import get_worker as get_worker
    from .worker.secession import rejoin as rejoin
    from .worker.secession import secede as secede

__all__ = [
    "ALL_COMPLETED",
    "FIRST_COMPLETED",
    "FIRST_EXCEPTION",
    "Actor",
    "ActorDied",
    "ActorFuture",
    "ActorRestarted",
    "Adaptive",
    "AuthenticationError",
    "CancelledError",
    "Client",
    "ClusterManager",
    "DependencyError",
    "Event",
    "Future",
    "FutureLostError",
    "KilledWorker",
    "KubeCluster",
    "LSFCluster",
    "LocalCluster",
    "Lock",
    "MultiLock",
    "Nanny",
    "NannyPlugin",
    "PBSCluster",
    "ProtocolError",
    "Pub",
    "Queue",
    "RemoteException",
    "Reschedule",
    "SGECluster",
    "SLURMCluster",
    "SSHCluster",
    "Scheduler",
    "SchedulerError",
    "SchedulerLostError",
    "SchedulerPlugin",
    "Security",
    "Semaphore",
    "SerializationError",
    "Sub",
    "TaskGroup",
    "TimeoutError",
    "UploadFile",
    "Variable",
    "Worker",
    "WorkerPlugin",
    "__version__",
    "as_completed",
    "default_client",
    "fire_and_forget",
    "futures_of",
    "get_client",
    "get_task_stream",
    "get_worker",
    "local_client",
    "performance_report",
    "print",
    "progress",
    "rejoin",
    "secede",
    "wait",
    "warn",
    "worker_client",
]


#: public name -> modules above its own that must be loaded with it: this namespace is
#: where the layers are wired together (``Client()`` with no address starts the
#: `LocalCluster` that `trident.cluster.local` registers when imported).
_WIRING = {"Client": ("trident.cluster.local",)}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'trident' has no attribute {name!r}")
    for wired in _WIRING.get(name, ()):
        importlib.import_module(wired)
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """The public names, and the subpackages imported so far."""
    loaded = [name for name, value in globals().items() if isinstance(value, ModuleType)]
    return sorted({*__all__, *loaded} - {"importlib"})


# joblib's 'trident' backend, registered without importing joblib (see _joblib_hook).
from . import _joblib_hook  # noqa: E402

_joblib_hook.install()
del _joblib_hook
