"""KubeCluster and its API calls, against a stand-in Kubernetes API server.

No Kubernetes cluster is reachable where these tests run. The Kubernetes side is
`kube_api_double.FakeKubernetes`: real HTTP, the official client library, the objects
validated against the Kubernetes schemas, the conversation recorded and checked. The
trident side is real: ``kubectl port-forward`` is a stand-in script that reports the
port of a real in-process scheduler (a `LocalCluster`), so `scale` retires through a
real client and ``Client(cluster)`` computes on it. docs/deploy.md#kubernetes says what
was and was not run against a live cluster.

The stand-in authorizes every request against the Role of deploy/kubernetes/rbac.yaml
(the Helm chart's ``rbac.create``), as the API server does for a pod whose service
account is bound to it: a call `KubeCluster` makes that the Role does not allow fails
these tests, and the full-lifecycle test checks that the Role allows nothing more than
the calls it saw.
"""

from __future__ import annotations

import json
import os
import stat
import sys
import textwrap
import time
from pathlib import Path

import kubernetes
import kubernetes_validate
import pytest
import trio

from trident import Client, KubeCluster, LocalCluster, Security
from trident.cluster.kube import objects
from trident.cluster.kube.api import KubernetesAPI
from trident.cluster.remote_adaptive import RemoteAdaptive

from .kube_api_double import (
    DELETION_COST,
    FakeKubernetes,
    role_from_manifest,
    role_permissions,
)

NS = "analytics"
RBAC = Path(__file__).resolve().parents[2] / "deploy" / "kubernetes" / "rbac.yaml"
ROLE = role_from_manifest(RBAC)


@pytest.fixture
def fake_api():
    with FakeKubernetes(role=ROLE) as fake:
        configuration = kubernetes.client.Configuration()
        configuration.host = fake.url
        api_client = kubernetes.client.ApiClient(configuration)
        try:
            yield fake, KubernetesAPI(namespace=NS, api_client=api_client)
        finally:
            api_client.close()


@pytest.fixture
def scheduler_behind_kubectl(tmp_path, monkeypatch):
    """A real scheduler (one in-process worker) and a `kubectl` on the PATH whose
    ``port-forward`` reports that scheduler's port (and dashboard port) as forwarded,
    records its arguments, and runs until killed."""
    with LocalCluster(
        n_workers=1, processes=False, threads_per_worker=1, protocol="tcp", dashboard_address=None
    ) as local:
        port = local.scheduler_address.rsplit(":", 1)[1]
        argv_file = tmp_path / "kubectl-argv.json"
        script = tmp_path / "kubectl"
        script.write_text(
            f"#!{sys.executable}\n"
            + textwrap.dedent(
                f"""
                import json, sys, time
                with open({str(argv_file)!r}, "w") as f:
                    json.dump(sys.argv[1:], f)
                print("Forwarding from 127.0.0.1:{port} -> 8786", flush=True)
                print("Forwarding from [::1]:{port} -> 8786", flush=True)
                print("Forwarding from 127.0.0.1:8787 -> 8787", flush=True)
                time.sleep(600)
                """
            )
        )
        script.chmod(script.stat().st_mode | stat.S_IXUSR)
        monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
        yield local, argv_file


def test_the_api_layer_speaks_the_kubernetes_api(fake_api):
    fake, api = fake_api
    for obj in objects.cluster_objects("c1", "tok", image="trident:dev", n_workers=2):
        api.create(obj)
    assert api.ready_replicas("c1-worker") == 2
    pods = api.pods(objects.selector("c1", "worker"))
    assert [p.ready for p in pods] == [True, True]
    assert api.annotate_pod(pods[1].name, {DELETION_COST: "-5"})
    api.set_replicas("c1-worker", 1)
    assert [p.name for p in api.pods(objects.selector("c1", "worker"))] == [pods[0].name]
    assert api.pod_log(pods[0].name, tail_lines=10) == f"log of {pods[0].name}\n"
    assert api.pod_log("gone") == ""
    assert not api.annotate_pod("gone", {DELETION_COST: "1"})
    api.delete("Deployment", "c1-worker")
    api.delete("Deployment", "c1-worker")  # already gone: no error
    assert api.pods(objects.selector("c1", "worker")) == []
    base = f"/api/v1/namespaces/{NS}"
    apps = f"/apis/apps/v1/namespaces/{NS}"
    assert fake.calls() == [
        ("POST", f"{base}/secrets"),
        ("POST", f"{apps}/deployments"),
        ("POST", f"{base}/services"),
        ("POST", f"{base}/services"),
        ("POST", f"{apps}/deployments"),
        ("GET", f"{apps}/deployments/c1-worker/status"),
        ("GET", f"{base}/pods"),
        ("PATCH", f"{base}/pods/{pods[1].name}"),
        ("PATCH", f"{apps}/deployments/c1-worker/scale"),
        ("GET", f"{base}/pods"),
        ("GET", f"{base}/pods/{pods[0].name}/log"),
        ("GET", f"{base}/pods/gone/log"),
        ("PATCH", f"{base}/pods/gone"),
        ("DELETE", f"{apps}/deployments/c1-worker"),
        ("DELETE", f"{apps}/deployments/c1-worker"),
        ("GET", f"{base}/pods"),
    ]
    (_, _, query, _) = fake.requests[6]
    assert query == {"labelSelector": [objects.selector("c1", "worker")]}
    assert fake.requests[10][2] == {"tailLines": ["10"]}


