"""`lend_client`: the `ClientFactory` every worker this package starts is given.

It sits above the worker and the client packages, which never import each other: it
builds the `WorkerClient` a worker lends to its tasks and hands it what it needs of the
worker's task context (the running task's key and secession around waits).
"""

from __future__ import annotations

import ssl

from ..client.worker_client import TaskHooks, WorkerClient
from ..security import Security
from ..worker.actor import Worker
from ..worker.context import current_task_key
from ..worker.secession import seceded_for_block, seceded_while_waiting

_HOOKS = TaskHooks(
    current_task_key=current_task_key,
    seceded_while_waiting=seceded_while_waiting,
    seceded_for_block=seceded_for_block,
)


def lend_client(
    worker: Worker, security: Security, ssl_context: ssl.SSLContext | None
) -> WorkerClient:
    """The client `worker` lends to its tasks and actors (see `trident.worker.lent_client`)."""
    return WorkerClient(worker, security, ssl_context, _HOOKS)
