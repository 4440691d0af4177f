"""`KubeCluster`: a trident cluster on Kubernetes, made through the Kubernetes API.

dask-kubernetes' ``KubeCluster`` with its familiar knobs (``name``, ``namespace``,
``image``, ``n_workers``, ``resources``, ``env``, ``port_forward_cluster_ip``,
``scheduler_service_type``, ``shutdown_on_close``, ``resource_timeout``), without an
operator: the cluster object itself creates the objects of `trident.cluster.kube.objects`
(the Helm chart's shapes) and scales the workers' Deployment.

Workers are the pods of that Deployment, each a worker named after its pod. The
`ClusterManager` hooks map onto it as follows:

- `_start_scheduler` creates the Secret (a random token, or the one of `security`), the
  scheduler's Deployment and Services and an empty worker Deployment, waits for the
  scheduler pod to be ready, and returns an address this process can reach: the
  Service's DNS name inside the cluster, else a ``kubectl port-forward`` it runs (and
  stops at close);
- `_start_worker` raises the Deployment's ``replicas`` by one and claims the next ready
  pod nobody claimed;
- `_stop_worker` (after the base class retired the worker: its data moved away) marks
  its pod with the lowest ``controller.kubernetes.io/pod-deletion-cost``, so that the
  ReplicaSet removes that pod and no other, and lowers ``replicas`` by one;
- closing deletes everything the cluster created (unless ``shutdown_on_close=False``).

`get_logs` returns the pods' logs (``kubectl logs``), keyed ``"Scheduler"`` and by pod.
"""

from __future__ import annotations

import logging
import re
import secrets
import shutil
from collections.abc import Mapping, Sequence
from typing import Any

import anyio
import attrs
import trio

from ..._public import publish
from ...security import Security
from ..manager import ClusterManager
from . import objects
from .api import KubernetesAPI, in_cluster

logger = logging.getLogger("trident.cluster.kube")

#: Seconds between two looks at the pods while waiting for them.
POLL_INTERVAL = 1.0
#: The deletion cost given to a pod that is to go (the ReplicaSet removes the lowest).
LEAVING_COST = "-2147483647"
_FORWARDING = re.compile(r"Forwarding from 127\.0\.0\.1:(\d+) -> (\d+)")


@attrs.define
class WorkerPod:
    """The handle of one worker: its pod and the address it registers with."""

    pod: str
    address: str


