"""A stand-in Kubernetes API server for `KubeCluster` tests: no cluster is reachable.

`FakeKubernetes` serves, over real HTTP on loopback, the part of the Kubernetes API that
`trident.cluster.kube.api.KubernetesAPI` calls, with the official client library on the
other end, so the requests checked are the ones the library really makes. It

- records the conversation (`FakeKubernetes.requests`: method, path, query, body);
- validates every object POSTed against the Kubernetes schemas (``kubernetes-validate``,
  strict), and refuses an unknown path or a malformed body with the API's status codes;
- plays the controllers: a Deployment's ``replicas`` becomes pods that are Running and
  ready at once (the scheduler's too), and a smaller ``replicas`` removes the pods with
  the lowest ``controller.kubernetes.io/pod-deletion-cost`` first, as the ReplicaSet
  controller does; deleting a Deployment deletes its pods;
- serves each pod's log as ``log of POD``;
- authorizes as the RBAC authorizer does, when given a Role's rules: every request is
  turned into the (API group, resource[/subresource], verb) that RBAC checks
  (`FakeKubernetes.attributes`), and one the rules do not allow is refused with 403
  Forbidden, as for a pod whose service account is bound to that Role.

What it does not model: scheduling onto nodes, image pulls, probes, restarts, watches,
other authorizers (a Role's ``resourceNames``, ``*`` wildcards: refused when loaded).
"""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import kubernetes_validate
import yaml

COLLECTIONS = {
    ("api/v1", "secrets"): "Secret",
    ("api/v1", "services"): "Service",
    ("api/v1", "pods"): "Pod",
    ("apis/apps/v1", "deployments"): "Deployment",
}
PATH = re.compile(
    r"^/(?P<group>api/v1|apis/apps/v1)/namespaces/(?P<ns>[^/]+)/(?P<plural>[a-z]+)"
    r"(?:/(?P<name>[^/]+))?(?:/(?P<sub>status|scale|log))?$"
)
DELETION_COST = "controller.kubernetes.io/pod-deletion-cost"
GROUPS = {"api/v1": "", "apis/apps/v1": "apps"}
#: (API group, resource[/subresource], verb): what RBAC authorizes a request by.
Permission = tuple[str, str, str]


def role_permissions(rules: list[dict[str, Any]]) -> set[Permission]:
    """Every (API group, resource, verb) a Role's `rules` allow, spelled out."""
    allowed: set[Permission] = set()
    for rule in rules:
        if set(rule) != {"apiGroups", "resources", "verbs"}:
            raise ValueError(f"rule with fields this stand-in does not model: {rule}")
        for field in rule.values():
            if "*" in field:
                raise ValueError(f"wildcards are not modelled: {rule}")
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                allowed.update((group, resource, verb) for verb in rule["verbs"])
    return allowed


def role_from_manifest(path: Any) -> list[dict[str, Any]]:
    """The rules of the one Role in the manifest file at `path`."""
    documents = yaml.safe_load_all(Path(path).read_text())
    (role,) = [doc for doc in documents if doc and doc["kind"] == "Role"]
    return list(role["rules"])


def attributes(method: str, path: str, query: dict[str, list[str]]) -> Permission | None:
    """The (API group, resource[/subresource], verb) the RBAC authorizer checks for a
    request, as the API server derives them; None for a path outside the served API."""
    match = PATH.match(path)
    if match is None:
        return None
    resource = match["plural"] + (f"/{match['sub']}" if match["sub"] else "")
    named = match["name"] is not None
    if method == "GET":
        verb = "get" if named else ("watch" if query.get("watch") == ["true"] else "list")
    elif method == "DELETE":
        verb = "delete" if named else "deletecollection"
    else:
        verb = {"POST": "create", "PATCH": "patch", "PUT": "update"}.get(method, method.lower())
    return GROUPS[match["group"]], resource, verb


