"""The public namespace: which module defines each name `trident` exports, and `publish`.

Users import from `trident`; the code lives in private modules. As trio does, public
classes and functions report ``trident`` as their module, so reprs, tracebacks and
pickles name ``trident.KilledWorker``, not ``trident._exceptions.KilledWorker``. Each
defining module calls ``publish(globals())`` at its end, so a name reports ``trident``
as soon as its module is loaded, whether or not it was reached through `trident`.
Unpickling ``trident.X`` works because `trident` loads its names on first use.
"""

from __future__ import annotations

from typing import Any

#: public name -> the module that defines it
EXPORTS = {
    "ActorDied": "trident._exceptions",
    "ActorRestarted": "trident._exceptions",
    "AuthenticationError": "trident._exceptions",
    "CancelledError": "trident._exceptions",
    "DependencyError": "trident._exceptions",
    "FutureLostError": "trident._exceptions",
    "SchedulerLostError": "trident._exceptions",
    "KilledWorker": "trident._exceptions",
    "ProtocolError": "trident._exceptions",
    "Reschedule": "trident._exceptions",
    "SchedulerError": "trident._exceptions",
    "Actor": "trident.client.actor_handle",
    "ActorFuture": "trident.client.actor_handle",
    "Client": "trident.client.client",
    "default_client": "trident.client.client",
    "Future": "trident.client.future",
    "futures_of": "trident.client.structures",
    "TaskGroup": "trident.client.task_group",
    "ALL_COMPLETED": "trident.client.waiting",
    "FIRST_COMPLETED": "trident.client.waiting",
    "FIRST_EXCEPTION": "trident.client.waiting",
    "as_completed": "trident.client.waiting",
    "fire_and_forget": "trident.client.waiting",
    "wait": "trident.client.waiting",
    "Adaptive": "trident.cluster.adaptive",
    "LocalCluster": "trident.cluster.local",
    "KubeCluster": "trident.cluster.kube.cluster",
    "ClusterManager": "trident.cluster.manager",
    "SSHCluster": "trident.cluster.ssh",
    "LSFCluster": "trident.deploy.jobqueue.cluster",
    "PBSCluster": "trident.deploy.jobqueue.cluster",
    "SGECluster": "trident.deploy.jobqueue.cluster",
    "SLURMCluster": "trident.deploy.jobqueue.cluster",
    "Event": "trident.coordination",
    "Lock": "trident.coordination",
    "MultiLock": "trident.coordination",
    "Pub": "trident.coordination",
    "Queue": "trident.coordination",
    "Semaphore": "trident.coordination",
    "Sub": "trident.coordination",
    "Variable": "trident.coordination",
    "progress": "trident.diagnostics.progress",
    "get_task_stream": "trident.diagnostics.task_stream",
    "performance_report": "trident.diagnostics.performance",
    "print": "trident.diagnostics.remote_print",
    "warn": "trident.diagnostics.remote_print",
    "SerializationError": "trident.protocol.errors",
    "Scheduler": "trident.cluster.servers",
    "Security": "trident.security",
    "Worker": "trident.cluster.servers",
    "Nanny": "trident.cluster.servers",
    "get_client": "trident.client.worker_client",
    "worker_client": "trident.client.worker_client",
    "local_client": "trident.client.worker_client",
    "TimeoutError": "builtins",
    "get_worker": "trident.worker.context",
    "RemoteException": "trident.protocol.failures",
    "NannyPlugin": "trident._plugins",
    "SchedulerPlugin": "trident._plugins",
    "UploadFile": "trident._plugins",
    "WorkerPlugin": "trident._plugins",
    "rejoin": "trident.worker.secession",
    "secede": "trident.worker.secession",
}


def publish(namespace: dict[str, Any]) -> None:
    """Have the public names that the module of `namespace` defines report ``trident``.

    Call as ``publish(globals())`` at the end of the defining module.
    """
    home = namespace["__name__"]
    for name, module in EXPORTS.items():
        value = namespace.get(name)
        if module == home and getattr(value, "__qualname__", None) == name:
            value.__module__ = "trident"
