"""Process-wide tuning for an edge box: many camera threads on a few cores.

OpenCV's own thread pool (one thread per core) fights the camera threads for the
same cores, so it is set to one thread. glibc raises its mmap threshold after the
first large free, after which freed 2.7 MB video frames stay in the heap arenas
and the process keeps growing; a fixed threshold keeps every frame-sized buffer
mmapped, so it goes back to the system when the frame is dropped.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

import cv2

logger = logging.getLogger(__name__)

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8


def tune_process(
    *, opencv_threads: int = 1, mmap_threshold_bytes: int = 1 << 20, arena_max: int = 2
) -> bool:
    """Apply the edge box's process settings; return whether glibc's malloc was tuned."""
    cv2.setNumThreads(opencv_threads)
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        logger.debug("no glibc mallopt; malloc left as is")
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    ok = bool(mallopt(_M_MMAP_THRESHOLD, mmap_threshold_bytes))
    ok = bool(mallopt(_M_TRIM_THRESHOLD, 2 * mmap_threshold_bytes)) and ok
    return bool(mallopt(_M_ARENA_MAX, arena_max)) and ok
