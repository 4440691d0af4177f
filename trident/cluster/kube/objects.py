"""The Kubernetes objects of one trident cluster, as plain dicts (no client library).

`cluster_objects` builds what `KubeCluster` creates, in the shape of the Helm chart in
``deploy/helm/trident`` (same names, labels, ports and commands): a Secret with the
token, the scheduler's Deployment and Service, a dashboard Service and the workers'
Deployment. The token reaches both Deployments as ``TRIDENT_TOKEN`` from the Secret,
never in a container's arguments. Connections inside the cluster are plain TCP with
the token (docs/deploy.md#kubernetes says what that protects against).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from ...security import TOKEN_ENV

SCHEDULER_PORT = 8786
DASHBOARD_PORT = 8787
WORKER_PORT = 8788
#: The annotation the ReplicaSet controller reads to choose which pods a smaller
#: ``replicas`` removes first (lowest cost first; Kubernetes >= 1.22).
DELETION_COST = "controller.kubernetes.io/pod-deletion-cost"
#: The share of a worker container's memory limit its nanny holds the worker to by
#: default: the nanny and the interpreter need some, and the kernel kills the
#: container at the limit.
MEMORY_SHARE = 0.9

_QUANTITY = re.compile(r"^([0-9.]+)([a-zA-Z]*)$")
_SUFFIXES = {
    "": 1,
    "m": 1e-3,
    "k": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
    "P": 1e15,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
}


def parse_quantity(value: str | int | float) -> float:
    """A Kubernetes resource quantity (``"4Gi"``, ``"500m"``, ``2``) as a number.

    Raises `ValueError` for anything else (exponent forms are not accepted)."""
    if isinstance(value, int | float):
        return float(value)
    match = _QUANTITY.match(value.strip())
    if match is None or match.group(2) not in _SUFFIXES:
        raise ValueError(f"not a Kubernetes quantity: {value!r}")
    return float(match.group(1)) * _SUFFIXES[match.group(2)]


def _limit_or_request(resources: Mapping[str, Any], name: str) -> Any:
    for part in ("limits", "requests"):
        value = (resources.get(part) or {}).get(name)
        if value is not None:
            return value
    return None


def default_threads(resources: Mapping[str, Any]) -> int:
    """Threads per worker: the container's CPU limit (else request) rounded up; 1."""
    cpu = _limit_or_request(resources, "cpu")
    return max(1, math.ceil(parse_quantity(cpu))) if cpu is not None else 1


def default_memory_limit(resources: Mapping[str, Any]) -> int | None:
    """The worker's memory limit: `MEMORY_SHARE` of the container's memory limit, or
    None (no limit) without one."""
    memory = (resources.get("limits") or {}).get("memory")
    return int(parse_quantity(memory) * MEMORY_SHARE) if memory is not None else None


def env_list(env: Mapping[str, str] | Sequence[Mapping[str, Any]] | None) -> list[dict[str, Any]]:
    """`env` as a container's ``env`` list: ``{"A": "1"}`` or a list of EnvVar dicts
    (as dask-kubernetes takes it). `TOKEN_ENV` is refused: the Secret provides it."""
    if env is None:
        items: list[dict[str, Any]] = []
    elif isinstance(env, Mapping):
        items = [{"name": str(k), "value": str(v)} for k, v in env.items()]
    else:
        items = [dict(e) for e in env]
    if any(e.get("name") == TOKEN_ENV for e in items):
        raise ValueError(f"{TOKEN_ENV} comes from the cluster's Secret; do not set it in env")
    return items


def labels(name: str, component: str | None = None) -> dict[str, str]:
    """The labels of cluster `name`'s objects (the Helm chart's, with `name` as the
    release), optionally of one component (``"scheduler"``, ``"worker"``)."""
    out = {"app.kubernetes.io/name": "trident", "app.kubernetes.io/instance": name}
    if component is not None:
        out["app.kubernetes.io/component"] = component
    return out


def selector(name: str, component: str) -> str:
    """`labels` as a label selector string, for listing pods."""
    return ",".join(f"{k}={v}" for k, v in labels(name, component).items())


def secret_name(name: str) -> str:
    return f"{name}-token"


def scheduler_name(name: str) -> str:
    """The scheduler's Deployment and Service (its DNS name in the namespace)."""
    return f"{name}-scheduler"


def dashboard_name(name: str) -> str:
    return f"{name}-dashboard"


def worker_name(name: str) -> str:
    return f"{name}-worker"


def _token_env(name: str) -> dict[str, Any]:
    return {
        "name": TOKEN_ENV,
        "valueFrom": {"secretKeyRef": {"name": secret_name(name), "key": "token"}},
    }


def _field_env(variable: str, path: str) -> dict[str, Any]:
    return {"name": variable, "valueFrom": {"fieldRef": {"fieldPath": path}}}


_POD_SECURITY = {"runAsNonRoot": True, "runAsUser": 1000, "fsGroup": 1000}


def secret(name: str, token: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": secret_name(name), "labels": labels(name)},
        "type": "Opaque",
        "stringData": {"token": token},
    }


