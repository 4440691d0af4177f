"""`KubernetesAPI`: the few Kubernetes API calls `KubeCluster` makes, in one namespace.

It wraps the official ``kubernetes`` client library (``pip install
'trident[kubernetes]'``), imported when a `KubernetesAPI` is made, never at
``import trident``. Calls block (the library is synchronous): `KubeCluster` runs them in
worker threads of its event loop. Each method names the API request it makes, so the
conversation is easy to check against the API reference (and against the replaying
server of the tests).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs

#: Where a pod finds the namespace it runs in (the service account's files).
IN_CLUSTER_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


def _kubernetes() -> Any:
    try:
        import kubernetes
    except ImportError as exc:
        raise ImportError(
            "KubeCluster needs the kubernetes client library: pip install 'trident[kubernetes]'"
        ) from exc
    return kubernetes


def in_cluster() -> bool:
    """Whether this process runs in a Kubernetes pod (the API server is announced)."""
    return "KUBERNETES_SERVICE_HOST" in os.environ


@attrs.frozen
class PodInfo:
    """What `KubeCluster` needs to know of a pod."""

    name: str
    ip: str | None
    #: Running, every container ready, and not being deleted
    ready: bool
    deleting: bool


class KubernetesAPI:
    """Kubernetes API requests in `namespace`, through `api_client` (a
    ``kubernetes.client.ApiClient``), or one configured the way ``kubectl`` is: the
    pod's service account inside a cluster, else the kubeconfig's current context.

    The namespace defaults to the pod's own inside a cluster, else the kubeconfig
    context's, else ``"default"``.
    """

    def __init__(self, namespace: str | None = None, api_client: Any = None):
        kubernetes = _kubernetes()
        context_namespace = None
        if api_client is None:
            if in_cluster():
                kubernetes.config.load_incluster_config()
                if IN_CLUSTER_NAMESPACE.exists():
                    context_namespace = IN_CLUSTER_NAMESPACE.read_text().strip()
            else:
                kubernetes.config.load_kube_config()
                _, active = kubernetes.config.list_kube_config_contexts()
                context_namespace = (active or {}).get("context", {}).get("namespace")
            api_client = kubernetes.client.ApiClient()
        self.namespace: str = namespace or context_namespace or "default"
        self.api_client = api_client
        self._core = kubernetes.client.CoreV1Api(api_client)
        self._apps = kubernetes.client.AppsV1Api(api_client)
        self._api_exception = kubernetes.client.ApiException

    def _ignore_missing(self, call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``call(...)``, or None when the object is not there (HTTP 404)."""
        try:
            return call(*args, **kwargs)
        except self._api_exception as exc:
            if exc.status == 404:
                return None
            raise

    def create(self, obj: dict[str, Any]) -> None:
        """POST `obj` (a Secret, Service or Deployment) to its collection."""
        create = {
            "Secret": self._core.create_namespaced_secret,
            "Service": self._core.create_namespaced_service,
            "Deployment": self._apps.create_namespaced_deployment,
        }[obj["kind"]]
        create(self.namespace, obj)

    def delete(self, kind: str, name: str) -> None:
        """DELETE a Secret, Service or Deployment (its pods go with it, in the
        background); nothing if it is gone already."""
        delete = {
            "Secret": self._core.delete_namespaced_secret,
            "Service": self._core.delete_namespaced_service,
            "Deployment": self._apps.delete_namespaced_deployment,
        }[kind]
        self._ignore_missing(delete, name, self.namespace, propagation_policy="Background")

    def ready_replicas(self, deployment: str) -> int:
        """GET the Deployment: how many of its pods are ready."""
        status = self._apps.read_namespaced_deployment_status(deployment, self.namespace).status
        return int(status.ready_replicas or 0)

    def set_replicas(self, deployment: str, replicas: int) -> None:
        """PATCH the Deployment's scale subresource to `replicas` pods."""
        self._apps.patch_namespaced_deployment_scale(
            deployment, self.namespace, {"spec": {"replicas": replicas}}
        )

    def pods(self, label_selector: str) -> list[PodInfo]:
        """GET the pods that `label_selector` selects."""
        listing = self._core.list_namespaced_pod(self.namespace, label_selector=label_selector)
        pods = []
        for pod in listing.items:
            statuses = pod.status.container_statuses or []
            deleting = pod.metadata.deletion_timestamp is not None
            ready = (
                pod.status.phase == "Running"
                and bool(statuses)
                and all(s.ready for s in statuses)
                and not deleting
            )
            pods.append(PodInfo(pod.metadata.name, pod.status.pod_ip, ready, deleting))
        return pods

    def annotate_pod(self, pod: str, annotations: dict[str, str]) -> bool:
        """PATCH the pod's annotations; False when the pod is gone."""
        patch = {"metadata": {"annotations": annotations}}
        return (
            self._ignore_missing(self._core.patch_namespaced_pod, pod, self.namespace, patch)
            is not None
        )

    def pod_log(self, pod: str, tail_lines: int | None = None) -> str:
        """GET the pod's log (its last `tail_lines` lines); "" when the pod is gone."""
        kwargs = {} if tail_lines is None else {"tail_lines": tail_lines}
        text = self._ignore_missing(
            self._core.read_namespaced_pod_log, pod, self.namespace, **kwargs
        )
        return text or ""
