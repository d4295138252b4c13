"""deploy/k8s: both overlays render (our kustomize subset, checked against kubectl where
present), validate against the Kubernetes schemas, and are wired together consistently."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]
import psycopg
import pytest
import yaml

from bkcommon.sitefile import parse_site_file
from brightkitchen.kustomize import KustomizeError, main, render, strategic_merge
from brightkitchen.mqtt_accounts import issue_account, revoke_account
from brightkitchen.mqtt_auth import AccountKind
from brightkitchen.registry import sync_registry
from tests.deploy.test_district import SITE
from tests.support.services import REPO

K8S = REPO / "deploy/k8s"
OVERLAYS = ["district", "province"]
K8S_VERSION = "1.30.0"  # the oldest Kubernetes the manifests promise to run on
Resource = dict[str, Any]


def _by_key(resources: list[Resource]) -> dict[tuple[str, str], Resource]:
    return {(r["kind"], r["metadata"]["name"]): r for r in resources}


def _pod_spec(res: Resource) -> dict[str, Any] | None:
    template = (res.get("spec") or {}).get("template")
    return template.get("spec") if isinstance(template, dict) else None


@pytest.fixture(scope="module", params=OVERLAYS)
def overlay(request: pytest.FixtureRequest) -> tuple[str, list[Resource]]:
    return request.param, render(K8S / "overlays" / request.param)


def test_builtin_kinds_validate_against_the_kubernetes_schemas(
    overlay: tuple[str, list[Resource]],
) -> None:
    _, resources = overlay
    checked = 0
    for res in resources:
        if "." in res["apiVersion"].split("/")[0] and res["kind"] not in {
            "HorizontalPodAutoscaler", "PodDisruptionBudget", "Ingress",
        }:  # fmt: skip
            continue  # custom resources: structural checks below
        kubernetes_validate.validate(res, K8S_VERSION, strict=True)
        checked += 1
    assert checked >= 15


def test_custom_resources_are_structurally_complete(overlay: tuple[str, list[Resource]]) -> None:
    name, resources = overlay
    objs = _by_key(resources)
    cluster = objs[("Cluster", "brightkitchen-db")]
    assert cluster["apiVersion"] == "postgresql.cnpg.io/v1"
    spec = cluster["spec"]
    assert isinstance(spec["instances"], int)
    assert spec["instances"] >= (3 if name == "province" else 2)  # a primary and replicas
    ref = spec["imageCatalogRef"]
    catalog = objs[(ref["kind"], ref["name"])]
    images = {i["major"]: i["image"] for i in catalog["spec"]["images"]}
    assert "timescaledb-ha" in images[ref["major"]]
    assert (spec["postgresUID"], spec["postgresGID"]) == (1000, 1000)  # the HA image's user
    assert "timescaledb" in spec["postgresql"]["shared_preload_libraries"]
    assert spec["storage"]["size"]
    store = spec["backup"]["barmanObjectStore"]
    assert store["endpointURL"] == "http://minio:9000"
    backup = objs[("ScheduledBackup", "brightkitchen-db-daily")]
    assert backup["spec"]["cluster"]["name"] == "brightkitchen-db"
    assert len(backup["spec"]["schedule"].split()) == 6  # CNPG schedules have seconds


def test_strict_validation_catches_a_misspelt_field() -> None:
    api = _by_key(render(K8S / "overlays/district"))[("Deployment", "brightkitchen-api")]
    api["spec"]["template"]["spec"]["containers"][0]["readinessprobe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(api, K8S_VERSION, strict=True)


def test_references_between_resources_resolve(overlay: tuple[str, list[Resource]]) -> None:
    _, resources = overlay
    objs = _by_key(resources)
    example = yaml.safe_load_all((K8S / "secrets.example.yaml").read_text())
    secrets = {s["metadata"]["name"] for s in example if s}
    configmaps = {n for k, n in objs if k == "ConfigMap"}
    claims = {n for k, n in objs if k == "PersistentVolumeClaim"}
    for res in resources:
        assert res["metadata"]["namespace" if res["kind"] != "Namespace" else "name"]
        pod = _pod_spec(res)
        if pod is None:
            continue
        labels = res["spec"]["template"]["metadata"]["labels"]
        selector = (res["spec"].get("selector") or {}).get("matchLabels", {})
        assert selector.items() <= labels.items(), res["metadata"]["name"]
        claim_templates = {
            c["metadata"]["name"] for c in res["spec"].get("volumeClaimTemplates", [])
        }
        volumes = {v["name"] for v in pod.get("volumes", [])} | claim_templates
        for vol in pod.get("volumes", []):
            if "persistentVolumeClaim" in vol:
                assert vol["persistentVolumeClaim"]["claimName"] in claims
            if "configMap" in vol:
                assert vol["configMap"]["name"] in configmaps
        for c in pod["containers"]:
            for src in c.get("envFrom", []):
                if "secretRef" in src:
                    assert src["secretRef"]["name"] in secrets
                if "configMapRef" in src:
                    assert src["configMapRef"]["name"] in configmaps
            for env in c.get("env", []):
                ref = (env.get("valueFrom") or {}).get("secretKeyRef")
                if ref:
                    assert ref["name"] in secrets
            ports = {p.get("name") for p in c.get("ports", [])}
            for probe in ("readinessProbe", "livenessProbe"):
                if probe in c and "httpGet" in c[probe]:
                    assert c[probe]["httpGet"]["port"] in ports, (c["name"], probe)
            for mount in c.get("volumeMounts", []):
                assert mount["name"] in volumes
    for (kind, name), res in objs.items():
        if kind == "PodDisruptionBudget":
            sel = res["spec"]["selector"]["matchLabels"]
            assert any(
                sel.items() <= w["spec"]["template"]["metadata"]["labels"].items()
                for w in resources
                if _pod_spec(w) is not None
            ), name
        if kind == "HorizontalPodAutoscaler":
            target = res["spec"]["scaleTargetRef"]
            assert (target["kind"], target["name"]) in objs
        if kind in {"Deployment", "StatefulSet"}:
            assert all("readinessProbe" in c for c in _pod_spec(res)["containers"]), name  # type: ignore[index]


def test_ingest_has_stable_client_ids_and_scales_on_lag(
    overlay: tuple[str, list[Resource]],
) -> None:
    _, resources = overlay
    objs = _by_key(resources)
    ingest = objs[("StatefulSet", "brightkitchen-ingest")]
    env = {e["name"]: e for e in ingest["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["BK_INGEST_CLIENT_ID"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    hpa = objs[("HorizontalPodAutoscaler", "brightkitchen-ingest")]
    names = [m["pods"]["metric"]["name"] for m in hpa["spec"]["metrics"] if m["type"] == "Pods"]
    assert names == ["bk_ingest_lag_seconds"]
    assert hpa["spec"]["minReplicas"] <= ingest["spec"]["replicas"] <= hpa["spec"]["maxReplicas"]
    hocon = objs[("ConfigMap", "emqx-config")]["data"]["base.hocon"]
    assert "backend = postgresql" in hocon
    assert "FROM mqtt_accounts" in hocon
    assert "no_match = deny" in hocon


def test_overlays_differ_in_size_only_where_intended() -> None:
    district = _by_key(render(K8S / "overlays/district"))
    province = _by_key(render(K8S / "overlays/province"))
    assert district.keys() == province.keys()
    assert district[("StatefulSet", "emqx")]["spec"]["replicas"] == 3
    assert province[("StatefulSet", "emqx")]["spec"]["replicas"] == 5
    assert province[("Cluster", "brightkitchen-db")]["spec"]["instances"] == 3
    for objs, instance in ((district, "district"), (province, "province")):
        for res in objs.values():
            assert res["metadata"]["labels"]["app.kubernetes.io/instance"] == instance
            assert res["metadata"]["labels"]["app.kubernetes.io/part-of"] == "brightkitchen"
            assert res["metadata"]["namespace"] == "brightkitchen"


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl not installed")
@pytest.mark.parametrize("name", OVERLAYS)
def test_renderer_matches_kubectl_kustomize(name: str) -> None:
    done = subprocess.run(["kubectl", "kustomize", str(K8S / "overlays" / name)],
                          capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    if done.returncode != 0 and "unknown command" in done.stderr:
        pytest.skip("this kubectl has no kustomize")
    assert done.returncode == 0, done.stderr
    theirs = _by_key([d for d in yaml.safe_load_all(done.stdout) if d])
    assert _by_key(render(K8S / "overlays" / name)) == theirs


# ------------------------------------------------------------------ the renderer itself
def _write(root: Path, files: dict[str, Any]) -> Path:
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, list):  # several documents
            text = yaml.safe_dump_all(content)
        else:
            text = content if isinstance(content, str) else yaml.safe_dump(content)
        path.write_text(text)
    return root


DEPLOY = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "web"},
    "spec": {
        "replicas": 1,
        "selector": {"matchLabels": {"app": "web"}},
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [
                {"name": "web", "image": "registry.local:5000/web:1",
                 "env": [{"name": "A", "value": "1"}]},
                {"name": "side", "image": "busybox"},
            ]},
        },
    },
}  # fmt: skip


def test_renderer_applies_each_supported_field(tmp_path: Path) -> None:
    _write(tmp_path, {
        "base/kustomization.yaml": {"resources": ["web.yaml"], "commonLabels": {"team": "a"}},
        "base/web.yaml": [DEPLOY],
        "ov/kustomization.yaml": {
            "resources": ["../base"],
            "namespace": "ns",
            "labels": [{"pairs": {"env": "prod"}, "includeTemplates": True}],
            "images": [{"name": "registry.local:5000/web", "newTag": "2"},
                       {"name": "busybox", "newName": "mirror/busybox", "newTag": "1.36"}],
            "replicas": [{"name": "web", "count": 4}],
            "patches": [{"path": "patch.yaml"}],
        },
        "ov/patch.yaml": [{"apiVersion": "apps/v1", "kind": "Deployment",
                           "metadata": {"name": "web"},
                           "spec": {"template": {"spec": {"containers": [
                               {"name": "web", "env": [{"name": "B", "value": "2"}]}]}}}}],
    })  # fmt: skip
    (web,) = render(tmp_path / "ov")
    assert web["metadata"]["namespace"] == "ns"
    assert web["metadata"]["labels"] == {"team": "a", "env": "prod"}
    assert web["spec"]["selector"]["matchLabels"] == {"app": "web", "team": "a"}  # not env
    assert web["spec"]["template"]["metadata"]["labels"] == {
        "app": "web",
        "team": "a",
        "env": "prod",
    }
    web_c, side = web["spec"]["template"]["spec"]["containers"]
    assert web_c["image"] == "registry.local:5000/web:2"
    assert [e["name"] for e in web_c["env"]] == ["A", "B"]  # merged by name, not replaced
    assert side["image"] == "mirror/busybox:1.36"
    assert web["spec"]["replicas"] == 4


@pytest.mark.parametrize(
    ("kustomization", "extra", "message"),
    [
        ({"resources": ["web.yaml"], "namePrefix": "x-"}, {}, "unsupported field(s) namePrefix"),
        ({"resources": ["missing.yaml"]}, {}, "missing.yaml does not exist"),
        ({"resources": ["web.yaml", "web2.yaml"]}, {"web2.yaml": [DEPLOY]}, "defined twice"),
        ({"resources": ["web.yaml"], "patches": [{"path": "p.yaml"}]},
         {"p.yaml": [{"kind": "Deployment", "metadata": {"name": "nope"}}]}, "Deployment nope"),
        ({"resources": ["web.yaml"], "replicas": [{"name": "db", "count": 2}]}, {}, "named db"),
        ({"resources": ["web.yaml"], "replicas": [{"name": "web", "count": -1}]}, {}, "count"),
    ],
)  # fmt: skip
def test_renderer_refuses_what_it_cannot_render_faithfully(
    tmp_path: Path, kustomization: dict[str, Any], extra: dict[str, Any], message: str
) -> None:
    _write(tmp_path, {"kustomization.yaml": kustomization, "web.yaml": [DEPLOY], **extra})
    with pytest.raises(KustomizeError, match=message.replace("(", r"\(").replace(")", r"\)")):
        render(tmp_path)


def test_strategic_merge_deletes_with_null_and_replaces_plain_lists() -> None:
    base = {"a": {"b": 1, "c": 2}, "args": ["x", "y"]}
    assert strategic_merge(base, {"a": {"b": None}, "args": ["z"]}) == {
        "a": {"c": 2},
        "args": ["z"],
    }


def test_cli_prints_yaml_and_exits_2_on_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([str(K8S / "overlays/district")]) == 0
    docs = [d for d in yaml.safe_load_all(capsys.readouterr().out) if d]
    assert len(docs) == len(render(K8S / "overlays/district"))
    assert main([str(tmp_path)]) == 2
    assert "no kustomization.yaml" in capsys.readouterr().err


# ------------------------------------------------------------------ EMQX against the registry
def _emqx_queries() -> tuple[str, str, dict[str, Any]]:
    """The authn and authz SQL of emqx.yaml with EMQX's ${username} as a psycopg parameter."""
    hocon = _by_key(render(K8S / "overlays/province"))[("ConfigMap", "emqx-config")]["data"][
        "base.hocon"
    ]
    queries = [line.split("query = ", 1)[1] for line in hocon.splitlines() if "query = " in line]
    authn, authz = (json.loads(q).replace("${username}", "%(u)s") for q in queries)
    hashing = dict(re.findall(r"(\w+) = (\w+)", hocon.split("password_hash_algorithm", 1)[1]
                               .split("}", 1)[0]))  # fmt: skip
    return authn, authz, hashing


