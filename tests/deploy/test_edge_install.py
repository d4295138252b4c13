"""deploy/edge/install.sh staged under --root: units, settings, model, logs, validation."""

from __future__ import annotations

import os
import pwd
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.services import REPO

SCRIPT = REPO / "deploy/edge/install.sh"
SITE = REPO / "brightkitchen/examples/site.yaml"
BOX = "s001-box-1"
USER = "nobody"
VENV = str(Path(sys.executable).parent.parent)


def _install(root: Path, *extra: str, site: Path = SITE) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(SCRIPT), "--site-file", str(site), "--box", BOX, "--root", str(root),
         "--venv", VENV, "--user", USER, *extra],
        capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip


@pytest.fixture(scope="module")
def staged(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("edgebox")
    done = _install(root, "--disk-budget-mb", "300", "--metrics-host", "0.0.0.0")
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"edge box {BOX} installed" in done.stdout
    assert "OK: edge box s001-box-1" in done.stdout  # validate-config ran and passed
    return root


def _env(path: Path) -> dict[str, str]:
    return dict(
        line.split("=", 1) for line in path.read_text().splitlines()
        if line and not line.startswith("#")
    )  # fmt: skip


def test_settings_model_and_disk_budget(staged: Path) -> None:
    env = _env(staged / "etc/brightkitchen/edge.env")
    assert env["BK_EDGE_BOX_ID"] == BOX
    assert env["BK_EDGE_OUTBOX_MAX_MB"] == "300"
    assert env["BK_EDGE_METRICS_HOST"] == "0.0.0.0"
    model = staged / env["BK_EDGE_MODEL_PATH"].lstrip("/")
    shipped = REPO / "models/weights/mask_yolo_edge.onnx"
    assert model.read_bytes() == shipped.read_bytes()
    assert (model.parent / "mask_yolo_edge.metrics.json").exists()
    assert (staged / "etc/brightkitchen/site.yaml").read_text() == SITE.read_text()
    etc = (staged / "etc/brightkitchen").stat()
    assert stat.S_IMODE(etc.st_mode) == 0o750
    assert stat.S_IMODE((staged / "etc/brightkitchen/edge.env").stat().st_mode) & 0o007 == 0
    if os.geteuid() == 0:  # ownership is only set by root
        assert (staged / "var/lib/brightkitchen").stat().st_uid == pwd.getpwnam(USER).pw_uid


def test_units_restart_read_credentials_and_verify(staged: Path) -> None:
    units = staged / "etc/systemd/system"
    edge = (units / "brightkitchen-edge.service").read_text()
    for line in (
        f"User={USER}",
        "Restart=always",
        "EnvironmentFile=/etc/brightkitchen/edge.env",
        "EnvironmentFile=-/etc/brightkitchen/device.env",
        "ReadWritePaths=/var/lib/brightkitchen",
        f"ExecStart={VENV}/bin/brightkitchen edge run --config /etc/brightkitchen/site.yaml",
    ):
        assert line in edge.splitlines(), line
    assert "--validate-config" in edge  # ExecStartPre refuses a broken config
    timer = (units / "brightkitchen-edge-watchdog.timer").read_text()
    assert "OnUnitActiveSec=1min" in timer
    assert "chromium --kiosk" in (units / "brightkitchen-display.service").read_text()
    watchdog = staged / "opt/brightkitchen/watchdog.sh"
    assert os.access(watchdog, os.X_OK)
    assert subprocess.run(["sh", "-n", str(watchdog)], check=False).returncode == 0
    journald = (staged / "etc/systemd/journald.conf.d/brightkitchen.conf").read_text()
    assert "SystemMaxUse=500M" in journald
    assert "rotate 14" in (staged / "etc/logrotate.d/brightkitchen").read_text()
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze not installed: unit syntax not verified")
    done = subprocess.run(
        [analyze, "verify", "brightkitchen-edge.service", "brightkitchen-edge-watchdog.timer"],
        cwd=units, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "Unknown key" not in done.stderr
    assert "Unknown section" not in done.stderr


def test_a_broken_site_file_stops_the_install_with_its_key_path(tmp_path: Path) -> None:
    bad = tmp_path / "site.yaml"
    bad.write_text(SITE.read_text().replace("kind: prep_room", "kind: prep_rom", 1))
    done = _install(tmp_path / "root", site=bad)
    assert done.returncode == 2
    out = done.stdout + done.stderr
    assert "sites.0.edge_boxes.0.cameras.0.zones.0.kind" in out
    assert not (tmp_path / "root/etc/brightkitchen/device.env").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "--site-file is required"),
        (["--site-file", str(SITE)], "--box is required"),
        (["--site-file", str(SITE), "--box", BOX, "--api", "https://x"], "go together"),
        (["--site-file", "/nonexistent.yaml", "--box", BOX], "cannot read it"),
        (["--site-file", str(SITE), "--box", BOX, "--bogus"], "unknown option --bogus"),
    ],
)
def test_missing_or_bad_options_are_named(args: list[str], message: str, tmp_path: Path) -> None:
    done = subprocess.run(["bash", str(SCRIPT), *args, "--root", str(tmp_path)],
                          capture_output=True, text=True, timeout=30, check=False)  # fmt: skip
    assert done.returncode == 2
    assert message in done.stderr
