"""``brightkitchen edge ...`` through the real command line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from edge.outbox import Outbox
from tests.edge.support import MASK_CLASSES, build_colour_model
from tests.support.services import REPO

SITE = """
version: 1
regions: [{id: r1, name: R}]
sites:
  - id: site-c
    name: 食堂
    region: r1
    edge_boxes:
      - id: box-c
        cameras:
          - id: cam-1
            url: rtsp://user:secret@10.0.0.5/stream1
            zones:
              - {id: prep, kind: prep_room, polygon: [[0, 0], [100, 0], [100, 100]]}
            rules: {no_mask: {min_frames: 3}}
      - id: box-empty
"""


def _run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "brightkitchen.cli", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    e = dict(os.environ)
    e.update(
        {
            "BK_EDGE_DATA_DIR": str(tmp_path / "edge"),
            "BK_EDGE_MODEL_PATH": str(build_colour_model(tmp_path / "m.onnx", MASK_CLASSES)),
        }
    )
    e.pop("BK_EDGE_BOX_ID", None)
    return e


@pytest.fixture
def site(tmp_path: Path) -> Path:
    p = tmp_path / "site.yaml"
    p.write_text(SITE, encoding="utf-8")
    return p


def test_validate_prints_cameras_zones_rules_model(site: Path, env: dict[str, str]) -> None:
    r = _run("edge", "run", "--config", str(site), "--box", "box-c", "--validate-config", env=env)
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "edge box box-c of site site-c" in out
    assert "camera cam-1" in out
    assert "secret" not in out  # credentials in RTSP URLs are masked
    assert "zone prep kind=prep_room points=3 mask_required=True" in out
    assert '"min_frames": 3' in out
    assert "test-colour-1" in out  # model metadata


@pytest.mark.parametrize(
    ("args", "extra_env", "message"),
    [
        (["--box", "nope"], {}, "edge box 'nope' is not in the site file"),
        (["--box", "box-empty"], {}, "has no cameras"),
        ([], {}, "2 edge boxes (box-c, box-empty): pass --box"),
        (
            ["--box", "box-c"],
            {"BK_EDGE_MODEL_PATH": "/nonexistent/m.onnx"},
            "model_path: file not found",
        ),
        (["--box", "box-c"], {"BK_EDGE_JPEG_QUALITY": "500"}, "jpeg_quality"),
        (  # the crop classifier beside the detector is not a detector: refused at start-up
            ["--box", "box-c"],
            {"BK_EDGE_MODEL_PATH": str(REPO / "models/weights/mask_cls.onnx")},
            "model_path: ",
        ),
    ],
)
def test_validate_errors_exit_2(
    site: Path, env: dict[str, str], args: list[str], extra_env: dict[str, str], message: str
) -> None:
    env.update(extra_env)
    r = _run("edge", "run", "--config", str(site), "--validate-config", *args, env=env)
    assert r.returncode == 2
    assert message in r.stderr


def test_the_only_box_of_a_site_file_needs_no_box_flag(env: dict[str, str]) -> None:
    example = Path(__file__).resolve().parents[2] / "brightkitchen/examples/site.yaml"
    r = _run("edge", "run", "--config", str(example), "--validate-config", env=env)
    assert r.returncode == 0, r.stderr
    assert "OK: edge box s001-box-1" in r.stdout


def test_bad_site_file_names_key_path(tmp_path: Path, env: dict[str, str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(SITE.replace("kind: prep_room", "kind: spaceship"), encoding="utf-8")
    r = _run("edge", "run", "--config", str(bad), "--box", "box-c", "--validate-config", env=env)
    assert r.returncode == 2
    assert "sites.0.edge_boxes.0.cameras.0.zones.0.kind" in r.stderr


def test_outbox_command_shows_depth_and_oldest(tmp_path: Path, env: dict[str, str]) -> None:
    r = _run("edge", "outbox", "--box", "box-c", env=env)
    assert r.returncode == 0
    assert "depth 0" in r.stdout
    ob = Outbox(tmp_path / "edge" / "outbox-box-c.sqlite")
    ob.put("evt-cli-0001", "bk/v1/site-c/edge/box-c/violation", b"{}")
    ob.close()
    r = _run("edge", "outbox", "--box", "box-c", env=env)
    assert r.returncode == 0
    assert "depth 1" in r.stdout
    assert "evt-cli-0001" in r.stdout


def test_cli_module_imports_nothing_heavy() -> None:
    code = (
        "import sys, edge.cli; heavy = {'cv2', 'numpy', 'onnxruntime', 'paho'} & "
        "{m.split('.')[0] for m in sys.modules}; print(sorted(heavy))"
    )
    r = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert r.stdout.strip() == "[]"


def test_a_bad_per_camera_rule_stops_validation(tmp_path: Path, env: dict[str, str]) -> None:
    """Found first in the camera's own loop, a bad rule setting left that camera unanalysed
    behind a log line while the box reported it online."""
    site = tmp_path / "bad.yaml"
    site.write_text(SITE.replace("{no_mask: {min_frames: 3}}", "{no_mask: {min_share: 5}}"))
    r = _run("edge", "run", "--config", str(site), "--box", "box-c", "--validate-config", env=env)
    assert r.returncode == 2
    assert "cameras[cam-1].rules.no_mask: min_share" in r.stderr