def test_objects_are_valid_and_keep_the_token_in_the_secret():
    made = objects.cluster_objects(
        "c2",
        "tok3n",
        image="registry.example/trident:1",
        n_workers=4,
        resources={"limits": {"cpu": "1500m", "memory": "2Gi"}},
        env={"OMP_NUM_THREADS": "1"},
    )
    for obj in made:
        kubernetes_validate.validate(obj, kubernetes_validate.latest_version(), strict=True)
    secret, scheduler, _, _, workers = made
    assert secret["stringData"] == {"token": "tok3n"}
    assert "tok3n" not in json.dumps([scheduler, workers])
    (worker,) = workers["spec"]["template"]["spec"]["containers"]
    assert workers["spec"]["replicas"] == 4
    assert "--nthreads=2" in worker["args"]
    assert f"--memory-limit={int(2 * 2**30 * 0.9)}" in worker["args"]
    assert {"name": "OMP_NUM_THREADS", "value": "1"} in worker["env"]
    with pytest.raises(ValueError, match="TRIDENT_TOKEN"):
        objects.cluster_objects("c3", "t", image="i", env={"TRIDENT_TOKEN": "x"})
    with pytest.raises(ValueError, match="quantity"):
        objects.cluster_objects("c3", "t", image="i", resources={"limits": {"memory": "lots"}})


def test_kube_cluster_creates_scales_retires_logs_and_deletes(fake_api, scheduler_behind_kubectl):
    fake, api = fake_api
    local, argv_file = scheduler_behind_kubectl
    security = Security(token=local.token)
    with KubeCluster(
        "demo",
        image="trident:test",
        n_workers=2,
        resources={"limits": {"cpu": "1", "memory": "1Gi"}},
        env={"EXTRA": "1"},
        security=security,
        port_forward_cluster_ip=True,
        api=api,
    ) as cluster:
        assert cluster.namespace == NS
        assert cluster.scheduler_address == local.scheduler_address
        assert json.loads(argv_file.read_text()) == [
            "port-forward",
            "--namespace",
            NS,
            "service/demo-scheduler",
            ":8786",
            ":8787",
        ]
        created = {(kind, name) for (ns, kind, name) in fake.objects if kind != "Pod"}
        assert created == {
            ("Secret", "demo-token"),
            ("Deployment", "demo-scheduler"),
            ("Service", "demo-scheduler"),
            ("Service", "demo-dashboard"),
            ("Deployment", "demo-worker"),
        }
        assert fake.objects[NS, "Secret", "demo-token"]["stringData"] == {"token": local.token}
        first = {h.pod for h in cluster.workers.values()}
        assert len(first) == 2
        assert first <= set(fake.pods(NS))

        cluster.scale(4)
        assert len(cluster.workers) == 4
        assert fake.objects[NS, "Deployment", "demo-worker"]["spec"]["replicas"] == 4

        # Scaling down keeps the oldest workers and removes exactly the pods of the others.
        cluster.scale(1)
        (kept,) = cluster.workers.values()
        assert kept.pod in first
        assert set(p for p in fake.pods(NS) if p.startswith("demo-worker")) == {kept.pod}
        patched = [b for m, p, _, b in fake.requests if m == "PATCH" and "/pods/" in p]
        assert len(patched) == 3
        assert all(b["metadata"]["annotations"][DELETION_COST] == "-2147483647" for b in patched)

        with Client(cluster) as client:
            assert client.submit(sum, [1, 2, 3]).result() == 6

        logs = cluster.get_logs()
        scheduler_pod = next(p for p in fake.pods(NS) if p.startswith("demo-scheduler"))
        assert logs == {
            "Cluster": "",
            "Scheduler": f"log of {scheduler_pod}\n",
            kept.pod: f"log of {kept.pod}\n",
        }
        assert cluster.dashboard_link.startswith("http://127.0.0.1:8787/")
    assert fake.objects == {}
    deleted = [(m, p.rsplit("/", 2)[-2:]) for m, p, _, _ in fake.requests if m == "DELETE"]
    assert deleted == [
        ("DELETE", ["deployments", "demo-worker"]),
        ("DELETE", ["services", "demo-dashboard"]),
        ("DELETE", ["services", "demo-scheduler"]),
        ("DELETE", ["deployments", "demo-scheduler"]),
        ("DELETE", ["secrets", "demo-token"]),
    ]
    # Start, scale up and down, logs and close used every permission of the shipped Role
    # (the stand-in refused anything else): it grants exactly what KubeCluster does.
    assert set(fake.seen) == role_permissions(ROLE)


