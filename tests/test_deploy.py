"""deploy/kubernetes.yaml parses and agrees with the image and the settings (no cluster here)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from dockerfile import final_stage, image_env, instruction

from runservice.config import Settings, known_variables

ROOT = Path(__file__).resolve().parent.parent


def manifests() -> dict[str, Any]:
    docs = list(yaml.safe_load_all((ROOT / "deploy" / "kubernetes.yaml").read_text()))
    return {doc["kind"]: doc for doc in docs if doc}


def test_one_replica_statefulset_with_grpc_probes_and_volume() -> None:
    docs = manifests()
    sts = docs["StatefulSet"]
    assert sts["spec"]["replicas"] == 1
    pod = sts["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    env = {item["name"]: item["value"] for item in container["env"]}
    assert set(env) <= known_variables()  # no setting name the server would warn about
    port = int(env["RUNSERVICE_ADDRESS"].rsplit(":", 1)[1])
    (named,) = container["ports"]
    assert named == {"name": "grpc", "containerPort": port}
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert container[probe]["grpc"]["port"] == port
    assert container["readinessProbe"]["grpc"]["service"] == "runservice.v1.RunService"
    # Kubernetes waits at least the drain delay plus the grace before SIGKILL.
    drain, grace = float(env["RUNSERVICE_DRAIN_DELAY"]), float(env["RUNSERVICE_SHUTDOWN_GRACE"])
    assert pod["terminationGracePeriodSeconds"] > drain + grace
    # The data volume is mounted where the settings put the database.
    (claim,) = sts["spec"]["volumeClaimTemplates"]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert mounts[claim["metadata"]["name"]] == env["RUNSERVICE_DATA_DIR"]
    # The same user, port and command as the image.
    stage = final_stage(ROOT / "Dockerfile")
    assert str(pod["securityContext"]["runAsUser"]) == instruction(stage, "USER").split(":")[0]
    assert str(port) in instruction(stage, "EXPOSE").split()
    assert container["args"] == json.loads(instruction(stage, "CMD"))
    assert env["RUNSERVICE_DATA_DIR"] == image_env(stage)["RUNSERVICE_DATA_DIR"]
    service = docs["Service"]
    assert (
        service["spec"]["ports"][0]["name"] == "grpc" and service["spec"]["ports"][0]["targetPort"] == "grpc"
    )


def test_compose_file_matches_the_image() -> None:
    compose = yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text())
    (service,) = compose["services"].values()
    env = service["environment"]
    assert set(env) <= known_variables()
    port = env["RUNSERVICE_ADDRESS"].rsplit(":", 1)[1]
    assert service["ports"] == [f"{port}:{port}"]
    assert service["volumes"][0].split(":")[1] == env["RUNSERVICE_DATA_DIR"]
    stage = final_stage(ROOT / "Dockerfile")
    assert service["command"] == json.loads(instruction(stage, "CMD"))
    assert service["healthcheck"]["test"] == [
        "CMD",
        *json.loads(instruction(stage, "HEALTHCHECK").split(" CMD ", 1)[1]),
    ]
    grace = float(env["RUNSERVICE_DRAIN_DELAY"]) + float(env["RUNSERVICE_SHUTDOWN_GRACE"])
    assert float(service["stop_grace_period"].rstrip("s")) > grace
    assert service["restart"] == "unless-stopped"  # an exit 1 asks for a restart (README "Stopping")


def test_several_replicas_on_postgresql_with_rolling_updates() -> None:
    docs = {
        doc["kind"]: doc
        for doc in yaml.safe_load_all((ROOT / "deploy" / "kubernetes-postgres.yaml").read_text())
        if doc
    }
    deployment = docs["Deployment"]
    assert deployment["spec"]["replicas"] > 1
    assert deployment["spec"]["strategy"]["type"] == "RollingUpdate"
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    names = {item["name"] for item in container["env"]}
    assert names <= known_variables()
    assert "RUNSERVICE_DATABASE_URL" in names and "RUNSERVICE_LEASE_SECONDS" in names
    (replica_name,) = (item for item in container["env"] if item["name"] == "RUNSERVICE_REPLICA_NAME")
    assert replica_name["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}  # unique per live pod
    env = {item["name"]: item["value"] for item in container["env"] if "value" in item}
    port = int(env["RUNSERVICE_ADDRESS"].rsplit(":", 1)[1])
    assert container["ports"] == [{"name": "grpc", "containerPort": port}]
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert container[probe]["grpc"]["port"] == port
    drain, grace = float(env["RUNSERVICE_DRAIN_DELAY"]), float(env["RUNSERVICE_SHUTDOWN_GRACE"])
    assert pod["terminationGracePeriodSeconds"] > drain + grace
    assert docs["Service"]["spec"]["ports"][0]["name"] == "grpc"


def test_compose_runs_two_replicas_on_one_postgresql() -> None:
    compose = yaml.safe_load((ROOT / "deploy" / "compose-postgres.yaml").read_text())
    services = compose["services"]
    replicas = [s for name, s in services.items() if name.startswith("runservice")]
    assert len(replicas) == 2 and "postgres" in services
    urls = {replica["environment"]["RUNSERVICE_DATABASE_URL"] for replica in replicas}
    assert len(urls) == 1 and urls.pop().startswith("postgresql://")
    for replica in replicas:
        assert set(replica["environment"]) <= known_variables()
        assert replica["depends_on"]["postgres"]["condition"] == "service_healthy"
        assert replica["restart"] == "unless-stopped"


def _environments(node: Any) -> list[dict[str, str]]:
    """Every container's settings in a parsed manifest: Kubernetes `env` lists (plain values)
    and compose `environment` maps."""
    found: list[dict[str, str]] = []
    if isinstance(node, dict):
        if isinstance(node.get("env"), list):
            found.append({item["name"]: item["value"] for item in node["env"] if "value" in item})
        if isinstance(node.get("environment"), dict) and "RUNSERVICE_ADDRESS" in node["environment"]:
            found.append({name: str(value) for name, value in node["environment"].items()})
        for child in node.values():
            found += _environments(child)
    elif isinstance(node, list):
        for child in node:
            found += _environments(child)
    return found


@pytest.mark.parametrize(
    "name", ["kubernetes.yaml", "kubernetes-postgres.yaml", "compose.yaml", "compose-postgres.yaml"]
)
def test_every_setting_in_the_manifests_is_valid(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The values load as the server would load them (a retention of `30 d` would stop it)."""
    docs = list(yaml.safe_load_all((ROOT / "deploy" / name).read_text()))
    environments = _environments(docs)
    assert environments
    for env in environments:
        for variable in known_variables():
            monkeypatch.delenv(variable, raising=False)
        for variable, value in env.items():
            monkeypatch.setenv(variable, value)
        settings = Settings.load()
        assert settings.retention == 30 * 86400.0
