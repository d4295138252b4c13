"""``brightkitchen edge ...``: run a box, validate its config, inspect its outbox.

Imports only argparse and bkcommon at module level; OpenCV, ONNX Runtime and
numpy are imported inside the handlers.
"""

from __future__ import annotations

import argparse
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bkcommon.errors import ConfigError


def _site_file(args: argparse.Namespace) -> str:
    from bkcommon.settings import load_common_settings

    path = args.config or load_common_settings().site_file
    if not path:
        raise ConfigError("no site file: pass --config FILE or set BK_SITE_FILE")
    return str(path)


def _box_id(args: argparse.Namespace) -> str:
    """The box to run: --box, else BK_EDGE_BOX_ID, else the only box in the site file."""
    from edge.settings import load_edge_settings

    box = args.box or load_edge_settings().box_id
    if box:
        return str(box)
    if getattr(args, "config", None) or os.environ.get("BK_SITE_FILE"):
        from bkcommon.sitefile import load_site_file

        boxes = [b.id for s in load_site_file(_site_file(args)).sites for b in s.edge_boxes]
        if len(boxes) == 1:
            return boxes[0]
        if boxes:
            raise ConfigError(
                f"the site file has {len(boxes)} edge boxes ({', '.join(boxes)}): pass --box"
            )
    raise ConfigError("no edge box: pass --box BOX_ID or set BK_EDGE_BOX_ID")


def _model_summary(path: Path) -> dict[str, Any]:
    """Read the model's metadata without running it; raise ConfigError when unusable."""
    if not path.is_file():
        raise ConfigError(
            f"model_path: file not found: {path} (set BK_EDGE_MODEL_PATH or export a model)"
        )
    import onnxruntime as ort

    try:
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises untyped errors
        raise ConfigError(f"model_path: cannot load {path}: {exc}") from exc
    meta = dict(sess.get_modelmeta().custom_metadata_map)
    shape = sess.get_inputs()[0].shape
    from bkcommon.errors import ModelError
    from edge.detect.onnx import OnnxDetector

    try:  # the checks the worker makes when it loads the model (layout, names, size)
        OnnxDetector(path, threads=1)
    except ModelError as exc:
        raise ConfigError(f"model_path: {exc}") from exc
    return {"path": str(path), "input": shape, **{k: meta[k] for k in sorted(meta)}}


def _cmd_validate(args: argparse.Namespace) -> int:
    from bkcommon.settings import load_common_settings
    from bkcommon.sitefile import load_site_file
    from edge.settings import load_edge_settings
    from edge.worker import check_camera_rules, find_box

    settings = load_edge_settings()
    load_common_settings()
    path = _site_file(args)
    sf = load_site_file(path)
    site, box = find_box(sf, _box_id(args))
    if not box.cameras:
        raise ConfigError(f"edge box {box.id!r} has no cameras in {path}")
    check_camera_rules(box.cameras)
    _check_video_files(box.cameras)
    print(f"{path}: OK: edge box {box.id} of site {site.id} ({site.name})")
    for cam in box.cameras:
        print(f"  camera {cam.id} {cam.name!r} url={_safe_url(cam.url)} fps={cam.analyse_fps}")
        if cam.substream is not None:
            w, h = cam.substream.main_size
            print(
                f"    substream url={_safe_url(cam.substream.url)} (analysed; main stream "
                f"{w}x{h} only for evidence, grab timeout {cam.substream.grab_timeout_s:g} s)"
            )
        for z in cam.zones:
            mask = (
                z.mask_required
                if z.mask_required is not None
                else z.kind in ("prep_room", "dish_up")
            )
            print(
                f"    zone {z.id} kind={z.kind} points={len(z.polygon)} mask_required={mask}"
                + (f" board_type={z.board_type}" if z.board_type else "")
            )
        if cam.rules:
            print(f"    rules {json.dumps(cam.rules, ensure_ascii=False)}")
    model = _model_summary(Path(settings.model_path))
    print("  model " + json.dumps(model, ensure_ascii=False))
    print(
        f"  outbox {Path(settings.data_dir) / f'outbox-{box.id}.sqlite'}"
        f" (max {settings.outbox_max_mb} MB, {settings.outbox_max_rows} rows)"
    )
    return 0


def _check_video_files(cameras: list[Any]) -> None:
    """A camera (or sub-stream) that is a video file must exist: name the camera if not."""
    from edge.capture import source_kind

    for cam in cameras:
        urls = [("url", cam.url)]
        if cam.substream is not None:
            urls.append(("substream.url", cam.substream.url))
        for field, url in urls:
            if source_kind(url) == "file" and not Path(url.removeprefix("file://")).exists():
                raise ConfigError(f"camera {cam.id!r}: {field}: video file not found: {url}")


