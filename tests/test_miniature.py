"""PMI in miniature: the co-occurrence design, its worlds, the test sets and the quickstart end to end."""

from __future__ import annotations

import json
import math
import os
from collections import Counter

import numpy as np
import pyarrow.parquet as pq
import pytest
from conftest import run_cli

from clipcomp.errors import ClipcompError
from clipcomp.pipelines.miniature import testsets
from clipcomp.pipelines.miniature.design import DEFAULT_CLASSES, DEFAULT_PARTNERS, design_pmi, joint_design, world_for
from clipcomp.synth.world import BACKGROUND, COLOUR_RGB, sample_scene

C, P = list(DEFAULT_CLASSES), list(DEFAULT_PARTNERS)


@pytest.mark.parametrize("shape,never", [((6, 6), 1), ((6, 6), 0), ((4, 6), 2), ((6, 4), 1)])
def test_graded_design_has_uniform_marginals_and_never_pairs(shape, never):
    j = joint_design(*shape, "graded", decay=0.5, never=never, seed=3)
    assert j.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(j.sum(1), 1 / shape[0], atol=1e-9)
    np.testing.assert_allclose(j.sum(0), 1 / shape[1], atol=1e-9)
    if shape[0] == shape[1]:
        assert ((j == 0).sum(1) == never).all()
    pmi = design_pmi(j)
    assert np.isneginf(pmi[j == 0]).all() and np.isfinite(pmi[j > 0]).all()
    assert np.array_equal(j, joint_design(*shape, "graded", decay=0.5, never=never, seed=3))
    assert not np.array_equal(j, joint_design(*shape, "graded", decay=0.5, never=never, seed=4))


def test_uniform_design_and_errors():
    u = joint_design(6, 6, "uniform")
    np.testing.assert_allclose(design_pmi(u), 0.0, atol=1e-12)
    with pytest.raises(ClipcompError, match="structure"):
        joint_design(6, 6, "zipf")
    with pytest.raises(ClipcompError, match="never"):
        joint_design(6, 6, "graded", never=6)
    with pytest.raises(ClipcompError, match="distinct"):
        world_for(["circle", "ring"], ["ring", "star"], joint_design(2, 2, "uniform"))
    with pytest.raises(ClipcompError, match="unknown shape"):
        world_for(["circle", "blob"], ["ring", "star"], joint_design(2, 2, "uniform"))


def test_world_draws_pairs_with_the_design_probabilities():
    j = joint_design(6, 6, "graded", decay=0.5, never=1, seed=0)
    world = world_for(C, P, j)
    rng = np.random.default_rng(0)
    n = 6000
    counts = Counter()
    for _ in range(n):
        shapes = {o.shape for o in sample_scene(world, rng).objects}
        c = [s for s in shapes if s in C]
        p = [s for s in shapes if s in P]
        assert len(c) == 1 and len(p) == 1  # one class and one partner per scene, always
        counts[(C.index(c[0]), P.index(p[0]))] += 1
    emp = np.zeros((6, 6))
    for (a, b), v in counts.items():
        emp[a, b] = v / n
    assert (emp[j == 0] == 0).all()  # never-pairs never appear
    se = np.sqrt(j * (1 - j) / n)
    assert (np.abs(emp - j) <= 5 * se + 1e-12).all()


def test_pairs_test_set_is_balanced_and_deterministic():
    world = world_for(C, P, joint_design(6, 6, "uniform"))
    a_img, a_rows = testsets.pairs(C, P, world, 3, seed=5)
    b_img, b_rows = testsets.pairs(C, P, world, 3, seed=5)
    c_img, _ = testsets.pairs(C, P, world, 3, seed=6)
    assert np.array_equal(a_img, b_img) and a_rows == b_rows and not np.array_equal(a_img, c_img)
    assert Counter(zip(a_rows["class"], a_rows["partner"], strict=True)) == {(c, p): 3 for c in C for p in P}
    bg = np.array(BACKGROUND)
    for img, cc, pc in zip(a_img, a_rows["class_colour"], a_rows["partner_colour"], strict=True):
        pix = {tuple(v) for v in img.reshape(-1, 3) if not (v == bg).all()}
        assert pix == {COLOUR_RGB[cc], COLOUR_RGB[pc]}  # exactly the two objects are drawn


def test_pasted_test_set_area_bounds_and_mask_fidelity():
    world = world_for(C, P, joint_design(6, 6, "uniform"))
    images, rows = testsets.pasted(C, P, world, 2, area_fraction=0.1, seed=0)
    res = world.resolution
    eval_colours = set(testsets.source_colours(world.colours, "eval"))
    for i, img in enumerate(images):
        x, y, w, h = rows["x"][i], rows["y"][i], rows["w"][i], rows["h"][i]
        assert x >= 0 and x + w <= res and y >= 0 and y + h <= res
        assert rows["area_fraction"][i] == pytest.approx(0.1, rel=0.15)  # integer box of a ~20 px patch
        shape, colour, _ = rows["source_image"][i].split("/")
        assert shape == rows["partner"][i] and colour in eval_colours
        # mask fidelity: the pasted pixels are the source object's colour, and nothing outside the box changed
        base_colour = np.array(COLOUR_RGB[rows["class_colour"][i]])
        box = img[y:y + h, x:x + w].reshape(-1, 3)
        src = (box == np.array(COLOUR_RGB[colour])).all(1)
        assert src.sum() / res**2 == pytest.approx(rows["mask_fraction"][i], abs=1e-9)
        outside = np.ones((res, res), bool)
        outside[y:y + h, x:x + w] = False
        vals = {tuple(v) for v in img[outside]}
        assert vals <= {tuple(BACKGROUND), tuple(base_colour)}
        if rows["overlap_pixels"][i] == 0:  # pasted away from the class object: the object is intact
            assert (img == base_colour).all(-1).sum() > 0