def scheduler_deployment(
    name: str,
    image: str,
    env: list[dict[str, Any]],
    resources: Mapping[str, Any],
    image_pull_policy: str = "IfNotPresent",
) -> dict[str, Any]:
    pod_labels = labels(name, "scheduler")
    container = {
        "name": "scheduler",
        "image": image,
        "imagePullPolicy": image_pull_policy,
        "args": [
            "scheduler",
            "--host=0.0.0.0",
            f"--port={SCHEDULER_PORT}",
            f"--dashboard-address=:{DASHBOARD_PORT}",
            "--no-tls",
        ],
        "env": [_token_env(name), *env],
        "ports": [
            {"name": "comm", "containerPort": SCHEDULER_PORT},
            {"name": "dashboard", "containerPort": DASHBOARD_PORT},
        ],
        "readinessProbe": {"tcpSocket": {"port": "comm"}, "periodSeconds": 2},
        "livenessProbe": {
            "tcpSocket": {"port": "comm"},
            "initialDelaySeconds": 10,
            "periodSeconds": 10,
        },
        "resources": dict(resources),
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": scheduler_name(name), "labels": pod_labels},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": pod_labels},
            "template": {
                "metadata": {"labels": pod_labels},
                "spec": {"securityContext": dict(_POD_SECURITY), "containers": [container]},
            },
        },
    }


def _service(
    service: str, name: str, component: str, service_type: str, ports: list[dict[str, Any]]
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": service, "labels": labels(name, component)},
        "spec": {
            "type": service_type,
            "selector": labels(name, "scheduler"),
            "ports": ports,
        },
    }


def scheduler_service(name: str, service_type: str = "ClusterIP") -> dict[str, Any]:
    return _service(
        scheduler_name(name),
        name,
        "scheduler",
        service_type,
        [
            {"name": "comm", "port": SCHEDULER_PORT, "targetPort": "comm"},
            {"name": "dashboard", "port": DASHBOARD_PORT, "targetPort": "dashboard"},
        ],
    )


def dashboard_service(name: str, service_type: str = "ClusterIP") -> dict[str, Any]:
    return _service(
        dashboard_name(name),
        name,
        "dashboard",
        service_type,
        [{"name": "http", "port": DASHBOARD_PORT, "targetPort": "dashboard"}],
    )


def worker_deployment(
    name: str,
    image: str,
    replicas: int,
    env: list[dict[str, Any]],
    resources: Mapping[str, Any],
    nthreads: int,
    memory_limit: int | str | None,
    image_pull_policy: str = "IfNotPresent",
) -> dict[str, Any]:
    pod_labels = labels(name, "worker")
    # $(VAR) is expanded by Kubernetes from the container's env, not by a shell.
    args = [
        "worker",
        f"tcp://{scheduler_name(name)}:{SCHEDULER_PORT}",
        f"--listen-address=tcp://0.0.0.0:{WORKER_PORT}",
        f"--contact-address=tcp://$(POD_IP):{WORKER_PORT}",
        "--name=$(POD_NAME)",
        f"--nthreads={nthreads}",
        f"--memory-limit={'none' if memory_limit is None else memory_limit}",
        "--local-directory=/scratch",
    ]
    container = {
        "name": "worker",
        "image": image,
        "imagePullPolicy": image_pull_policy,
        "args": args,
        "env": [
            _token_env(name),
            _field_env("POD_NAME", "metadata.name"),
            _field_env("POD_IP", "status.podIP"),
            *env,
        ],
        "ports": [{"name": "worker", "containerPort": WORKER_PORT}],
        # Ready once the worker listens: a pod is only counted as started then.
        "readinessProbe": {"tcpSocket": {"port": "worker"}, "periodSeconds": 2},
        "resources": dict(resources),
        "volumeMounts": [{"name": "scratch", "mountPath": "/scratch"}],
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": worker_name(name), "labels": pod_labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": pod_labels},
            "template": {
                "metadata": {"labels": pod_labels},
                "spec": {
                    "securityContext": dict(_POD_SECURITY),
                    "containers": [container],
                    "volumes": [{"name": "scratch", "emptyDir": {}}],
                },
            },
        },
    }


def cluster_objects(
    name: str,
    token: str,
    *,
    image: str,
    n_workers: int = 0,
    resources: Mapping[str, Any] | None = None,
    scheduler_resources: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | Sequence[Mapping[str, Any]] | None = None,
    threads_per_worker: int | None = None,
    memory_limit: int | str | None = "auto",
    scheduler_service_type: str = "ClusterIP",
    image_pull_policy: str = "IfNotPresent",
) -> list[dict[str, Any]]:
    """Every object of cluster `name`, in the order to create them: the Secret, the
    scheduler's Deployment, its Service, the dashboard Service, the workers' Deployment
    (with `n_workers` replicas).

    `resources` are the worker containers' (``{"requests": ..., "limits": ...}``);
    `threads_per_worker` defaults to their CPU limit or request, `memory_limit`
    (``"auto"``) to `MEMORY_SHARE` of their memory limit. Raises `ValueError` for a
    bad quantity or a token in `env`.
    """
    resources = dict(resources or {})
    variables = env_list(env)
    if memory_limit == "auto":
        memory_limit = default_memory_limit(resources)
    nthreads = threads_per_worker if threads_per_worker is not None else default_threads(resources)
    return [
        secret(name, token),
        scheduler_deployment(name, image, variables, scheduler_resources or {}, image_pull_policy),
        scheduler_service(name, scheduler_service_type),
        dashboard_service(name),
        worker_deployment(
            name,
            image,
            n_workers,
            variables,
            resources,
            nthreads,
            memory_limit,
            image_pull_policy,
        ),
    ]
