"""deploy/compose: the .env generator, `docker compose config`, and the wiring between files."""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.stack import COMPOSE

SECRETS = (
    "POSTGRES_PASSWORD",
    "MQTT_INGEST_PASSWORD",
    "BK_API_SECRET_KEY",
    "GRAFANA_ADMIN_PASSWORD",
    "MINIO_ROOT_PASSWORD",
    "S3_SECRET_KEY",
)


@pytest.fixture
def district(tmp_path: Path) -> Path:
    """A copy of deploy/compose with .env generated, as an operator has it after step 1."""
    copy = tmp_path / "compose"
    shutil.copytree(COMPOSE, copy)
    done = subprocess.run(["bash", str(copy / "gen-env.sh")], capture_output=True, text=True,
                          timeout=30, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return copy


def _env(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text().splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            out[key] = value
    return out


def _compose_tool() -> list[str] | None:
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True, check=False)
        if probe.returncode == 0:
            return ["docker", "compose"]
    return None


def test_gen_env_writes_fresh_private_secrets_once(district: Path) -> None:
    env_file = district / ".env"
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    env = _env(env_file)
    values = [env[k] for k in SECRETS]
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{40,}", v) for v in values)
    assert len(set(values)) == len(values)
    assert env["COMPOSE_PROJECT_NAME"] == "brightkitchen"
    again = subprocess.run(["bash", str(district / "gen-env.sh")], capture_output=True,
                           text=True, timeout=30, check=False)  # fmt: skip
    assert again.returncode == 1
    assert "exists" in again.stderr
    assert _env(env_file) == env  # untouched: the running database keeps its password


@pytest.mark.skipif(_compose_tool() is None, reason="no docker compose client (system-deps.sh)")
def test_docker_compose_config_validates(district: Path) -> None:
    tool = _compose_tool()
    assert tool is not None
    no_engine = {**os.environ, "DOCKER_HOST": "unix:///nonexistent"}  # config needs none
    done = subprocess.run([*tool, "config"], cwd=district, capture_output=True, text=True,
                          timeout=60, check=False, env=no_engine)  # fmt: skip
    assert done.returncode == 0, done.stderr
    resolved = yaml.safe_load(done.stdout)
    env = _env(district / ".env")
    ingest_env = resolved["services"]["ingest"]["environment"]
    assert env["MQTT_INGEST_PASSWORD"] in ingest_env["BK_MQTT_URL"]
    assert env["POSTGRES_PASSWORD"] in ingest_env["BK_DATABASE_URL"]
    assert not re.search(r"(?<!\$)\$\{", done.stdout)  # every variable came from .env


def _compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((COMPOSE / "docker-compose.yml").read_text())
    return data


def test_every_service_pinned_persistent_and_mounted_from_existing_files(district: Path) -> None:
    services = _compose()["services"]
    assert {"db", "mosquitto", "mqtt-auth", "migrate", "ingest", "api", "workers", "backup",
            "prometheus", "grafana"} <= set(services)  # fmt: skip
    for name, svc in services.items():
        image = svc["image"]
        assert re.search(r":-[^}]+:[\w.-]+}$", image), f"{name}: image without a pinned tag"
        assert "latest" not in image
        for volume in svc.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (district / source).exists(), f"{name}: {source} missing"
    assert "mosquitto-data:/mosquitto/data" in services["mosquitto"]["volumes"]
    assert "db-data:/var/lib/postgresql/data" in services["db"]["volumes"]
    assert "timescaledb" in services["db"]["image"]


def test_prometheus_targets_are_the_services_metrics_ports() -> None:
    services = _compose()["services"]
    prom = yaml.safe_load((COMPOSE / "prometheus/prometheus.yml").read_text())
    targets = {
        job["job_name"]: t
        for job in prom["scrape_configs"]
        for static in job.get("static_configs", [])
        for t in static["targets"]
    }
    assert (
        targets["ingest"] == f"ingest:{services['ingest']['environment']['BK_INGEST_METRICS_PORT']}"
    )
    assert (
        targets["workers"]
        == f"workers:{services['workers']['environment']['BK_API_WORKER_METRICS_PORT']}"
    )
    assert (
        targets["api"]
        == "api:" + services["api"]["command"][services["api"]["command"].index("--port") + 1]
    )
    mounted = {v.split(":")[1] for v in services["prometheus"]["volumes"]}
    assert "/etc/prometheus/rules" in mounted
    assert prom["rule_files"] == ["/etc/prometheus/rules/*.yml"]


@pytest.mark.skipif(_compose_tool() is None, reason="no docker compose client (system-deps.sh)")
def test_evidence_bucket_profile_wires_minio_into_api_and_workers(district: Path) -> None:
    """With COMPOSE_PROFILES=s3 and EVIDENCE_STORE=s3 the api and workers use the private
    MinIO bucket that minio-init creates with its own account; without, it is not started."""
    tool = _compose_tool()
    assert tool is not None
    no_engine = {**os.environ, "DOCKER_HOST": "unix:///nonexistent"}

    def config(extra: str) -> dict[str, Any]:
        env_file = district / ".env"
        base = env_file.read_text()
        env_file.write_text(base + extra)
        try:
            done = subprocess.run([*tool, "config"], cwd=district, capture_output=True,
                                  text=True, timeout=60, check=False, env=no_engine)  # fmt: skip
        finally:
            env_file.write_text(base)
        assert done.returncode == 0, done.stderr
        resolved: dict[str, Any] = yaml.safe_load(done.stdout)
        return resolved

    plain = config("")
    for name in ("minio", "minio-init"):  # started only with the s3 profile
        assert plain["services"][name]["profiles"] == ["s3"]
    assert plain["services"]["api"]["environment"]["BK_API_EVIDENCE_STORE"] == "disk"
    s3 = config("COMPOSE_PROFILES=s3\nEVIDENCE_STORE=s3\n")
    services = s3["services"]
    assert {"minio", "minio-init"} <= set(services)
    env = _env(district / ".env")
    for name in ("api", "workers"):
        svc_env = services[name]["environment"]
        assert svc_env["BK_API_EVIDENCE_STORE"] == "s3"
        assert svc_env["BK_API_S3_ENDPOINT"] == "http://minio:9000"
        assert svc_env["BK_API_S3_BUCKET"] == env["S3_BUCKET"]
        assert svc_env["BK_API_S3_ACCESS_KEY"] == env["S3_ACCESS_KEY"]
        assert svc_env["BK_API_S3_SECRET_KEY"] == env["S3_SECRET_KEY"]
        assert env["MINIO_ROOT_PASSWORD"] not in svc_env.values()  # not the root account
    init = services["minio-init"]
    assert init["environment"]["S3_ACCESS_KEY"] == env["S3_ACCESS_KEY"]
    assert "127.0.0.1:" in str(services["minio"].get("ports"))  # console not on the LAN
    script = (district / "minio/init.sh").read_text()
    assert "mc anonymous set none" in script
    policy = json.loads((district / "minio/policy.json").read_text())
    actions = {a for st in policy["Statement"] for a in st["Action"]}
    assert actions == {"s3:GetObject", "s3:PutObject", "s3:ListBucket", "s3:GetBucketLocation"}
    resources = {r for st in policy["Statement"] for r in st["Resource"]}
    assert resources == {"arn:aws:s3:::BUCKET", "arn:aws:s3:::BUCKET/*"}
