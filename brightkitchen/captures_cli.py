"""``brightkitchen export-captures``: reviewed captures -> a labelled VOC folder for training.

The export itself is ``models.captures``; this command joins it to the API's evidence store
(disk, S3 or the database), which the training pipeline may not import on its own.
"""

from __future__ import annotations

import argparse
import importlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

DEFAULT_FACE_MODEL = "models/weights/mask_yolo.onnx"


def _when(text: str) -> datetime:
    """An ISO date or time; naive means UTC."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO date or time") from exc
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _evidence_store(settings: Any) -> Any:
    """The API's configured evidence store (S3 where configured, else the local folder)."""
    try:
        return importlib.import_module("api.services.evidence_store").make_store(settings)
    except (ModuleNotFoundError, AttributeError):
        from api.services.evidence import LocalDirStore

        return LocalDirStore(settings.evidence_dir)


def _cmd_export(args: argparse.Namespace) -> int:
    import psycopg

    from api.services.evidence import load_bytes
    from api.settings import ApiSettings
    from bkcommon.settings import load_common_settings
    from models.captures import export_captures, onnx_face_finder
    from models.cli import parse_class_maps

    settings = ApiSettings()
    url = args.database_url or load_common_settings().database_url.get_secret_value()
    store = _evidence_store(settings)
    finder = None if args.no_face_model else onnx_face_finder(Path(args.face_model))
    out = Path(args.out)
    folders = [out / sub / d for sub in ("", "needs_label") for d in ("images", "annotations")]
    if any(p.is_dir() and any(p.iterdir()) for p in folders):
        print(f"error: {out} holds a previous export; write to a new folder")
        return 2
    with psycopg.connect(url) as conn:
        res = export_captures(
            conn,
            lambda sha: load_bytes(conn, store, sha),
            Path(args.out),
            from_ts=args.from_,
            to_ts=args.to,
            regions=args.region,
            sites=args.site,
            class_map=parse_class_maps(args.map),
            faces_allowed_regions=args.faces_allowed_region,
            find_faces=finder,
        )
    print(
        f"wrote {res.confirmed} confirmed captures to {args.out} (VOC, for training): boxes "
        + (", ".join(f"{k} {v}" for k, v in res.boxes.items()) or "none")
    )
    print(
        f"wrote {res.dismissed} dismissed captures to {Path(args.out) / 'needs_label'}: each "
        "box is named needs_label until a person relabels or deletes it in a labelling tool"
    )
    print(
        f"faces blurred: {res.faces_blurred}; unlabelled faces painted out: "
        f"{res.faces_masked_out}; images left unblurred (region allows faces): "
        f"{res.unblurred_images}"
    )
    if res.zone_outlines_kept:  # evidence of boxes that do not record where they drew it
        print(
            f"zone outlines painted out: {res.zone_outlines_removed}; left on "
            f"{res.zone_outlines_kept} images (their edge box did not record where it drew "
            "the outline: zone_outline_removed false in the annotation)"
        )
    elif res.zone_outlines_removed:
        print(f"zone outlines painted out: {res.zone_outlines_removed}")
    for reason, n in res.left_out.items():
        print(f"left out {n}: {reason}")
    print(
        f"next: a recipe source `- path: {args.out}` (format: voc, split: auto), then "
        "`brightkitchen models prepare` and `models train`; needs_label/ becomes a source "
        "once every needs_label box is relabelled or deleted"
    )
    return 0


def register(subparsers: Any) -> None:
    """Add the ``export-captures`` command."""
    p = subparsers.add_parser(
        "export-captures",
        help="confirmed and dismissed captures of the triage queue as a VOC training folder",
    )
    p.add_argument(
        "--out",
        required=True,
        help="new folder to write (images/ + annotations/; dismissed ones in needs_label/)",
    )
    p.add_argument("--from", dest="from_", type=_when, required=True, help="reviewed from (ISO)")
    p.add_argument("--to", type=_when, required=True, help="reviewed before (ISO)")
    p.add_argument("--region", action="append", default=[], help="only this region (repeatable)")
    p.add_argument("--site", action="append", default=[], help="only this site (repeatable)")
    p.add_argument(
        "--faces-allowed-region",
        action="append",
        default=[],
        metavar="REGION",
        help="a region whose data agreement allows training on unblurred faces (repeatable); "
        "everywhere else faces are blurred",
    )
    p.add_argument(
        "--map",
        action="append",
        default=[],
        metavar="LABEL=CLASS",
        help="box label or rule -> training class (LABEL= drops it); others keep their label",
    )
    p.add_argument(
        "--face-model", default=DEFAULT_FACE_MODEL, help="ONNX whose detections are the faces"
    )
    p.add_argument(
        "--no-face-model",
        action="store_true",
        help="blur only labelled face boxes (tests; not for exports that leave the region)",
    )
    p.add_argument("--database-url", help="override BK_DATABASE_URL")
    p.set_defaults(handler=_cmd_export)