def test_paste_augmentation_set_is_trainable_and_disjoint_from_evaluation(tmp_path):
    from clipcomp.benchgen.paste import check_disjoint
    from clipcomp.pipelines.miniature.pipeline import QuickstartConfig, _knobs
    from clipcomp.synth.dataset import SynthDataset

    world = world_for(C, P, joint_design(6, 6, "graded"))
    testsets.paste_training_set(str(tmp_path / "aug"), C, P, world, _knobs(QuickstartConfig()), 60, 0.1, seed=0)
    ds = SynthDataset(str(tmp_path / "aug"), "train")
    assert len(ds) == 60 and ds.images(np.arange(4)).shape == (4, 64, 64, 3)
    for cap, objs in zip(ds.captions, ds.table.column("objects").to_pylist(), strict=True):
        assert objs[0]["shape"] in cap and objs[1]["shape"] not in cap  # the pasted partner is never named
    aug = pq.read_table(tmp_path / "aug" / "manifest.parquet")
    images, rows = testsets.pasted(C, P, world, 2, 0.1, seed=0)
    testsets.save_set(str(tmp_path / "ev"), images, rows, {})
    check_disjoint(pq.read_table(tmp_path / "ev" / "manifest.parquet"), aug)
    with pytest.raises(ClipcompError, match="other settings"):
        testsets.paste_training_set(str(tmp_path / "aug"), C, P, world, _knobs(QuickstartConfig()), 61, 0.1, 0)


@pytest.mark.slow
def test_quickstart_end_to_end(tmp_path, capsys):
    from clipcomp.stats import ConceptStats

    out = tmp_path / "qs"
    args = ["quickstart", "-o", str(out), "--steps", "12", "--n-train", "600", "--per-pair", "3", "--batch-size",
            "32", "--finetune-steps", "6", "--workers", "1", "-q"]
    code, stdout, err = run_cli(args, capsys)
    assert code == 0, err
    assert "PMI in miniature" in stdout
    for f in ("report.md", "pmi_curve.png", "pmi_pairs.png", "summary.json"):
        assert (out / f).stat().st_size > 0
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["results"]) == {"pmi", "control", "pmi+paste-ft"}
    stats = ConceptStats.load(out / "pmi" / "stats")
    items = pq.read_table(out / "results" / "pmi-pairs" / "items_pmi_pmi.parquet").to_pylist()
    assert len(items) == 36 * 3
    for r in items:  # PMI in the results is exactly the ConceptStats lookup
        expected = stats.pmi(r["class"], r["partner"])
        assert (r["pmi"] == expected) or (math.isnan(r["pmi"]) and expected == -math.inf)
    # the statistics come from the generated captions: a pair's count is the number of captions naming both
    caps = pq.read_table(out / "pmi" / "captions.parquet").column("caption").to_pylist()
    words = [set(c.replace(",", " ").split()) for c in caps]
    assert stats.count("circle", "ring") == sum({"circle", "ring"} <= w for w in words)
    # the PMI ordering follows the design
    j = np.array(summary["design"]["joint"])
    never = [(C[a], P[b]) for a, b in zip(*np.nonzero(j == 0), strict=True)]
    assert all(stats.count(a, b) == 0 for a, b in never)
    report = (out / "report.md").read_text()
    assert "| pmi | pairs |" in report and "control" in report
    # gates: accuracy on the model's own training world = per-pair accuracy weighted by that world's joint
    from clipcomp.pipelines.miniature.gates import quickstart_gates

    gates = {g.domain: g for g in quickstart_gates(summary, str(out), 0.9)}
    pmi_items = pq.read_table(out / "results" / "pmi-pairs" / "items.parquet").to_pylist()
    num = sum(j[C.index(r["class"]), P.index(r["partner"])] * r["correct"] for r in pmi_items)
    den = sum(j[C.index(r["class"]), P.index(r["partner"])] for r in pmi_items)
    assert gates["pmi (pairs)"].value == pytest.approx(num / den)
    control_items = pq.read_table(out / "results" / "control-pairs" / "items.parquet").to_pylist()
    assert gates["control (pairs)"].value == pytest.approx(np.mean([r["correct"] for r in control_items]))
    from collections import Counter

    share = Counter(r["pred"] for r in pmi_items).most_common(1)[0][1] / len(pmi_items)
    assert gates["pmi, pairs"].value == pytest.approx(share) and gates["pmi, pairs"].passed == (share < 0.5)
    with pytest.raises(ClipcompError, match="must be in \\[0, 1\\]"):
        quickstart_gates(summary, str(out), 1.5)
    # a second run reuses every stage: no model is retrained
    mtimes = {p: os.path.getmtime(p) for p in out.glob("*/**/final.pt")}
    code, _, err = run_cli(args, capsys)
    assert code == 0, err
    assert mtimes == {p: os.path.getmtime(p) for p in out.glob("*/**/final.pt")}
    # other settings in the same directory: refused, nothing stale is reported
    code, _, err = run_cli([*args[:-1], "--steps", "13", "-q"], capsys)
    assert code == 2 and "other settings" in err


def test_quickstart_rejects_bad_settings(tmp_path, capsys):
    code, _, err = run_cli(["quickstart", "-o", str(tmp_path), "--steps", "0"], capsys)
    assert code == 2 and "--steps" in err and "greater than or equal to 1" in err
    code, _, err = run_cli(["quickstart", "-o", str(tmp_path), "--classes", "circle,blob"], capsys)
    assert code == 2 and "blob" in err
