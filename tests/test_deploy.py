"""deploy/kubernetes.yaml parses and agrees with the image and the settings (no cluster here)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from dockerfile import final_stage, image_env, instruction

from runservice.config import known_variables

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
