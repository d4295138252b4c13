"""The shared ONNX Runtime session opener: clear errors that name what failed to load."""

from __future__ import annotations

from pathlib import Path

import pytest

from bkcommon.errors import ModelError
from edge.detect.ort_session import cpu_session


def test_a_missing_file_is_named_with_what_it_was_for(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"classifier file not found: .*absent\.onnx"):
        cpu_session(tmp_path / "absent.onnx", threads=1, spinning=False, what="classifier")


def test_a_file_that_is_not_onnx_is_refused_by_name(tmp_path: Path) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(ModelError, match=r"cannot load model .*bad\.onnx"):
        cpu_session(bad, threads=1, spinning=False, what="model")
