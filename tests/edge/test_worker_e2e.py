"""``brightkitchen edge run`` end to end: a video file, a tiny real ONNX model, real MQTT."""

from __future__ import annotations

import base64
import hashlib
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import cv2
import numpy as np
import pytest

from bkcommon.messages import EdgeStatus, Violation, decode
from bkcommon.topics import status_topic, violation_topic
from tests.edge.mqtt_support import Recorder
from tests.edge.support import (
    MASK_CLASSES,
    RED,
    Patch,
    build_colour_model,
    kitchen_background,
    render,
    write_video,
)
from tests.support.services import REPO, wait_until

SITE = """
version: 1
regions: [{{id: r1, name: R}}]
sites:
  - id: site-e
    name: 第一食堂
    region: r1
    edge_boxes:
      - id: box-e
        cameras:
          - id: cam-prep
            url: {video}
            analyse_fps: 10
            zones:
              - {{id: prep, kind: prep_room, polygon: [[0, 0], [639, 0], [639, 359], [0, 359]]}}
            rules: {{no_mask: {{window_s: 1, min_frames: 2}}}}
"""


@pytest.mark.slow
def test_edge_run_file_to_mqtt(tmp_path: Path, mqtt_url: str, topic_prefix: str) -> None:
    bg = kitchen_background()
    frames = [render(bg, [Patch(200 + 4 * i, 180, 60, RED)]) for i in range(50)]
    video = write_video(tmp_path / "prep.avi", frames, fps=10)
    site = tmp_path / "site.yaml"
    site.write_text(SITE.format(video=video), encoding="utf-8")
    model = build_colour_model(tmp_path / "mask.onnx", MASK_CLASSES)
    env = dict(os.environ)
    env.update(
        {
            "BK_MQTT_URL": mqtt_url,
            "BK_MQTT_PREFIX": topic_prefix,
            "BK_EDGE_MODEL_PATH": str(model),
            "BK_EDGE_DATA_DIR": str(tmp_path / "edge"),
            "BK_EDGE_DISPLAY_PORT": "0",
            "BK_EDGE_METRICS_PORT": "0",
            "BK_EDGE_CLIENT_ID": f"edge-{uuid.uuid4().hex[:8]}",
            "BK_EDGE_STATUS_INTERVAL_S": "1",
        }
    )
    vt = violation_topic("site-e", "box-e", topic_prefix)
    st = status_topic("site-e", "box-e", topic_prefix)
    rec = Recorder(mqtt_url, f"{topic_prefix}/#", client_id=f"sub-{uuid.uuid4().hex[:8]}")
    log = (tmp_path / "edge.log").open("w")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "brightkitchen.cli",
            "edge",
            "run",
            "--config",
            str(site),
            "--box",
            "box-e",
        ],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:

        def violations() -> list[Violation]:
            return [decode(Violation, p) for t, p, _ in list(rec.messages) if t == vt]

        try:
            wait_until(
                lambda: any(v.rule == "no_mask" for v in violations()),
                45,
                what="no_mask violation from edge run",
            )
        except AssertionError:
            raise AssertionError((tmp_path / "edge.log").read_text()[-3000:]) from None
        v = next(v for v in violations() if v.rule == "no_mask")
        assert v.camera_id == "cam-prep"
        assert v.zone == "prep"
        assert v.model_version == "test-colour-1"
        assert v.evidence is not None
        assert v.evidence.jpeg_b64 is not None
        jpeg = base64.b64decode(v.evidence.jpeg_b64)
        assert hashlib.sha256(jpeg).hexdigest() == v.evidence.sha256
        img = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
        assert img.shape[1] == 640
        statuses = [decode(EdgeStatus, p) for t, p, _ in list(rec.messages) if t == st and p]
        assert statuses
        assert statuses[-1].online
        assert statuses[-1].model_version == "test-colour-1"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
        wait_until(
            lambda: (
                not decode(
                    EdgeStatus, [p for t, p, _ in list(rec.messages) if t == st and p][-1]
                ).online
            ),
            5,
            what="offline status after SIGTERM",
        )
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        rec.client.publish(st, b"", qos=1, retain=True).wait_for_publish(5)
        rec.close()