class FakeKubernetes:
    """The API server's state and conversation; `url` once started (a context manager)."""

    def __init__(self, role: list[dict[str, Any]] | None = None) -> None:
        """`role`: the rules of the Role the caller's service account is bound to
        (None: every request is allowed, as for a cluster administrator)."""
        self.allowed = None if role is None else role_permissions(role)
        self.objects: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.requests: list[tuple[str, str, dict[str, list[str]], Any]] = []
        #: the RBAC attributes of every request served (refused ones included)
        self.seen: list[Permission] = []
        self.lock = threading.Lock()
        self._pod_serial = 0
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-kube-api")

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> FakeKubernetes:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    # --- what tests look at -----------------------------------------------------------

    def calls(self) -> list[tuple[str, str]]:
        """The conversation as (method, path) pairs."""
        return [(method, path) for method, path, _, _ in self.requests]

    def pods(self, namespace: str = "default") -> dict[str, dict[str, Any]]:
        return {
            n: o for (ns, kind, n), o in self.objects.items() if kind == "Pod" and ns == namespace
        }

    # --- the controllers ----------------------------------------------------------------

    def _reconcile(self, namespace: str, deployment: dict[str, Any]) -> None:
        name = deployment["metadata"]["name"]
        labels = deployment["spec"]["selector"]["matchLabels"]
        mine = [
            p
            for p in self.pods(namespace).values()
            if p["metadata"]["labels"].items() >= labels.items()
        ]
        wanted = deployment["spec"]["replicas"]
        while len(mine) < wanted:
            self._pod_serial += 1
            pod_name = f"{name}-5d8f7-{self._pod_serial:05d}"
            template = deployment["spec"]["template"]
            pod = {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {
                    "name": pod_name,
                    "namespace": namespace,
                    "labels": dict(template["metadata"]["labels"]),
                    "annotations": {},
                    "creationTimestamp": "2026-01-01T00:00:00Z",
                },
                "spec": template["spec"],
                "status": {
                    "phase": "Running",
                    "podIP": f"10.1.0.{self._pod_serial}",
                    "containerStatuses": [
                        {
                            "name": c["name"],
                            "ready": True,
                            "restartCount": 0,
                            "image": c["image"],
                            "imageID": "",
                        }
                        for c in template["spec"]["containers"]
                    ],
                },
            }
            self.objects[namespace, "Pod", pod_name] = pod
            mine.append(pod)
        # The ReplicaSet controller removes the lowest deletion cost first, newest first
        # among equals.
        mine.sort(
            key=lambda p: (
                int(p["metadata"]["annotations"].get(DELETION_COST, "0")),
                p["metadata"]["name"],
            )
        )
        for pod in mine[: max(0, len(mine) - wanted)]:
            del self.objects[namespace, "Pod", pod["metadata"]["name"]]
        ready = min(wanted, len(mine))
        deployment["status"] = {"replicas": ready, "readyReplicas": ready}

    # --- requests -----------------------------------------------------------------------

    def handle(self, method: str, raw_path: str, body: Any) -> tuple[int, Any]:
        split = urlsplit(raw_path)
        query = parse_qs(split.query)
        self.requests.append((method, split.path, query, body))
        wanted = attributes(method, split.path, query)
        if wanted is not None:
            self.seen.append(wanted)
            if self.allowed is not None and wanted not in self.allowed:
                group, resource, verb = wanted
                return 403, _status(
                    403,
                    f'{resource} is forbidden: User "system:serviceaccount:test:kubecluster" '
                    f'cannot {verb} resource "{resource}" in API group "{group}"',
                )
        match = PATH.match(split.path)
        if match is None or (match["group"], match["plural"]) not in COLLECTIONS:
            return 404, _status(404, f"no such path {split.path}")
        ns, kind = match["ns"], COLLECTIONS[match["group"], match["plural"]]
        name, sub = match["name"], match["sub"]
        key = (ns, kind, name or "")
        if method == "POST" and name is None:
            try:
                kubernetes_validate.validate(
                    body, kubernetes_validate.latest_version(), strict=True
                )
            except kubernetes_validate.ValidationError as exc:
                return 422, _status(422, str(exc))
            key = (ns, kind, body["metadata"]["name"])
            if key in self.objects:
                return 409, _status(409, f"{kind} {key[2]} already exists")
            obj = json.loads(json.dumps(body))
            obj["metadata"]["namespace"] = ns
            self.objects[key] = obj
            if kind == "Deployment":
                self._reconcile(ns, obj)
            return 201, obj
        if method == "GET" and name is None and kind == "Pod":
            wanted = dict(
                part.split("=", 1)
                for part in query.get("labelSelector", [""])[0].split(",")
                if part
            )
            items = [
                p
                for p in self.pods(ns).values()
                if p["metadata"]["labels"].items() >= wanted.items()
            ]
            return 200, {"apiVersion": "v1", "kind": "PodList", "metadata": {}, "items": items}
        if key not in self.objects:
            return 404, _status(404, f'{kind.lower()}s "{name}" not found')
        obj = self.objects[key]
        if method == "GET" and sub == "log":
            return 200, f"log of {name}\n"
        if method == "GET" and sub in (None, "status"):
            return 200, obj
        if method == "PATCH" and sub == "scale" and kind == "Deployment":
            if set(body) != {"spec"} or set(body["spec"]) != {"replicas"}:
                return 422, _status(422, f"bad scale patch {body}")
            obj["spec"]["replicas"] = int(body["spec"]["replicas"])
            self._reconcile(ns, obj)
            replicas = obj["spec"]["replicas"]
            return 200, {
                "apiVersion": "autoscaling/v1",
                "kind": "Scale",
                "metadata": {"name": name, "namespace": ns},
                "spec": {"replicas": replicas},
                "status": {"replicas": replicas},
            }
        if method == "PATCH" and sub is None and kind == "Pod":
            if set(body) != {"metadata"} or set(body["metadata"]) != {"annotations"}:
                return 422, _status(422, f"bad pod patch {body}")
            obj["metadata"]["annotations"].update(body["metadata"]["annotations"])
            return 200, obj
        if method == "DELETE" and sub is None:
            del self.objects[key]
            if kind == "Deployment":
                obj["spec"]["replicas"] = 0
                self._reconcile(ns, obj)
            # The API answers a deleted Service with the object, the others with a Status.
            return 200, obj if kind == "Service" else _status(200, "deleted", "Success")
        return 405, _status(405, f"{method} {split.path} is not served")


def _status(code: int, message: str, status: str = "Failure") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Status",
        "status": status,
        "message": message,
        "code": code,
    }


def _handler(api: FakeKubernetes) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            body = json.loads(raw) if raw else None
            with api.lock:
                code, payload = api.handle(self.command, self.path, body)
            data = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
            self.send_response(code)
            kind = "text/plain" if isinstance(payload, str) else "application/json"
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PATCH = do_DELETE = _serve

        def log_message(self, format: str, *args: Any) -> None:
            return None

    return Handler