class KubeCluster(ClusterManager):
    """A scheduler and `n_workers` workers in Kubernetes pods.

    Arguments:
        name: the cluster's name, the prefix of its objects' names (default: a random
            ``trident-XXXXXXXX``).
        namespace: where to create them (default: the pod's own namespace inside a
            cluster, else the kubeconfig context's, else ``"default"``).
        image: the container image with trident installed (``deploy/docker/Dockerfile``)
            and what your tasks import.
        n_workers: workers to start with.
        resources: each worker container's ``{"requests": ..., "limits": ...}``; the
            worker's threads default to its CPU and its memory limit to 90% of the
            container's memory limit.
        env: environment variables of the scheduler and worker containers, a dict or a
            list of Kubernetes EnvVar dicts.
        threads_per_worker: overrides that default.
        memory_limit: overrides that default: bytes, ``"4GB"``, None for no limit.
        scheduler_resources: the scheduler container's resources.
        scheduler_service_type: ``ClusterIP`` (default), ``NodePort`` or ``LoadBalancer``.
        port_forward_cluster_ip: reach the scheduler through ``kubectl port-forward``
            (needs ``kubectl`` on the PATH); default: when not running in a pod.
        security: a `Security` whose token the cluster uses (default: a random token).
        shutdown_on_close: delete the cluster's objects when it closes (default True).
        resource_timeout: seconds to wait for the scheduler pod (and each worker pod).
        asynchronous: start with ``async with`` / ``await`` instead of at construction.
        api: a `KubernetesAPI` to use instead of one configured like ``kubectl``.

    Attributes: `name`, `namespace`, `objects` (the dicts created),
    `threads_per_worker`, and those of `ClusterManager`.
    """

    def __init__(
        self,
        name: str | None = None,
        namespace: str | None = None,
        image: str = "trident:dev",
        n_workers: int = 3,
        resources: Mapping[str, Any] | None = None,
        env: Mapping[str, str] | Sequence[Mapping[str, Any]] | None = None,
        *,
        threads_per_worker: int | None = None,
        memory_limit: int | str | None = "auto",
        scheduler_resources: Mapping[str, Any] | None = None,
        scheduler_service_type: str = "ClusterIP",
        port_forward_cluster_ip: bool | None = None,
        security: Security | None = None,
        shutdown_on_close: bool = True,
        resource_timeout: float = 120.0,
        asynchronous: bool = False,
        api: KubernetesAPI | None = None,
    ):
        if security is None or security.token is None:
            security = Security(token=secrets.token_urlsafe(32))
        if security.tls:
            raise ValueError(
                "KubeCluster connects over plain TCP with the token inside the cluster; "
                "for TLS between pods use the Helm chart's tls.secretName"
            )
        super().__init__(security=security, n_workers=n_workers, asynchronous=asynchronous)
        self.name = name or f"trident-{secrets.token_hex(4)}"
        self.api = api if api is not None else KubernetesAPI(namespace)
        self.namespace = self.api.namespace
        assert security.token is not None
        #: threads of each worker (what `Adaptive` sizes the cluster by)
        self.threads_per_worker = (
            threads_per_worker
            if threads_per_worker is not None
            else objects.default_threads(resources or {})
        )
        self.objects = objects.cluster_objects(
            self.name,
            security.token,
            image=image,
            n_workers=0,
            resources=resources,
            scheduler_resources=scheduler_resources,
            env=env,
            threads_per_worker=self.threads_per_worker,
            memory_limit=memory_limit,
            scheduler_service_type=scheduler_service_type,
        )
        self.port_forward = (
            not in_cluster() if port_forward_cluster_ip is None else port_forward_cluster_ip
        )
        if self.port_forward and shutil.which("kubectl") is None:
            raise RuntimeError(
                "port_forward_cluster_ip needs kubectl on the PATH (or run in the cluster)"
            )
        self.shutdown_on_close = shutdown_on_close
        self.resource_timeout = resource_timeout
        self._replicas = 0
        self._claimed: set[str] = set()
        self._pods_lock = trio.Lock()
        self._dashboard = ""
        self._created: list[tuple[str, str]] = []
        self._start()

    # --- API calls in threads -------------------------------------------------------

    async def _call(self, method: Any, *args: Any, **kwargs: Any) -> Any:
        return await trio.to_thread.run_sync(lambda: method(*args, **kwargs))

    # --- the hooks ----------------------------------------------------------------

    async def _start_scheduler(self) -> str:
        for obj in self.objects:
            await self._call(self.api.create, obj)
            self._created.append((obj["kind"], obj["metadata"]["name"]))
        # Polled: a watch would need a long-lived stream for one change of one field.
        deployment = objects.scheduler_name(self.name)
        with trio.fail_after(self.resource_timeout):
            while True:
                if await self._call(self.api.ready_replicas, deployment) >= 1:
                    break
                await trio.sleep(POLL_INTERVAL)
        if self.port_forward:
            assert self._nursery is not None
            comm, dashboard = await self._nursery.start(self._port_forward)
            self._dashboard = f"127.0.0.1:{dashboard}"
            return f"tcp://127.0.0.1:{comm}"
        host = f"{objects.scheduler_name(self.name)}.{self.namespace}"
        self._dashboard = f"{host}:{objects.DASHBOARD_PORT}"
        return f"tcp://{host}:{objects.SCHEDULER_PORT}"

    async def _port_forward(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Run ``kubectl port-forward`` to the scheduler's Service until cancelled;
        report ``(local scheduler port, local dashboard port)`` once it forwards."""
        command = [
            shutil.which("kubectl") or "kubectl",
            "port-forward",
            "--namespace",
            self.namespace,
            f"service/{objects.scheduler_name(self.name)}",
            f":{objects.SCHEDULER_PORT}",
            f":{objects.DASHBOARD_PORT}",
        ]
        process = await trio.lowlevel.open_process(command, stdout=-1)
        assert process.stdout is not None
        try:
            ports: dict[int, int] = {}
            buffer = b""
            with trio.fail_after(self.resource_timeout):
                while len(ports) < 2:
                    chunk = await process.stdout.receive_some()
                    if not chunk:
                        raise RuntimeError(f"kubectl port-forward exited ({process.returncode})")
                    buffer += chunk
                    for local, remote in _FORWARDING.findall(buffer.decode(errors="replace")):
                        ports[int(remote)] = int(local)
            task_status.started((ports[objects.SCHEDULER_PORT], ports[objects.DASHBOARD_PORT]))
            # Keep reading so kubectl never blocks on a full pipe.
            while await process.stdout.receive_some():
                pass
            await process.wait()
        finally:
            with trio.CancelScope(shield=True):
                if process.returncode is None:
                    process.kill()
                await process.wait()
                await process.stdout.aclose()

    async def _start_worker(self, name: str) -> WorkerPod:
        async with self._pods_lock:
            self._replicas += 1
            await self._call(self.api.set_replicas, objects.worker_name(self.name), self._replicas)
        selector = objects.selector(self.name, "worker")
        with trio.fail_after(self.resource_timeout):
            while True:
                async with self._pods_lock:
                    for pod in await self._call(self.api.pods, selector):
                        if pod.ready and pod.ip and pod.name not in self._claimed:
                            self._claimed.add(pod.name)
                            address = f"tcp://{pod.ip}:{objects.WORKER_PORT}"
                            return WorkerPod(pod.name, address)
                await trio.sleep(POLL_INTERVAL)

    async def _stop_worker(self, name: str, handle: WorkerPod) -> None:
        if self._close_requested is not None and self._close_requested.is_set():
            return  # closing deletes the Deployment and every pod with it
        async with self._pods_lock:
            await self._call(
                self.api.annotate_pod, handle.pod, {objects.DELETION_COST: LEAVING_COST}
            )
            self._replicas = max(0, self._replicas - 1)
            await self._call(self.api.set_replicas, objects.worker_name(self.name), self._replicas)
            self._claimed.discard(handle.pod)

    async def _stop_scheduler(self) -> None:
        if not self.shutdown_on_close:
            return
        # Delete everything, even when one deletion fails (it is logged).
        for kind, name in reversed(self._created):
            try:
                await self._call(self.api.delete, kind, name)
            except Exception:
                logger.exception("could not delete %s %s/%s", kind, self.namespace, name)
        self._created.clear()

    # --- information ------------------------------------------------------------------

    def _dashboard_address(self) -> str | None:
        return self._dashboard or None

    def get_logs(self, cluster: bool = True, scheduler: bool = True, workers: bool = True) -> Any:
        """The pods' logs: ``{"Cluster": "", "Scheduler": ..., POD: ...}`` (the worker
        pods by name), one string each, as dask-kubernetes returns them. A coroutine if
        asynchronous."""
        want = (cluster, scheduler, workers)
        if self.asynchronous:
            return anyio.to_thread.run_sync(self._read_logs, want)
        return self._read_logs(want)

    def _read_logs(self, want: tuple[bool, bool, bool]) -> dict[str, str]:
        logs: dict[str, str] = {}
        if want[0]:
            logs["Cluster"] = ""
        if want[1]:
            for pod in self.api.pods(objects.selector(self.name, "scheduler")):
                logs["Scheduler"] = self.api.pod_log(pod.name)
        if want[2]:
            for pod in self.api.pods(objects.selector(self.name, "worker")):
                logs[pod.name] = self.api.pod_log(pod.name)
        return logs

    def __repr__(self) -> str:
        return (
            f"KubeCluster({self.name!r}, namespace={self.namespace!r}, "
            f"{self.scheduler_address!r}, workers={len(self.workers)}, status={self.status})"
        )


publish(globals())
