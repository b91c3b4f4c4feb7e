"""The miniature foundation: the richer shape world, the memory-mapped `arrays` training format, the 32-px models,
the gates and the pretrained stand-in (`clipcomp base`), on small settings."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from conftest import run_cli

pytest.importorskip("torch")

from clipcomp.analysis.gates import GateSettings, check_gates, gate_table, require  # noqa: E402
from clipcomp.errors import ClipcompError  # noqa: E402
from clipcomp.synth import shapeworld as sw  # noqa: E402


def test_world_is_a_function_of_seed_domain_and_index():
    for d in sw.DOMAINS:
        a, ra = sw.generate(sw.DEFAULT_CLASSES, d, 24, seed=3)
        b1, rb1 = sw.generate(sw.DEFAULT_CLASSES, d, 10, seed=3)
        b2, rb2 = sw.generate(sw.DEFAULT_CLASSES, d, 14, seed=3, start=10)
        assert np.array_equal(a, np.concatenate([b1, b2]))  # any slice regenerates byte for byte
        assert ra["caption"] == rb1["caption"] + rb2["caption"]
        assert a.shape == (24, 32, 32, 3) and a.dtype == np.uint8
        assert ra["label"] == [i % 12 for i in range(24)]  # balanced classes
        assert all(c in cap for c, cap in zip(ra["class"], ra["caption"], strict=True))
    c, _ = sw.generate(sw.DEFAULT_CLASSES, "natural", 24, seed=4)
    assert not np.array_equal(a, c)


def test_natural_world_varies_and_captions_are_many():
    images, rows = sw.generate(sw.DEFAULT_CLASSES, "natural", 1200, seed=0)
    assert set(rows["bg"]) == {"dark", "light"} and len(set(rows["colour"])) == len(sw.COLOURS)
    assert set(rows["size"]) == {"small", "medium", "large"}
    assert len(set(rows["caption"])) > 500  # not 40 strings
    lum = images.reshape(len(images), -1).mean(1)
    assert lum.min() < 80 and lum.max() > 150  # dark and light images both occur
    aligned = sw.generate(sw.DEFAULT_CLASSES, "sketch", 12, seed=0, domain_words=False)[1]["caption"]
    assert not any("sketch" in c for c in aligned)


def test_renditions_differ_from_each_other_in_image_statistics():
    stats = {}
    for d in sw.DOMAINS:
        images, _ = sw.generate(sw.DEFAULT_CLASSES, d, 120, seed=1)
        g = images.astype(np.float32).mean(-1)
        stats[d] = (float((g < 100).mean()), float(images.std(-1).mean()))
    # doodle: a few dots and strokes on white; sketch: an outline with hatching — far more ink than a doodle
    assert stats["sketch"][0] > 1.5 * stats["doodle"][0]
    assert stats["clipart"][1] > 2 * stats["sketch"][1]  # colour vs grey


def test_world_bad_input_is_one_line():
    with pytest.raises(ClipcompError, match="unknown shape class.*'blob'.*available: circle"):
        sw.check(["circle", "blob"])
    with pytest.raises(ClipcompError, match="at least 2 distinct classes"):
        sw.check(["circle"])
    with pytest.raises(ClipcompError, match="unknown domain.*'quickdraw'.*available: natural"):
        sw.check(["circle", "square"], ["quickdraw"])


def test_arrays_format_trains_the_32px_model(tmp_path, capsys):
    from clipcomp.datasets import detect_format

    images, rows = sw.generate(sw.DEFAULT_CLASSES, "natural", 32, seed=0)
    sw.write_arrays(str(tmp_path / "d"), images, rows)
    assert detect_format(str(tmp_path / "d")) == "arrays"
    code, _, err = run_cli(["train", "--data", str(tmp_path / "d"), "-o", str(tmp_path / "t"), "--model",
                            "clipcomp-micro32", "--steps", "2", "--batch-size", "8", "-q"], capsys)
    assert code == 0, err
    run = json.loads((tmp_path / "t" / "run.json").read_text())
    assert run["format"] == "arrays" and run["n_items"] == 32 and run["steps_done"] == 2
    (tmp_path / "bad").mkdir()
    np.save(tmp_path / "bad" / "images.npy", images[:3])
    import shutil

    shutil.copy(tmp_path / "d" / "manifest.parquet", tmp_path / "bad" / "manifest.parquet")
    code, _, err = run_cli(["train", "--data", str(tmp_path / "bad"), "-o", str(tmp_path / "t2"), "--model",
                            "clipcomp-micro32", "--steps", "2", "--batch-size", "2", "-q"], capsys)
    assert code == 2 and "32 rows but images.npy holds 3 images" in err


def test_gates_on_constructed_predictions():
    y = np.arange(1000) % 10
    p = y.copy()
    p[:100] = (p[:100] + 1) % 10  # exactly 0.9 accuracy
    sketch_pred = np.zeros(500, np.int64)
    sketch_pred[:240] = 1  # top share 0.52: collapsed
    gates = check_gates({"natural": (y, p), "sketch": (np.zeros(500), sketch_pred)}, ["natural", "sketch"])
    by = {(g.name, g.domain): g for g in gates}
    assert by[("natural accuracy", "natural")].value == 0.9 and by[("natural accuracy", "natural")].passed
    assert by[("no collapse (top prediction share)", "natural")].value == pytest.approx(0.1)
    assert by[("no collapse (top prediction share)", "sketch")].value == pytest.approx(0.52)
    assert not by[("no collapse (top prediction share)", "sketch")].passed
    with pytest.raises(ClipcompError, match=r"no collapse \(top prediction share\) \(sketch\) = 0.520, needs < "
                                            r"0.500 \(missed by 0.020; 500 items\)"):
        require(gates)
    assert "**FAIL**" in gate_table(gates)
    few = check_gates({"natural": (y[:999], y[:999])}, ["natural"])
    assert not all(g.passed for g in few)  # perfect accuracy on 999 items is not enough items
    sims = np.full(100, 0.97)
    g = check_gates({"natural": (y, y)}, ["natural"], nn_similarity=sims)
    assert [x.passed for x in g if x.name.startswith("nearest")] == [False, False]
    for bad in ({"min_accuracy": 1.5}, {"max_collapse": -0.1}, {"min_nn_sd": float("nan")}):
        with pytest.raises(ClipcompError, match="must be in \\[0, 1\\]"):
            GateSettings(**bad)
    # graded similarity: a dense corpus (nearest cosines near 1, small sd) passes when distances are graded and
    # random pairs are far apart; a collapsed space (random pairs near 1) or flat distances fail
    from clipcomp.analysis.gates import graded_similarity_gates

    dense = 1 - np.geomspace(1e-3, 5e-2, 1000)  # nearest-train distances over a 50× range
    ok = graded_similarity_gates(dense, np.full(500, 0.1))
    assert all(x.passed for x in ok) and ok[1].value == pytest.approx(
        np.quantile(1 - dense, 0.9) / np.quantile(1 - dense, 0.1))
    flat = graded_similarity_gates(np.full(1000, 0.9), np.full(500, 0.95))
    assert [x.passed for x in flat] == [False, False]
    with pytest.raises(ClipcompError, match="min-nn-distance-ratio"):
        GateSettings(min_nn_distance_ratio=0.5)


def test_base_model_is_trained_once_gated_and_reused(tmp_path, capsys):
    from clipcomp.pipelines.base import BaseConfig, train_base

    small = dict(out=str(tmp_path / "b"), n_train=64, n_test=24, steps=2, batch_size=8, min_items=1)
    with pytest.raises(ClipcompError, match="gate failed for the base model.*natural accuracy"):
        train_base(BaseConfig(**small), progress=False)  # two steps learn nothing: the gate refuses
    gates = json.loads((tmp_path / "b" / "gates.json").read_text())
    assert gates[0]["name"] == "natural accuracy" and not gates[0]["passed"]
    ok = dict(small, min_accuracy=0.0)
    info = train_base(BaseConfig(**ok), progress=False, force=True, require_gates=False)
    assert not info["reused"] and set(info["accuracy"]) == set(sw.DOMAINS)
    assert info["gates_passed"] == all(g["passed"] for g in info["gates"])
    mtime = os.path.getmtime(info["weights"])
    again = train_base(BaseConfig(**ok), progress=False, require_gates=False)
    assert again["reused"] and os.path.getmtime(info["weights"]) == mtime  # reused, not retrained
    assert again["accuracy"] == info["accuracy"]
    with pytest.raises(ClipcompError, match="other settings"):
        train_base(BaseConfig(**dict(ok, seed=1)), progress=False)
    code, out, err = run_cli(["base", "-o", str(tmp_path / "b"), "--n-train", "64", "--n-test", "24", "--steps", "2",
                              "--batch-size", "8", "--min-items", "1", "--min-accuracy", "0", "-q"], capsys)
    assert "| natural accuracy | natural |" in out, err  # the gate table is printed either way
    assert (code == 0 and "reused" in out) or (code == 2 and "gate failed" in err)
    code, _, err = run_cli(["base", "-o", str(tmp_path / "c"), "--min-accuracy", "1.5"], capsys)
    assert code == 2 and "--min-accuracy" in err
    code, _, err = run_cli(["base", "-o", str(tmp_path / "c"), "--domains", "natural,quickdraw"], capsys)
    assert code == 2 and "unknown domain(s) 'quickdraw'" in err


def test_unicl_equals_infonce_with_distinct_labels_and_a_hand_computation_with_shared_ones():
    import torch

    from clipcomp.train.losses import make_loss

    g = torch.Generator().manual_seed(0)
    x = torch.nn.functional.normalize(torch.randn(6, 8, generator=g), dim=1)
    t = torch.nn.functional.normalize(torch.randn(6, 8, generator=g), dim=1)
    s = torch.tensor(7.0)
    distinct = make_loss("unicl")(x, t, s, labels=torch.arange(6).float())
    assert float(distinct) == pytest.approx(float(make_loss("infonce")(x, t, s)), abs=1e-5)
    y = np.array([0, 1, 0, 2, 1, 0])
    logits = 7.0 * x.numpy() @ t.numpy().T
    pos = (y[:, None] == y[None, :]).astype(float)

    def log_softmax(a, axis):
        m = a.max(axis=axis, keepdims=True)
        return a - m - np.log(np.exp(a - m).sum(axis=axis, keepdims=True))

    i2t = -((pos / pos.sum(1, keepdims=True)) * log_softmax(logits, 1)).sum(1).mean()
    t2i = -((pos / pos.sum(0, keepdims=True)) * log_softmax(logits, 0)).sum(0).mean()
    got = make_loss("unicl")(x, t, s, labels=torch.tensor(y, dtype=torch.float32))
    assert float(got) == pytest.approx((i2t + t2i) / 2, rel=1e-5)