def test_emqx_authn_query_checks_registry_passwords_as_emqx_pbkdf2_does(db_url: str) -> None:
    """EMQX's pbkdf2 check is hex(pbkdf2(mac_fun, password, salt, iterations, dk_length))
    == password_hash (emqx_passwd); the query turns the stored Mosquitto hash into that."""
    authn, authz, hashing = _emqx_queries()
    assert hashing == {"name": "pbkdf2", "mac_fun": "sha512", "iterations": "1000",
                       "dk_length": "64"}  # fmt: skip
    now = datetime.now(UTC)
    with psycopg.connect(db_url) as conn:
        sync_registry(conn, parse_site_file(SITE))
        box = issue_account(conn, kind=AccountKind.EDGE, subject="box-a", now=now)
        gw = issue_account(conn, kind=AccountKind.GATEWAY, subject="site-a", now=now)
        svc = issue_account(conn, kind=AccountKind.SERVICE, subject="ingest", now=now)
        for account in (box, gw, svc):
            row = conn.execute(authn, {"u": account.username}).fetchone()
            assert row is not None
            password_hash, salt, superuser = row
            derived = hashlib.pbkdf2_hmac(
                "sha512", account.password.encode(), bytes(salt), int(hashing["iterations"]),
                int(hashing["dk_length"]),
            ).hex()  # fmt: skip
            assert derived == password_hash
            assert superuser is False
        assert conn.execute(authn, {"u": "edge.nobody"}).fetchone() is None
        topics = {
            a.username: sorted((r[0], r[1], r[2]) for r in conn.execute(authz, {"u": a.username}))
            for a in (box, gw, svc)
        }
        revoke_account(conn, username=box.username, now=now)
        assert conn.execute(authn, {"u": box.username}).fetchone() is None
        assert conn.execute(authz, {"u": box.username}).fetchall() == []
    assert topics[box.username] == [
        ("allow", "publish", "bk/v1/site-a/alert"),
        ("allow", "publish", "bk/v1/site-a/edge/box-a/#"),
    ]
    assert topics[gw.username] == [("allow", "publish", "bk/v1/site-a/sensor/+/#")]
    assert ("allow", "subscribe", "$share/ingest/bk/v1/#") in topics[svc.username]


