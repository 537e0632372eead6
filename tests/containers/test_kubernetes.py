"""deploy/kubernetes/ validated without a cluster: the Zero to JupyterHub values against the chart's
own JSON schema (a copy in deploy/kubernetes/z2jh-schema/), every manifest against the Kubernetes
API's models (the ``kubernetes`` Python client's classes), and the two against each other (each
service the hub registers has its Deployment, Service, port and token). Nothing here is run on
Kubernetes: docs/deployment.md says what was validated and what was not."""
from __future__ import annotations

import copy
from pathlib import Path

import jsonschema
import pytest
import yaml

K8S = Path(__file__).resolve().parents[2] / "deploy" / "kubernetes"
SERVICES = ["courses", "feedback", "recommender", "analytics", "notifications"]


def overlay_schema() -> dict:
    """The chart's schema for a values file that overlays the chart's defaults: the ``required`` lists
    go (the chart's own values.yaml supplies those keys), except inside ``oneOf``/``anyOf`` branches,
    where they tell the branches apart. Every other rule stays, ``additionalProperties: false`` first
    of all: a misspelt key fails."""
    schema = yaml.safe_load((K8S / "z2jh-schema" / "values.schema.yaml").read_text())

    def strip(node, in_branch=False):
        if isinstance(node, dict):
            if not in_branch:
                node.pop("required", None)
            for key, value in node.items():
                if key in ("oneOf", "anyOf") and isinstance(value, list):
                    for branch in value:
                        strip(branch, in_branch=True)
                else:
                    strip(value)
        elif isinstance(node, list):
            for item in node:
                strip(item)
        return node

    return strip(schema)


@pytest.fixture(scope="module")
def values():
    return yaml.safe_load((K8S / "values.yaml").read_text())


@pytest.fixture(scope="module")
def manifests():
    return [d for d in yaml.safe_load_all((K8S / "learnhub.yaml").read_text()) if d]


def test_values_match_the_charts_schema(values):
    jsonschema.Draft7Validator(overlay_schema()).validate(values)


@pytest.mark.parametrize("bad", [
    {"hub": {"serivces": {}}},                                  # a misspelt key
    {"singleuser": {"memory": {"limit": ["2G"]}}},              # a wrong type
    {"hub": {"extraFiles": {"x": {"mountPath": "/x", "stringData": "a", "data": {"b": 1}}}}},  # two contents
])
def test_the_schema_check_catches_mistakes(values, bad):
    broken = copy.deepcopy(values)
    for section, part in bad.items():
        broken.setdefault(section, {}).update(part)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft7Validator(overlay_schema()).validate(broken)


def _model(kind: str, api_version: str) -> str:
    """The client's model class of a kind: apps/v1 Deployment is V1Deployment."""
    return f"{api_version.split('/')[-1].capitalize()}{kind}"


def test_manifests_are_valid_kubernetes_objects(manifests):
    """Each document deserialises into its model of the Kubernetes API (required fields checked by
    the client) and serialises back to the same document: a field the API does not have would be
    dropped on the way and show up as a difference."""
    from kubernetes.client import ApiClient

    client = ApiClient()
    kinds = set()
    for doc in manifests:
        model = _model(doc["kind"], doc["apiVersion"])
        obj = client._ApiClient__deserialize(copy.deepcopy(doc), model)
        back = client.sanitize_for_serialization(obj)
        assert back == doc, f"{doc['kind']} {doc['metadata']['name']}: not all fields are the API's"
        kinds.add((doc["kind"], doc["metadata"]["name"]))
    for name in SERVICES:
        assert ("Deployment", f"learnhub-{name}") in kinds and ("Service", f"learnhub-{name}") in kinds
    assert {("Deployment", "learnhub-worker"), ("StatefulSet", "learnhub-postgres"),
            ("Job", "learnhub-migrate")} <= kinds


def test_a_wrong_field_is_caught(manifests):
    from kubernetes.client import ApiClient

    doc = copy.deepcopy(next(d for d in manifests if d["kind"] == "Deployment"))
    doc["spec"]["template"]["spec"]["containers"][0]["resource"] = {"limits": {}}  # not "resources"
    obj = ApiClient()._ApiClient__deserialize(copy.deepcopy(doc), "V1Deployment")
    assert ApiClient().sanitize_for_serialization(obj) != doc


def test_deployments_have_probes_and_requests(manifests):
    for doc in manifests:
        if doc["kind"] not in ("Deployment", "StatefulSet"):
            continue
        for container in doc["spec"]["template"]["spec"]["containers"]:
            assert container.get("readinessProbe") and container.get("livenessProbe"), doc["metadata"]["name"]
            assert container["resources"]["requests"], doc["metadata"]["name"]


def test_registered_services_match_their_deployments(values, manifests):
    """Every service the hub registers is served: its URL names a Service and port of learnhub.yaml,
    the Deployment listens there, reads the token the chart makes for it, and answers its probes on
    its own prefix; nothing is left unregistered."""
    registered = values["hub"]["services"]
    assert sorted(registered) == sorted(SERVICES)
    by_name = {(d["kind"], d["metadata"]["name"]): d for d in manifests}
    for name, spec in registered.items():
        host_port = spec["url"].removeprefix("http://")
        host, port = host_port.split(":")
        service = by_name[("Service", host)]
        assert service["spec"]["ports"][0]["port"] == int(port)
        deployment = by_name[("Deployment", host)]
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        env = {e["name"]: e for e in container["env"]}
        assert env["JUPYTERHUB_SERVICE_NAME"]["value"] == name
        assert env["JUPYTERHUB_SERVICE_URL"]["value"].endswith(f":{port}")
        assert env["JUPYTERHUB_API_TOKEN"]["valueFrom"]["secretKeyRef"] == {
            "name": "hub", "key": f"hub.services.{name}.apiToken"}
        assert container["readinessProbe"]["httpGet"]["path"] == f"/services/{name}/api/health"
        assert container["command"] == ["learnhub", "service", name]
        # the service's selector reaches this Deployment's pods
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert service["spec"]["selector"].items() <= labels.items()


def test_hub_extra_config_runs(values, tmp_path, monkeypatch):
    """The hub configuration the values file mounts (hub.extraFiles) runs against learnhub as
    installed and gives the hub learnhub's scopes and roles, one role per registered service."""
    from traitlets.config import Config

    monkeypatch.setenv("LEARNHUB_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("LEARNHUB_DB_URL", f"sqlite:///{tmp_path / 'learnhub.sqlite'}")
    source = values["hub"]["extraFiles"]["learnhub-hub-config"]["stringData"]
    namespace: dict = {}
    exec(compile(source, "learnhub_kubernetes.py", "exec"), namespace)
    c = Config()
    namespace["configure_learnhub"](c)
    role_names = {r["name"] for r in c.JupyterHub.load_roles}
    assert {f"learnhub-service-{name}" for name in SERVICES} <= role_names
    assert any(scope.startswith("custom:learnhub:") for scope in c.JupyterHub.custom_scopes)
    assert callable(c.Spawner.pre_spawn_hook)
    # the inline extraConfig is valid Python
    compile(values["hub"]["extraConfig"]["learnhub"], "extraConfig", "exec")
