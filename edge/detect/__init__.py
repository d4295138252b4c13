"""Detectors: one typed ``Detections`` result; ONNX Runtime and (optional) ultralytics backends."""

from edge.detect.base import Detections, Detector

__all__ = ["Detections", "Detector"]
