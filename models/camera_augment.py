"""Training-time camera degradations: what a canteen camera's sub-stream does to a face.

The recipe's photos are sharp, clean and well lit; a kitchen camera's analysis stream is
blurred by motion, noisy in dim corners and compressed hard by the encoder, and the model
card's degraded-camera sets show both shipped models losing most bare faces there. This
transform applies those faults at random to the training images only (after mosaic and the
affine step, before the tensor conversion), with ranges wider and milder than the card's
test degradations so the model is not fitted to one setting. None of them moves a pixel,
so the boxes stay as they are.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from models.degrade import jpeg_artefacts, motion_blur, sensor_noise

# Ranges per fault: (low, high). Test-time degradations (models.degrade) use blur 7-13 px,
# noise sigma 10-18, JPEG quality 10-20 and light x0.2-0.35 for the single-fault sets.
BLUR_PX = (3, 11)
NOISE_SIGMA = (3.0, 15.0)
JPEG_QUALITY = (15, 70)
LIGHT_FACTOR = (0.3, 0.9)


class CameraDegradation:
    """An ultralytics transform: each fault applied independently with probability ``p``."""

    def __init__(self, p: float) -> None:
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"camera augmentation probability must be in [0, 1], got {p}")
        self.p = p

    def __call__(self, labels: dict[str, Any]) -> dict[str, Any]:
        # np.random is what ultralytics seeds per dataloader worker, so runs stay seeded.
        img = labels["img"]
        if np.random.random() < self.p:
            length = int(np.random.randint(BLUR_PX[0], BLUR_PX[1] + 1))
            img = motion_blur(img, length, float(np.random.uniform(0.0, 180.0)))
        if np.random.random() < self.p:
            factor = float(np.random.uniform(*LIGHT_FACTOR))
            img = np.clip(img.astype(np.float32) * factor, 0, 255).astype(np.uint8)
        if np.random.random() < self.p:
            sigma = float(np.random.uniform(*NOISE_SIGMA))
            img = sensor_noise(img, sigma, np.random.default_rng(np.random.randint(2**31)))
        if np.random.random() < self.p:
            img = jpeg_artefacts(img, int(np.random.randint(JPEG_QUALITY[0], JPEG_QUALITY[1] + 1)))
        labels["img"] = np.ascontiguousarray(img)
        return labels
