"""`clipcomp stats knobs`: the lab's knobs measured on captions — exact on constructed cases, recovering the
settings of synthetic captions whose knobs are known, and on real COCO captions with their instances."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import SHARED, run_cli

pytest.importorskip("spacy")

from clipcomp.analysis.caption_knobs import (  # noqa: E402
    COCO_ALIASES,
    COCO_SENSES,
    CategoryMatcher,
    ImageObjects,
    caption_knobs,
    synthetic_knobs,
)
from clipcomp.nlp import nlp  # noqa: E402
from clipcomp.synth.captions import CaptionKnobs  # noqa: E402

SAMPLE = Path(__file__).parent / "data" / "coco_sample"


def test_one_caption_measured_by_hand():
    cats = ["person", "dog", "bench", "car"]
    m = CategoryMatcher(cats, COCO_ALIASES, COCO_SENSES)
    objs = ImageObjects(["person", "dog", "bench", "car", "car"], [900.0, 300.0, 5000.0, 50.0, 60.0],
                        [10.0, 40.0, 80.0, 5.0, 7.0])
    row = caption_knobs(nlp()("A young man and his small brown puppy sit on a bench."), objs, m)
    # man → person, puppy → dog (WordNet hyponyms), bench; "young", "small", "brown" modify named objects
    assert row["n_named"] == 3 and row["n_annotated"] == 4 and row["completeness"] == 0.75
    assert row["n_attributes"] == 3 and row["attributes_per_object"] == pytest.approx(1.0)
    assert row["largest_named"] is True  # the bench (area 5000) is named
    assert row["largest_chance"] == pytest.approx(0.75)  # 3 of 4 categories drawn at random include it
    assert row["left_to_right"] is True  # person (x 10), dog (40), bench (80) in that order
    row = caption_knobs(nlp()("A bench next to a dog and a man."), objs, m)
    assert row["left_to_right"] is False
    assert caption_knobs(nlp()("A bench."), objs, m)["left_to_right"] is None  # one category: no order


@pytest.mark.parametrize("knobs,check", [
    (CaptionKnobs(completeness=1.0, order_shuffle=0.0), lambda s: s["completeness"]["mean"] > 0.97
     and s["left_to_right"]["mean"] > 0.97),
    (CaptionKnobs(completeness=0.2, saliency_bias=1.0), lambda s: s["largest_named"]["mean"] > 0.97
     and s["largest_named"]["mean"] - s["largest_chance"]["mean"] > 0.2 and s["completeness"]["mean"] < 0.6),
    (CaptionKnobs(completeness=0.2, saliency_bias=0.0), lambda s: s["largest_named"]["mean"]
     < s["largest_chance"]["mean"] - 0.1),
])
def test_synthetic_captions_land_where_their_knobs_put_them(knobs, check):
    assert check(synthetic_knobs(knobs, n=300, seed=1))


def test_attribute_density_orders_the_lab_settings():
    dense = synthetic_knobs(CaptionKnobs(attribute_density=1.0), n=200)["attributes_per_object"]["mean"]
    sparse = synthetic_knobs(CaptionKnobs(attribute_density=0.25), n=200)["attributes_per_object"]["mean"]
    assert dense > 1.0 > 0.6 > sparse > 0.1


def test_stats_knobs_on_coco_captions_with_instances_and_bad_inputs(tmp_path, capsys):
    code, out, err = run_cli(["stats", "knobs", str(SAMPLE / "captions_val2017.json"), "--instances",
                              str(SAMPLE / "instances_val2017.json"), "-o", str(tmp_path / "k"), "-q"], capsys)
    assert code == 0, err
    s = json.loads((tmp_path / "k" / "knobs.json").read_text())
    n = len(json.loads((SAMPLE / "captions_val2017.json").read_text())["annotations"])
    assert s["n_captions"] == n and 0.2 < s["completeness"]["mean"] < 1.0
    assert s["largest_named"]["n"] > 0 and "| captions_val2017.json |" in out
    import pyarrow.parquet as pq

    t = pq.read_table(tmp_path / "k" / "captions.parquet")
    assert t.num_rows == n and {"caption", "completeness", "largest_named", "left_to_right"} <= set(t.column_names)
    # two worker processes (rows measured in the workers, chunks kept in order): the same table
    import clipcomp.analysis.caption_knobs as ck

    chunk, ck.CHUNK = ck.CHUNK, 7  # several chunks from the small sample
    try:
        code, _, err = run_cli(["stats", "knobs", str(SAMPLE / "captions_val2017.json"), "--instances",
                                str(SAMPLE / "instances_val2017.json"), "-o", str(tmp_path / "k2"), "-q",
                                "--workers", "2"], capsys)
    finally:
        ck.CHUNK = chunk
    assert code == 0, err
    assert pq.read_table(tmp_path / "k2" / "captions.parquet").equals(t)
    # a text corpus asked for completeness, an instances file without objects: one line, exit 2
    (tmp_path / "caps.txt").write_text("a dog on a bench\n")
    code, _, err = run_cli(["stats", "knobs", str(tmp_path / "caps.txt"), "--instances",
                            str(SAMPLE / "instances_val2017.json"), "-o", str(tmp_path / "x")], capsys)
    assert code == 2 and "--instances: give its COCO captions JSON" in err
    (tmp_path / "inst.json").write_text(json.dumps({"images": []}))
    code, _, err = run_cli(["stats", "knobs", str(SAMPLE / "captions_val2017.json"), "--instances",
                            str(tmp_path / "inst.json"), "-o", str(tmp_path / "y")], capsys)
    assert code == 2 and "completeness needs object annotations" in err and len(err.strip().splitlines()) == 1


def test_stats_knobs_on_a_text_corpus(tmp_path, capsys):
    caps = tmp_path / "caps.txt"
    caps.write_text("a small red car parked on a quiet street\nan old man with a grey beard\nsunset\n")
    code, out, err = run_cli(["stats", "knobs", str(caps), "-o", str(tmp_path / "k"), "-q"], capsys)
    assert code == 0, err
    s = json.loads((tmp_path / "k" / "knobs.json").read_text())
    assert s["n_captions"] == 3 and s["completeness"]["mean"] is None
    assert s["attributes_per_object"]["n"] == 3  # "sunset" is a noun chunk too


@pytest.mark.skipif(not (SHARED / "coco_mini").exists(), reason="needs ../shared/data/coco_mini")
def test_shared_coco_shows_a_saliency_bias(tmp_path):
    from clipcomp.analysis.caption_knobs import measure_knobs

    ann = SHARED / "coco_mini" / "annotations"
    s = measure_knobs(str(ann / "captions_val2017.json"), str(tmp_path / "k"),
                      instances=str(ann / "instances_val2017.json"), progress=False)
    assert s["largest_named"]["ci"][0] > s["largest_chance"]["ci"][1]  # a largest object is named more than chance