def test_the_role_has_teeth_a_request_it_does_not_allow_is_forbidden():
    """Without ``get`` on ``pods/log`` the stand-in refuses the log request with 403,
    which `KubernetesAPI` passes on (only a missing object, 404, is not an error)."""
    narrower = [rule for rule in ROLE if rule["resources"] != ["pods/log"]]
    with FakeKubernetes(role=narrower) as fake:
        configuration = kubernetes.client.Configuration()
        configuration.host = fake.url
        with kubernetes.client.ApiClient(configuration) as api_client:
            api = KubernetesAPI(namespace=NS, api_client=api_client)
            for obj in objects.cluster_objects("c4", "tok", image="trident:dev", n_workers=1):
                api.create(obj)
            (pod,) = api.pods(objects.selector("c4", "worker"))
            with pytest.raises(kubernetes.client.ApiException) as info:
                api.pod_log(pod.name)
    assert info.value.status == 403
    assert fake.seen[-1] == ("", "pods/log", "get")
    # Reading a Secret back is not among KubeCluster's calls, so not in the Role either.
    assert ("", "secrets", "get") not in role_permissions(ROLE)


def test_adapt_decides_on_the_scheduler_and_patches_the_replicas(
    fake_api, scheduler_behind_kubectl
):
    fake, api = fake_api
    local, _ = scheduler_behind_kubectl
    with KubeCluster(
        "auto",
        n_workers=1,
        security=Security(token=local.token),
        port_forward_cluster_ip=True,
        api=api,
    ) as cluster:
        adaptive = cluster.adapt(minimum=3, maximum=3, interval=0.05)
        assert isinstance(adaptive, RemoteAdaptive)
        deadline = time.monotonic() + 20
        while len(cluster.workers) < 3:
            assert time.monotonic() < deadline, cluster.workers
            time.sleep(0.02)
        assert fake.objects[NS, "Deployment", "auto-worker"]["spec"]["replicas"] == 3
        cluster.scale(1)  # stops adapting
        assert cluster.adaptive is None
        assert len(cluster.workers) == 1
        assert fake.objects[NS, "Deployment", "auto-worker"]["spec"]["replicas"] == 1


def _leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for sub in exc.exceptions for leaf in _leaves(sub)]
    return [exc]


def test_without_kubectl_port_forwarding_is_refused_before_anything_is_created(
    fake_api, monkeypatch
):
    fake, api = fake_api
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(RuntimeError, match="kubectl"):
        KubeCluster("nokubectl", n_workers=1, port_forward_cluster_ip=True, api=api)
    assert fake.requests == []


def test_a_cluster_that_cannot_start_deletes_what_it_created(fake_api):
    fake, api = fake_api
    taken = objects.worker_deployment("dup", "someone-elses:1", 1, [], {}, 1, None)
    api.create(taken)
    with pytest.raises(BaseException) as info:  # noqa: PT011 (the API error, maybe in a group)
        KubeCluster("dup", n_workers=1, port_forward_cluster_ip=False, api=api)
    (error,) = _leaves(info.value)
    assert isinstance(error, kubernetes.client.ApiException)
    assert error.status == 409
    left = {(kind, name) for (_, kind, name) in fake.objects if kind != "Pod"}
    assert left == {("Deployment", "dup-worker")}
    assert (
        fake.objects[NS, "Deployment", "dup-worker"]["spec"]["template"]["spec"]["containers"][0][
            "image"
        ]
        == "someone-elses:1"
    )


def test_inside_a_cluster_the_scheduler_is_reached_by_its_service_name(fake_api):
    fake, api = fake_api
    with KubeCluster("inside", n_workers=0, port_forward_cluster_ip=False, api=api) as cluster:
        assert cluster.scheduler_address == f"tcp://inside-scheduler.{NS}:8786"
        assert cluster.dashboard_link.startswith(f"http://inside-scheduler.{NS}:8787/")
        assert cluster.workers == {}
    assert fake.objects == {}


async def test_an_asynchronous_kube_cluster_in_a_trio_program(fake_api):
    fake, api = fake_api
    with trio.fail_after(30):
        async with KubeCluster(
            "aio", n_workers=1, port_forward_cluster_ip=False, api=api, asynchronous=True
        ) as cluster:
            (first,) = cluster.workers.values()
            await cluster.scale(2)
            assert fake.objects[NS, "Deployment", "aio-worker"]["spec"]["replicas"] == 2
            pods = sorted(h.pod for h in cluster.workers.values())
            assert first.pod in pods
            logs = await cluster.get_logs(scheduler=False)
            assert logs == {"Cluster": "", **{pod: f"log of {pod}\n" for pod in pods}}
    assert fake.objects == {}
