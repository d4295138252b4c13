"""Keep ultralytics off the network: environment, a local font and settings, before import."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

logger = logging.getLogger(__name__)

DEFAULT_CONFIG_DIR = Path("var/ultralytics")


def _find_ttf() -> Path | None:
    """A TTF font already on this machine (matplotlib's DejaVuSans first)."""
    try:
        import matplotlib

        cand = Path(matplotlib.__file__).parent / "mpl-data/fonts/ttf/DejaVuSans.ttf"
        if cand.is_file():
            return cand
    except ImportError:
        pass
    for root in ("/usr/share/fonts", "/usr/local/share/fonts"):
        for path in sorted(Path(root).rglob("*.ttf")) if Path(root).is_dir() else []:
            return path
    return None


def setup_offline(config_dir: Path | None = None) -> Path:
    """Set ultralytics' offline environment and font; call before ``import ultralytics``."""
    cfg = (config_dir or Path(os.environ.get("BK_ULTRALYTICS_DIR", DEFAULT_CONFIG_DIR))).resolve()
    font_dir = cfg / "Ultralytics"
    font_dir.mkdir(parents=True, exist_ok=True)
    for name in ("Arial.ttf", "Arial.Unicode.ttf"):
        target = font_dir / name
        if not target.exists():
            src = _find_ttf()
            if src is not None:
                shutil.copyfile(src, target)
    os.environ["YOLO_OFFLINE"] = "1"
    os.environ["YOLO_AUTOINSTALL"] = "False"
    os.environ["YOLO_CONFIG_DIR"] = str(cfg)
    os.environ.setdefault("YOLO_VERBOSE", "True")
    return cfg


def disable_sync() -> None:
    """Turn off ultralytics' analytics sync (after import; the settings file lives in our dir)."""
    from ultralytics.utils import SETTINGS

    if SETTINGS.get("sync", True):
        SETTINGS.update({"sync": False})  # type: ignore[no-untyped-call]
