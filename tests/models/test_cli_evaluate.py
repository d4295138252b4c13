"""``models evaluate`` on a folder labelled by someone else: class maps and skipped files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from models.cli import parse_class_maps, summarise_skipped
from models.sources import Issue
from tests.models.helpers import write_voc

WEIGHTS = Path(__file__).resolve().parents[2] / "models" / "weights" / "mask_yolo_320.onnx"


def test_map_options_parse_and_refuse_bad_items() -> None:
    assert parse_class_maps(["Bare Face=without_mask", "hat="]) == {
        "Bare Face": "without_mask",
        "hat": None,
    }
    with pytest.raises(SystemExit, match="SOURCE=CLASS"):
        parse_class_maps(["without_mask"])


def test_skipped_summary_counts_reasons_and_says_how_to_map() -> None:
    issues = [
        Issue(Path("a.xml"), "unknown class 'bare'"),
        Issue(Path("b.xml"), "unknown class 'bare'"),
        Issue(Path("c.xml"), "unreadable image"),
    ]
    assert summarise_skipped(issues, ["with_mask", "without_mask"]) == [
        "skipped 2 file(s): unknown class 'bare' (map it to one of with_mask, without_mask: "
        "--map 'bare'=CLASS, or --map 'bare'= to drop it)",
        "skipped 1 file(s): unreadable image",
    ]


def test_evaluate_command_with_a_foreign_class_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from brightkitchen.cli import main

    folder = write_voc(tmp_path / "voc", 3, seed=2)
    for xml in (folder / "annotations").glob("*.xml"):
        xml.write_text(xml.read_text().replace(">without_mask<", ">bare face<"))
    args = ["models", "evaluate", "--data", str(folder), "--weights", str(WEIGHTS)]
    assert main([*args, "--threads", "1"]) == 0
    out = capsys.readouterr().out
    assert "skipped 2 file(s): unknown class 'bare face'" in out
    report = tmp_path / "r.json"
    argv = [*args, "--threads", "1", "--map", "bare face=without_mask", "--json", str(report)]
    assert main(argv) == 0
    data = json.loads(report.read_text())
    assert (data["images"], data["skipped"]) == (3, 0)
    assert [c["instances"] for c in data["classes"]] == [2, 2, 2]


def test_evaluate_refuses_a_missing_or_empty_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from brightkitchen.cli import main

    base = ["models", "evaluate", "--weights", str(WEIGHTS), "--threads", "1", "--data"]
    assert main([*base, str(tmp_path / "nowhere")]) != 0
    assert "no such folder" in capsys.readouterr().err
    (tmp_path / "annotations").mkdir()
    (tmp_path / "annotations" / "a.xml").write_text("<annotation><object>")
    assert main([*base, str(tmp_path)]) != 0
    assert "no labelled image could be read (malformed XML" in capsys.readouterr().err


def test_evaluate_with_a_second_stage_takes_the_classifiers_classes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from brightkitchen.cli import main
    from tests.edge.classifier_support import build_tiny_classifier
    from tests.edge.support import build_colour_model
    from tests.models.helpers import COLOURS

    folder = write_voc(tmp_path / "voc", 6, seed=3)
    detector = build_colour_model(tmp_path / "det.onnx", COLOURS, imgsz=96)
    args = ["models", "evaluate", "--data", str(folder), "--weights", str(detector)]
    args += ["--threads", "1", "--bootstrap", "50"]
    alone = tmp_path / "alone.json"
    assert main([*args, "--json", str(alone)]) == 0
    base = json.loads(alone.read_text())
    assert [c["recall"] for c in base["classes"]] == [1.0, 1.0, 1.0]  # the discs are found
    # a second stage that calls every face without_mask: the detector's boxes, its classes
    always_bare = build_tiny_classifier(tmp_path / "cls.onnx", favour=1, threshold=0.3)
    two = tmp_path / "two.json"
    assert main([*args, "--classifier", str(always_bare), "--json", str(two)]) == 0
    assert "test-colour-1+test-cls-1" in capsys.readouterr().out
    report = json.loads(two.read_text())
    assert report["conf_threshold"] == 0.3
    assert report["model"].endswith("cls.onnx")
    with_mask, bare, incorrect = report["classes"]
    others = with_mask["instances"] + incorrect["instances"]
    assert (bare["recall"], bare["tp"], bare["fp"]) == (1.0, bare["instances"], others)
    assert with_mask["tp"] == incorrect["tp"] == 0
    assert report["confusion_matrix"][1][:3] == [
        with_mask["instances"],
        bare["instances"],
        incorrect["instances"],
    ]
    assert set(report["ci"]) >= {"map50", "recall_without_mask"}


def test_evaluate_refuses_a_bad_config_or_report_path_before_running(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from brightkitchen.cli import main

    folder = write_voc(tmp_path / "voc", 2, seed=4)
    base = ["models", "evaluate", "--data", str(folder), "--weights", str(WEIGHTS)]
    assert main([*base, "--config", str(tmp_path / "nope.yaml")]) == 1
    assert "--config" in capsys.readouterr().err
    assert main([*base, "--json", str(tmp_path)]) == 1  # a folder: said before the run
    err = capsys.readouterr().err
    assert "a folder; give a file name" in err


def test_skipped_boxes_that_differ_only_in_numbers_are_one_line() -> None:
    issues = [
        Issue(Path(f"{k}.xml"), f"box with_mask ({-30 - k},105,40,160) outside the 96x96 image")
        for k in range(3)
    ]
    (line,) = summarise_skipped(issues, ["with_mask"])
    assert line.startswith("skipped 3 file(s): box with_mask (-30,105,40,160) outside")
    assert "and the like" in line
    assert "0-1 fractions" in line
