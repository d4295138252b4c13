"""Small images the tests upload as evidence."""

from __future__ import annotations

import cv2
import numpy as np


def small_png() -> bytes:
    """An 8 x 8 PNG with a red square: a real photo as far as the evidence checks go."""
    img = np.zeros((8, 8, 3), dtype=np.uint8)
    img[2:6, 2:6] = (0, 0, 255)
    ok, buf = cv2.imencode(".png", img)
    assert ok
    return bytes(buf)
