"""The eval commands end to end, as the README shows them, on the bundled sample and on ../shared data."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

if importlib.util.find_spec("open_clip") is None:  # not importorskip: open_clip needs the torchvision step first
    pytest.skip("open_clip not installed (pip install 'clipcomp[eval]')", allow_module_level=True)

from conftest import run_cli, shared_path  # noqa: E402

SAMPLE = Path(__file__).parent / "data" / "coco_sample"


def test_zeroshot_cli_on_manifest(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("CLIPCOMP_CACHE", str(tmp_path / "cache"))
    code, out, err = run_cli(["eval", "zeroshot", str(SAMPLE / "labels.csv"), "-o", str(tmp_path / "zs"),
                          "--templates", "simple", "--loader-workers", "0"], capsys)
    assert code == 0, err
    summary = json.loads((tmp_path / "zs" / "summary.json").read_text())
    assert summary["task"] == "zeroshot_classification" and summary["model"] == "clipcomp-tiny"
    assert pq.read_table(tmp_path / "zs" / "items.parquet").num_rows == 18
    assert "acc1" in out


def test_retrieval_and_sugarcrepe_on_coco_mini_then_pmi(tmp_path, capsys, monkeypatch, cc3m_path):
    coco = shared_path("coco_mini")
    monkeypatch.setenv("CLIPCOMP_CACHE", str(tmp_path / "cache"))
    code, _, err = run_cli(["eval", "retrieval", str(coco / "annotations" / "captions_val2017.json"),
                        "-o", str(tmp_path / "ret"), "--loader-workers", "0"], capsys)
    assert code == 0, err
    s = json.loads((tmp_path / "ret" / "summary.json").read_text())
    assert s["metrics"]["n_images"] == 79 and s["metrics"]["n_captions"] == 395
    code, _, err = run_cli(["eval", "select", str(shared_path("sugarcrepe")), "--images", str(coco / "val2017"),
                        "--skip-bad", "-o", str(tmp_path / "sc"), "--loader-workers", "0"], capsys)
    assert code == 0, err
    s = json.loads((tmp_path / "sc" / "summary.json").read_text())
    assert s["n_items"] == 211 and s["n_skipped"] == 7511 - 211
    assert len(json.loads((tmp_path / "sc" / "details" / "skipped.json").read_text())) == 7511 - 211
    # one CLIP_benchmark-style result per SugarCrepe subset beside the overall summary
    subsets = sorted(p.name for p in (tmp_path / "sc").glob("summary_*.json"))
    assert len(subsets) == 7 and json.loads((tmp_path / "sc" / subsets[0]).read_text())["dataset"].startswith(
        "sugar_crepe/")
    code, _, err = run_cli(["stats", "build", cc3m_path, "-o", str(tmp_path / "st"), "-q"], capsys)
    assert code == 0, err
    code, out, err = run_cli(["analyze", "pmi", str(tmp_path / "sc"), "--stats", str(tmp_path / "st"),
                          "-o", str(tmp_path / "an"), "--boot", "100"], capsys)
    assert code == 0, err
    assert (tmp_path / "an" / "report.md").exists() and (tmp_path / "an" / "pmi_curve.png").exists()


def test_missing_image_error_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("CLIPCOMP_CACHE", str(tmp_path / "cache"))
    (tmp_path / "m.csv").write_text(f"path,label\n{SAMPLE / 'images' / 'missing.jpg'},cat\n"
                                    f"{next((SAMPLE / 'images').iterdir())},dog\n")
    code, _, err = run_cli(["eval", "zeroshot", str(tmp_path / "m.csv"), "-o", str(tmp_path / "o"),
                        "--loader-workers", "0"], capsys)
    assert code == 2
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "missing.jpg: image not found" in lines[0]
    code, _, err = run_cli(["eval", "zeroshot", str(tmp_path / "m.csv"), "-o", str(tmp_path / "o"), "--skip-bad",
                        "--loader-workers", "0"], capsys)
    assert code == 0
    assert json.loads((tmp_path / "o" / "details" / "skipped.json").read_text())[0]["reason"] == "not found"


def test_unknown_model_cli(tmp_path, capsys):
    code, _, err = run_cli(["eval", "zeroshot", str(SAMPLE / "labels.csv"), "--model", "ViT-B-3", "-o",
                        str(tmp_path / "o")], capsys)
    assert code == 2 and "unknown model 'ViT-B-3'" in err and "close matches" in err


def test_torchvision_importable_through_compat():
    from clipcomp.models.compat import PATCHED, ensure_torchvision

    ensure_torchvision()
    import torchvision
    import torchvision.transforms  # noqa: F401

    if torchvision.extension._has_ops():
        assert PATCHED == []  # nothing is touched where the compiled ops load