# ------------------------------------------------------------------ evidence in object storage
def test_api_and_workers_keep_evidence_in_the_private_bucket(
    overlay: tuple[str, list[Resource]],
) -> None:
    """api and workers read BK_API_EVIDENCE_STORE=s3 and the bucket's account from the
    brightkitchen-s3 Secret; minio-init makes the bucket private with the same script and
    policy as compose (deploy/compose/minio), and no evidence volume is left to mount."""
    _, resources = overlay
    objs = _by_key(resources)
    config = objs[("ConfigMap", "brightkitchen")]["data"]
    assert config["BK_API_EVIDENCE_STORE"] == "s3"
    assert config["BK_API_S3_ENDPOINT"] == "http://minio:9000"
    service = objs[("Service", "minio")]
    assert {p["port"] for p in service["spec"]["ports"]} == {9000}
    example = {
        s["metadata"]["name"]: s
        for s in yaml.safe_load_all((K8S / "secrets.example.yaml").read_text())
        if s
    }
    assert set(example["brightkitchen-s3"]["stringData"]) == {
        "BK_API_S3_ACCESS_KEY",
        "BK_API_S3_SECRET_KEY",
    }
    for name in ("brightkitchen-api", "brightkitchen-workers"):
        pod = _pod_spec(objs[("Deployment", name)])
        assert pod is not None
        (container,) = pod["containers"]
        refs = {src.get("secretRef", {}).get("name") for src in container["envFrom"]}
        assert "brightkitchen-s3" in refs
        assert "volumeMounts" not in container
    assert not any(kind == "PersistentVolumeClaim" for kind, _ in objs)
    job = objs[("Job", "minio-init")]
    env = {e["name"]: e["valueFrom"] for e in _pod_spec(job)["containers"][0]["env"]}  # type: ignore[index]
    assert env["S3_ACCESS_KEY"]["secretKeyRef"]["name"] == "brightkitchen-s3"
    assert env["S3_BUCKET"]["configMapKeyRef"]["key"] == "BK_API_S3_BUCKET"
    script = objs[("ConfigMap", "minio-init")]["data"]
    compose = REPO / "deploy/compose/minio"
    mc = [ln.strip() for ln in (compose / "init.sh").read_text().splitlines() if "mc " in ln]
    assert [ln.split("#")[0].strip() for ln in mc] == [
        ln.strip() for ln in script["init.sh"].splitlines() if "mc " in ln
    ]
    assert json.loads(script["policy.json"]) == json.loads((compose / "policy.json").read_text())


def test_timescaledb_pins_agree_and_stay_on_a_release_for_postgresql_15() -> None:
    """compose and Kubernetes run the same TimescaleDB minor on PostgreSQL 15; 2.28 is the
    last release that supports PostgreSQL 15 and the one the schema is checked against."""
    compose = yaml.safe_load((REPO / "deploy/compose/docker-compose.yml").read_text())
    tags = {
        re.search(r"timescaledb:([\w.-]+)}$", svc["image"]).group(1)  # type: ignore[union-attr]
        for svc in compose["services"].values()
        if "timescaledb" in svc["image"]
    }
    (tag,) = tags  # db and backup (pg_dump) use one image
    version, pg = re.fullmatch(r"(\d+\.\d+)\.\d+-pg(\d+)", tag).groups()  # type: ignore[union-attr]
    catalog = _by_key(render(K8S / "overlays/province"))[("ImageCatalog", "timescaledb")]
    (entry,) = catalog["spec"]["images"]
    assert entry["image"] == f"timescale/timescaledb-ha:pg{pg}-ts{version}"
    assert (pg, entry["major"]) == ("15", 15)
    assert version == "2.28"
