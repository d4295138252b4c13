"""The edge box's process tuning: one OpenCV thread, frame-sized buffers mmapped."""

from __future__ import annotations

import platform

import cv2
import numpy as np

from edge.proctune import tune_process


def test_tune_process_sets_one_opencv_thread_and_frames_still_work() -> None:
    """After tuning, OpenCV runs single-threaded and large buffers allocate and free normally."""
    tuned = tune_process()
    assert cv2.getNumThreads() == 1
    if platform.system() == "Linux" and platform.libc_ver()[0] == "glibc":
        assert tuned
    frames = [np.full((720, 1280, 3), i, np.uint8) for i in range(4)]
    small = cv2.resize(frames[3], (160, 90), interpolation=cv2.INTER_AREA)
    assert int(small[0, 0, 0]) == 3
