"""Pasted-object edits on real COCO images: area fraction, position bounds, mask fidelity, disjoint sources."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from conftest import shared_path
from PIL import Image

from clipcomp.benchgen import paste
from clipcomp.errors import ClipcompError

BUNDLED = Path(__file__).parent / "data" / "coco_sample"


@pytest.fixture(scope="module", params=["bundled", "shared"])
def coco(request):
    """Real COCO images with their instance polygons: the 18-image excerpt kept in the repository (polygons
    scaled with the images), and coco_mini from ../shared when present."""
    if request.param == "bundled":
        objs = paste.coco_objects(str(BUNDLED / "instances_val2017.json"), str(BUNDLED / "images"), min_area=400)
        assert len(objs) > 20
        return BUNDLED / "images", objs
    root = shared_path("coco_mini")
    objs = paste.coco_objects(str(root / "annotations" / "instances_val2017.json"), str(root / "val2017"),
                              min_area=4000)
    assert len(objs) > 50
    return root / "val2017", objs


def test_cut_out_follows_the_polygon(coco):
    _, objs = coco
    src = objs[0]
    rgba = paste.cut_out(src)
    full = Image.open(src.image).convert("RGB")
    mask = paste.polygon_mask(full.size, src.polygons)
    ys, xs = np.nonzero(mask)
    assert rgba.size == (xs.max() - xs.min() + 1, ys.max() - ys.min() + 1)
    alpha = np.asarray(rgba.getchannel("A")) > 0
    assert np.array_equal(alpha, mask[ys.min():ys.max() + 1, xs.min():xs.max() + 1])
    rgb = np.asarray(rgba.convert("RGB"))
    crop = np.asarray(full)[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
    assert np.array_equal(rgb[alpha], crop[alpha])


@pytest.mark.parametrize("fraction,position", [(0.1, "random"), (0.05, "grid"), (0.25, "random")])
def test_area_fraction_bounds_and_mask(tmp_path, coco, fraction, position):
    root, objs = coco
    bases = [(str(p), "scene") for p in sorted(root.iterdir())[:6]]
    table = paste.build(bases, objs, str(tmp_path / "out"), area_fraction=fraction, position=position, seed=1)
    for r in table.to_pylist():
        base = Image.open(r["base_image"])
        W, H = base.size
        assert r["x"] >= 0 and r["x"] + r["w"] <= W and r["y"] >= 0 and r["y"] + r["h"] <= H
        assert r["area_fraction"] == pytest.approx(fraction, rel=0.05)
        edited = np.asarray(Image.open(tmp_path / "out" / r["path"]).convert("RGB")).astype(int)
        orig = np.asarray(base.convert("RGB")).astype(int)
        changed = (edited != orig).any(axis=2)
        outside = np.ones((H, W), bool)
        outside[r["y"]:r["y"] + r["h"], r["x"]:r["x"] + r["w"]] = False
        assert not changed[outside].any()  # nothing outside the pasted box is touched
        assert 0 < r["mask_fraction"] <= r["area_fraction"]


def test_deterministic_and_disjoint_sources(tmp_path, coco):
    root, objs = coco
    ev, tr = paste.split_sources(objs, 0.5, seed=0)
    assert ev and tr and not ({s.image for s in ev} & {s.image for s in tr})
    bases = [(str(p), "scene") for p in sorted(root.iterdir())[:4]]
    a = paste.build(bases, ev, str(tmp_path / "a"), seed=3)
    b = paste.build(bases, ev, str(tmp_path / "b"), seed=3)
    assert a.equals(b)
    t = paste.build(bases, tr, str(tmp_path / "t"), seed=3)
    paste.check_disjoint(a, t)
    with pytest.raises(ClipcompError, match="both for evaluation and for training"):
        paste.check_disjoint(a, a)
    assert pq.read_table(tmp_path / "a" / "manifest.parquet").num_rows == 4