def _safe_url(url: str) -> str:
    from bkcommon.urls import mask_url

    return mask_url(url)


def _cmd_run(args: argparse.Namespace) -> int:
    if args.validate_config:
        return _cmd_validate(args)
    import signal
    import threading

    from edge.settings import load_edge_settings
    from edge.worker import run_edge

    settings = load_edge_settings()
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    run_edge(_site_file(args), _box_id(args), settings, stop)
    return 0


def _cmd_outbox(args: argparse.Namespace) -> int:
    from edge.outbox import Outbox
    from edge.settings import load_edge_settings

    settings = load_edge_settings()
    box = _box_id(args)
    path = Path(settings.data_dir) / f"outbox-{box}.sqlite"
    if not path.exists():
        print(f"{path}: no outbox yet (depth 0)")
        return 0
    ob = Outbox(
        path,
        max_bytes=int(settings.outbox_max_mb * 1024 * 1024),
        max_rows=settings.outbox_max_rows,
        disk_reserve_bytes=int(settings.outbox_reserve_mb * 1024 * 1024),
    )
    st = ob.stats()
    oldest = (
        "-"
        if st.oldest_created_at is None
        else datetime.fromtimestamp(st.oldest_created_at, UTC).isoformat()
    )
    print(
        f"{path}: depth {st.depth}, {st.bytes_total} bytes, oldest {oldest}, "
        f"evidence images pruned over the disk budget {st.evidence_pruned_total}, "
        f"events dropped when full {st.dropped_total}, "
        f"set aside (the broker can never take them) {st.set_aside_total}"
    )
    for row in ob.peek(args.limit):
        print(
            f"  {row.id} {row.event_id} {row.topic} {len(row.payload)} bytes "
            f"attempts={row.attempts}"
        )
    for aside in ob.set_aside_rows()[-args.limit :]:
        print(f"  set aside: {aside.id} {aside.event_id} {aside.topic}: {aside.reason}")
    ob.close()
    return 0


def _cmd_enrol(args: argparse.Namespace) -> int:
    import sys

    from edge.enrol import enrol

    code = sys.stdin.readline().strip() if args.code == "-" else args.code
    done = enrol(
        api_url=args.api, box_id=args.box, code=code, broker=args.broker,
        out_dir=Path(args.out_dir), owner=args.owner,
    )  # fmt: skip
    print(
        f"box {done.box_id} (site {done.site_id}) enrolled as {done.mqtt_username}; "
        f"credentials in {', '.join(str(f) for f in done.files)} (mode 0600)"
    )
    return 0


def register(subparsers: Any) -> None:
    """Add ``edge run``, ``edge outbox`` and ``edge enrol`` to the brightkitchen command."""
    edge = subparsers.add_parser("edge", help="the edge box: cameras, detection, delivery")
    sub = edge.add_subparsers(dest="edge_command", required=True)
    run = sub.add_parser("run", help="run every camera of one box until stopped")
    run.add_argument("--config", help="YAML site file (default: $BK_SITE_FILE)")
    run.add_argument(
        "--box",
        default=os.environ.get("BK_EDGE_BOX_ID"),
        help="edge box id in the site file (default: $BK_EDGE_BOX_ID, else the file's only box)",
    )
    run.add_argument(
        "--validate-config",
        action="store_true",
        help="print the box's cameras, zones, rules and model, or the errors; exit",
    )
    run.set_defaults(handler=_cmd_run)
    ob = sub.add_parser("outbox", help="show the outbox depth and the oldest messages")
    ob.add_argument("--box", default=os.environ.get("BK_EDGE_BOX_ID"))
    ob.add_argument("--limit", type=int, default=10)
    ob.set_defaults(handler=_cmd_outbox)
    en = sub.add_parser("enrol", help="trade a one-time enrolment code for the box's credentials")
    en.add_argument("--api", required=True, help="backend URL, e.g. https://bk.example.org")
    en.add_argument("--box", required=True, help="this box's id in the registry")
    en.add_argument("--code", required=True, help="the one-time code ('-': read from stdin)")
    en.add_argument("--broker", required=True, help="mqtts://host:8883 (or mqtt://host:1883)")
    en.add_argument("--out-dir", default="/etc/brightkitchen", help="where device.env goes")
    en.add_argument("--owner", help="service user that owns the credential files")
    en.set_defaults(handler=_cmd_enrol)
