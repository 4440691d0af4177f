"""The Kubernetes manifests (deploy/kubernetes) and the Helm chart (deploy/helm/trident)
are valid Kubernetes objects, agree with each other, and keep the token out of argv.

The chart is rendered by `tests.deploy.helm_subset` (``helm`` itself is not installable
from a package registry here; see that module for the subset it interprets) and every
object is validated offline against the Kubernetes OpenAPI schemas that the
``kubernetes-validate`` package ships, strictly (unknown fields are errors), for the
oldest and the newest Kubernetes versions named below.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from .helm_subset import RequiredValueMissing, UnsupportedTemplate, render, render_chart

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "trident"
MANIFESTS = ROOT / "deploy" / "kubernetes"
#: Kubernetes versions the objects are validated against: a release still in wide use
#: and the newest one the schema package ships.
KUBERNETES_VERSIONS = ["1.29.0", kubernetes_validate.latest_version()]
TOKEN = "s3cret-token"


def _documents(text: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


def chart_objects(values: dict[str, Any] | None = None, release: str = "trident") -> list[dict]:
    rendered = render_chart(CHART, {"token": TOKEN, **(values or {})}, release=release)
    return [
        doc for name, text in rendered.items() if name.endswith(".yaml") for doc in _documents(text)
    ]


def plain_objects() -> list[dict]:
    return [
        doc for path in sorted(MANIFESTS.glob("*.yaml")) for doc in _documents(path.read_text())
    ]


def _by_kind_name(objects: list[dict]) -> dict[tuple[str, str], dict]:
    return {(o["kind"], o["metadata"]["name"]): o for o in objects}


def _containers(objects: list[dict]) -> list[dict]:
    return [
        c
        for o in objects
        if o["kind"] == "Deployment"
        for c in o["spec"]["template"]["spec"]["containers"]
    ]


CHART_VARIANTS = {
    "defaults": {},
    "tls": {"tls": {"secretName": "trident-tls"}},
    "worker-env": {
        "worker": {"env": [{"name": "OMP_NUM_THREADS", "value": "1"}], "replicas": 5},
        "scheduler": {"serviceType": "LoadBalancer"},
        "dashboard": {"serviceType": "NodePort"},
    },
    "rbac": {"rbac": {"create": True}},
}
#: The objects of ``rbac.create`` (for a pod that runs KubeCluster).
RBAC_OBJECTS = [
    ("Role", "trident-kubecluster"),
    ("RoleBinding", "trident-kubecluster"),
    ("ServiceAccount", "trident-kubecluster"),
]


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("variant", sorted(CHART_VARIANTS))
def test_the_rendered_chart_is_valid_kubernetes(variant, version):
    objects = chart_objects(CHART_VARIANTS[variant])
    expected = [
        ("Deployment", "trident-scheduler"),
        ("Deployment", "trident-worker"),
        ("Secret", "trident-token"),
        ("Service", "trident-dashboard"),
        ("Service", "trident-scheduler"),
    ]
    if variant == "rbac":
        expected = sorted(expected + RBAC_OBJECTS)
    assert sorted(_by_kind_name(objects)) == expected
    for obj in objects:
        kubernetes_validate.validate(obj, version, strict=True)


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_the_plain_manifests_are_valid_kubernetes(version):
    objects = plain_objects()
    assert len(objects) == 7
    for obj in objects:
        kubernetes_validate.validate(obj, version, strict=True)


def test_an_invalid_object_is_refused_by_the_validation():
    """The validation above has teeth: a misspelt field fails it."""
    (worker,) = [o for o in plain_objects() if o["metadata"]["name"] == "trident-worker"]
    worker["spec"]["replica"] = worker["spec"].pop("replicas")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(worker, KUBERNETES_VERSIONS[-1], strict=True)


def test_the_plain_manifests_are_the_chart_with_its_defaults():
    """deploy/kubernetes is what ``helm template trident --set rbac.create=true`` gives
    (rbac.yaml: the chart's ``rbac.create`` objects), less the Secret (which kubectl
    creates with a token of your own): the two cannot drift apart."""
    chart = _by_kind_name(chart_objects(CHART_VARIANTS["rbac"]))
    del chart[("Secret", "trident-token")]
    assert _by_kind_name(plain_objects()) == chart
    rbac = [doc for doc in _documents((MANIFESTS / "rbac.yaml").read_text())]
    assert sorted(_by_kind_name(rbac)) == RBAC_OBJECTS


def test_rbac_objects_come_only_when_asked_and_bind_the_role_to_the_account():
    assert not {o["kind"] for o in chart_objects()} & {"Role", "RoleBinding", "ServiceAccount"}
    objects = chart_objects(CHART_VARIANTS["rbac"], release="analytics")
    by_kind = {o["kind"]: o for o in objects}
    binding = by_kind["RoleBinding"]
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": by_kind["Role"]["metadata"]["name"],
    }
    assert binding["subjects"] == [
        {
            "kind": "ServiceAccount",
            "name": by_kind["ServiceAccount"]["metadata"]["name"],
            "namespace": "default",
        }
    ]
    assert by_kind["ServiceAccount"]["metadata"]["name"] == "analytics-kubecluster"
    # Least privilege: no wildcard, and Secrets can be made and removed but not read.
    rules = by_kind["Role"]["rules"]
    assert not any("*" in value for rule in rules for value in rule.values())
    secret_verbs = {v for rule in rules if "secrets" in rule["resources"] for v in rule["verbs"]}
    assert secret_verbs == {"create", "delete"}
    # The scheduler and worker pods run without the account (they need no API access).
    for obj in objects:
        if obj["kind"] == "Deployment":
            assert "serviceAccountName" not in obj["spec"]["template"]["spec"]


def test_the_release_name_names_every_object_and_the_scheduler_address():
    objects = chart_objects(release="analytics")
    assert {o["metadata"]["name"] for o in objects} == {
        "analytics-token",
        "analytics-scheduler",
        "analytics-dashboard",
        "analytics-worker",
    }
    (worker,) = [c for c in _containers(objects) if c["name"] == "worker"]
    assert worker["args"][1] == "tcp://analytics-scheduler:8786"


@pytest.mark.parametrize("source", ["chart", "chart-tls", "plain"])
def test_the_token_comes_from_the_secret_and_never_from_argv(source):
    if source == "plain":
        objects = plain_objects()
    else:
        objects = chart_objects(CHART_VARIANTS["tls"] if source == "chart-tls" else {})
    for container in _containers(objects):
        assert not any("token" in arg.lower() for arg in container["args"]), container["args"]
        (env,) = [e for e in container["env"] if e["name"] == "TRIDENT_TOKEN"]
        assert env["valueFrom"]["secretKeyRef"] == {"name": "trident-token", "key": "token"}
    if source != "plain":
        (secret,) = [o for o in objects if o["kind"] == "Secret"]
        assert secret["stringData"] == {"token": TOKEN}


def test_services_select_the_scheduler_pod_and_deployments_their_own_pods():
    objects = chart_objects()
    by_name = _by_kind_name(objects)
    scheduler_labels = by_name["Deployment", "trident-scheduler"]["spec"]["template"]["metadata"][
        "labels"
    ]
    for name in ("trident-scheduler", "trident-dashboard"):
        selector = by_name["Service", name]["spec"]["selector"]
        assert selector.items() <= scheduler_labels.items()
    for obj in objects:
        if obj["kind"] == "Deployment":
            labels = obj["spec"]["template"]["metadata"]["labels"]
            assert obj["spec"]["selector"]["matchLabels"].items() <= labels.items()
    worker_labels = by_name["Deployment", "trident-worker"]["spec"]["template"]["metadata"][
        "labels"
    ]
    assert (
        not by_name["Service", "trident-scheduler"]["spec"]["selector"].items()
        <= worker_labels.items()
    )


def test_worker_settings_reach_the_worker_command():
    values = {"worker": {"nthreads": 7, "memoryLimit": "9GiB", "port": 9000, "replicas": 3}}
    by_name = _by_kind_name(chart_objects(values))
    deployment = by_name["Deployment", "trident-worker"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert deployment["spec"]["replicas"] == 3
    assert "--nthreads=7" in container["args"]
    assert "--memory-limit=9GiB" in container["args"]
    assert "--contact-address=tcp://$(POD_IP):9000" in container["args"]
    assert container["ports"] == [{"name": "worker", "containerPort": 9000}]


def test_tls_mounts_the_secret_and_uses_tls_addresses():
    by_name = _by_kind_name(chart_objects(CHART_VARIANTS["tls"]))
    for name in ("trident-scheduler", "trident-worker"):
        spec = by_name["Deployment", name]["spec"]["template"]["spec"]
        (container,) = spec["containers"]
        assert "--tls-ca=/etc/trident/tls/ca.pem" in container["args"]
        assert "--no-tls" not in container["args"]
        volumes = {v["name"]: v for v in spec["volumes"]}
        assert volumes["tls"]["secret"]["secretName"] == "trident-tls"
    (worker,) = by_name["Deployment", "trident-worker"]["spec"]["template"]["spec"]["containers"]
    assert worker["args"][1] == "tls://trident-scheduler:8786"


def test_the_chart_refuses_to_render_without_a_token():
    with pytest.raises(RequiredValueMissing, match="token"):
        render_chart(CHART, {})


def test_the_renderer_follows_go_template_trimming_and_refuses_what_it_does_not_know():
    scope = {"Values": {"on": True, "off": "", "n": 3, "m": {"a": 1}}}
    template = "a:\n  {{- if .Values.on }}\n  b: {{ .Values.n | quote }}\n  {{- end }}\n"
    assert render(template, scope) == 'a:\n  b: "3"\n'
    template = "{{ if not .Values.off }}x{{ else }}y{{ end }}{{- toYaml .Values.m | nindent 2 }}"
    assert render(template, scope) == "x\n  a: 1"
    with pytest.raises(UnsupportedTemplate):
        render("{{ .Values.n | upper }}", scope)
    with pytest.raises(KeyError):
        render("{{ .Values.missing }}", scope)
