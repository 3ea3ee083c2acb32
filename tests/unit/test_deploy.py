"""deploy/ is right the first time, though these machines cannot run containers: the compose
file against the Compose specification, the Kubernetes manifests against Kubernetes' schemas
(KEDA's ScaledObject against KEDA's models), every setting they pass exists, and the image
installs what pyproject.toml pins."""

from __future__ import annotations

import json
import re
import tomllib
from importlib import metadata
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from cloudcoil.models.keda.v1alpha1 import ScaledObject
from jsonschema.validators import validator_for

from ingest_worker.settings import Settings

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
MANIFESTS = sorted((DEPLOY / "k8s").glob("*.yaml"))


def resources() -> list[dict[str, Any]]:
    return [doc for path in MANIFESTS for doc in yaml.safe_load_all(path.read_text()) if doc]


def by_kind(kind: str) -> list[dict[str, Any]]:
    return [r for r in resources() if r["kind"] == kind]


def test_the_compose_file_follows_the_compose_specification() -> None:
    # The Compose specification's schema as check-jsonschema vendors it (its CLI needs a
    # newer click than faust-streaming allows, so the schema is used directly).
    schema_file = metadata.distribution("check-jsonschema").locate_file(
        "check_jsonschema/builtin_schemas/vendor/compose-spec.json"
    )
    schema = json.loads(Path(str(schema_file)).read_text())
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    errors = [e.message for e in validator_for(schema)(schema).iter_errors(compose)]
    assert not errors, errors
    assert {"kafka", "postgres", "migrate", "worker", "watcher", "api"} <= compose[
        "services"
    ].keys()


@pytest.mark.parametrize(
    "resource", resources(), ids=lambda r: f"{r['kind']}/{r['metadata']['name']}"
)
def test_kubernetes_manifests_follow_their_schemas(resource: dict[str, Any]) -> None:
    if resource["apiVersion"].startswith("keda.sh/"):
        model = ScaledObject.model_validate(resource)
        # The models ignore unknown fields: a misspelt one would vanish from the dump.
        assert model.model_dump(by_alias=True, exclude_unset=True) == resource
        return
    kubernetes_validate.validate(resource, kubernetes_validate.latest_version(), strict=True)


def settings_passed() -> dict[str, str]:
    """Every FRESHINDEX_*/DATABASE_URL variable the deploy files set, with where."""
    found: dict[str, str] = {}
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    for name, service in compose["services"].items():
        for key in service.get("environment", {}):
            found[key] = f"compose service {name}"
    for resource in by_kind("ConfigMap") + by_kind("Secret"):
        for key in {**resource.get("data", {}), **resource.get("stringData", {})}:
            found[key] = f"{resource['kind']} {resource['metadata']['name']}"
    for key in re.findall(r"\b(FRESHINDEX_[A-Z_]+)=", (DEPLOY / "Dockerfile").read_text()):
        found[key] = "Dockerfile"
    return {k: v for k, v in found.items() if k.startswith("FRESHINDEX_") or k == "DATABASE_URL"}


def test_every_setting_the_deploy_files_pass_exists() -> None:
    known = {f"FRESHINDEX_{name.upper()}" for name in Settings.model_fields} | {"DATABASE_URL"}
    passed = settings_passed()
    assert len(passed) >= 8
    unknown = {k: where for k, where in passed.items() if k not in known}
    assert not unknown, f"settings that do not exist: {unknown}"


def test_the_image_installs_what_pyproject_pins() -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    project = tomllib.loads((DEPLOY.parent / "pyproject.toml").read_text())["project"]
    pins = dict(_pin(dep) for dep in project["dependencies"] if "==" in dep)
    assert pins["torch"] == "2.13.0"
    for name, version in re.findall(r"\b([A-Za-z0-9_.\-]+)==([0-9][^\s\"']*)", dockerfile):
        assert pins.get(name.lower()) == version, f"the image pins {name}=={version}"
    assert "uv pip install" in dockerfile and "-e ." in dockerfile  # as `make install` does
    assert re.search(r"^USER 10001$", dockerfile, re.M), "the image must not run as root"
    assert "HF_HUB_OFFLINE=1" in dockerfile  # the model ships in the image


def test_workers_never_outnumber_partitions_and_shut_down_in_time() -> None:
    partitions = int(by_kind("ConfigMap")[0]["data"]["FRESHINDEX_KAFKA_PARTITIONS"])
    (scaler,) = by_kind("ScaledObject")
    assert scaler["spec"]["maxReplicaCount"] <= partitions
    assert scaler["spec"]["triggers"][0]["metadata"]["allowIdleConsumers"] == "false"
    worker = next(d for d in by_kind("Deployment") if d["metadata"]["name"] == "freshindex-worker")
    assert worker["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] >= 60
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    assert compose["x-freshindex"]["stop_grace_period"] == "60s"


def _pin(dependency: str) -> tuple[str, str]:
    """`name[extras]==version` → (name, version)."""
    match = re.fullmatch(r"([A-Za-z0-9_.\-]+)(?:\[.*\])?==(\S+)", dependency)
    assert match is not None, dependency
    return match.group(1), match.group(2)
