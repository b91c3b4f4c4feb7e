"""Synthetic world: renderer pixels match the ground truth, caption knobs hit their rates, datasets are
deterministic, configs fail clearly."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pyarrow.parquet as pq
import pytest

from clipcomp.errors import ClipcompError
from clipcomp.synth import CaptionKnobs, WorldConfig, caption_scene, render_scene, sample_scene
from clipcomp.synth.captions import full_caption, left_to_right
from clipcomp.synth.world import BACKGROUND, COLOUR_RGB, SHAPES_AVAILABLE, SIZE_FRACTION, Obj, Scene


def test_renderer_ground_truth_matches_pixels():
    cfg = WorldConfig(shapes=list(SHAPES_AVAILABLE)[:10], min_objects=3, max_objects=4)
    rng = np.random.default_rng(0)
    for _ in range(150):
        scene = sample_scene(cfg, rng)
        img = render_scene(scene)
        assert img.shape == (64, 64, 3) and img.dtype == np.uint8
        covered = np.zeros((64, 64), bool)
        for o in scene.objects:
            mask = (img == np.array(COLOUR_RGB[o.colour], np.uint8)).all(axis=2)
            ys, xs = np.nonzero(mask)
            assert ys.size > 0.25 * o.extent**2 * (0.5 if o.shape == "semicircle" else 1.0)
            # every pixel of the object's colour lies inside its ground-truth box ...
            assert xs.min() >= o.x and xs.max() <= o.x + o.extent - 1
            assert ys.min() >= o.y and ys.max() <= o.y + o.extent - 1
            # ... and the object spans its box horizontally
            assert xs.max() - xs.min() + 1 >= 0.8 * o.extent
            covered |= mask
        # everything else is background: no overlap, nothing stray
        assert (img[~covered] == np.array(BACKGROUND, np.uint8)).all()
    # boxes never overlap
    for _ in range(100):
        objs = sample_scene(cfg, rng).objects
        for a in objs:
            for b in objs:
                if a is not b:
                    assert a.x + a.extent <= b.x or b.x + b.extent <= a.x or a.y + a.extent <= b.y or \
                        b.y + b.extent <= a.y


def test_large_objects_have_more_pixels_than_small():
    for shape in ("circle", "star", "cross", "triangle"):
        small = Scene((Obj(shape, "red", "small", 5, 5, round(SIZE_FRACTION["small"] * 64)),), 64)
        large = Scene((Obj(shape, "red", "large", 5, 5, round(SIZE_FRACTION["large"] * 64)),), 64)
        count = [int((render_scene(s) == np.array(COLOUR_RGB["red"], np.uint8)).all(axis=2).sum())
                 for s in (small, large)]
        assert count[1] > 2 * count[0]


def _captions(knobs, n=4000, seed=1):
    cfg = WorldConfig()
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        s = sample_scene(cfg, rng)
        out.append((s, caption_scene(s, knobs, rng)))
    return out


def _within(measured, p, n, sigmas=4.0):
    return abs(measured - p) <= sigmas * math.sqrt(max(p * (1 - p), 1e-9) / n) + 1e-9


@pytest.mark.parametrize("density", [0.0, 0.3, 0.8, 1.0])
def test_attribute_density_rate(density):
    caps = _captions(CaptionKnobs(attribute_density=density))
    named = [len(a) for _, t in caps for a in t.attributes]
    n = 2 * len(named)
    assert _within(sum(named) / n, density, n)
    for s, t in caps[:200]:  # the text says exactly what the ground truth says
        for m, attrs in zip(t.mentioned, t.attributes, strict=True):
            o = s.objects[m]
            assert o.shape in t.caption
            assert (o.colour in t.caption) == ("colour" in attrs)


@pytest.mark.parametrize("completeness", [0.0, 0.25, 0.7, 1.0])
def test_completeness_rate(completeness):
    caps = _captions(CaptionKnobs(completeness=completeness))
    others = [(len(t.mentioned) - 1, len(s.objects) - 1) for s, t in caps]
    n = sum(o for _, o in others)
    assert _within(sum(m for m, _ in others) / n, completeness, n)
    assert all(t.anchor in t.mentioned for _, t in caps)


@pytest.mark.parametrize("bias", [0.0, 0.5, 1.0])
def test_saliency_bias_rate(bias):
    caps = _captions(CaptionKnobs(saliency_bias=bias, completeness=0.0))
    eligible = []
    for s, t in caps:
        sizes = {o.size for o in s.objects}
        if len(sizes) > 1:  # a scene with both large and smaller objects
            eligible.append(s.objects[t.anchor].size == "large")
    assert _within(sum(eligible) / len(eligible), bias, len(eligible))
    assert all(len(t.mentioned) == 1 for _, t in caps)


@pytest.mark.parametrize("shuffle", [0.0, 0.6])
def test_order_shuffle_rate(shuffle):
    caps = _captions(CaptionKnobs(order_shuffle=shuffle))
    unsorted = [t.mentioned != sorted(t.mentioned, key=lambda i: (s.objects[i].x, s.objects[i].y))
                for s, t in caps]
    expected = np.mean([shuffle * (1 - 1 / math.factorial(len(t.mentioned))) for _, t in caps])
    assert abs(np.mean(unsorted) - expected) < 0.03


def test_full_caption_is_left_to_right_with_all_attributes():
    s = Scene((Obj("star", "blue", "large", 40, 3, 23), Obj("circle", "orange", "small", 2, 30, 14)), 64)
    assert left_to_right(s) == [1, 0]
    assert full_caption(s) == "a small orange circle and a large blue star"


def test_cooccurrence_matrix_controls_pairs():
    shapes = ["circle", "square", "triangle", "star"]
    m = [[1, 1, 0, 1], [1, 1, 1, 0], [0, 1, 1, 1], [1, 0, 1, 1]]  # circle never with triangle, square never with star
    cfg = WorldConfig(shapes=shapes, colours=["red", "green", "blue", "yellow"], min_objects=2, max_objects=2,
                      cooccurrence=m)
    rng = np.random.default_rng(0)
    pairs = Counter(frozenset(o.shape for o in sample_scene(cfg, rng).objects) for _ in range(2000))
    assert frozenset({"circle", "triangle"}) not in pairs and frozenset({"square", "star"}) not in pairs
    assert pairs[frozenset({"circle", "square"})] > 100


def test_world_validation():
    with pytest.raises(ClipcompError, match="need at least that many shapes and colours"):
        WorldConfig(shapes=["circle", "square"], min_objects=3, max_objects=3).validate()
    with pytest.raises(ClipcompError, match="unknown 'blurple'"):
        WorldConfig(colours=["red", "blurple", "green", "blue"]).validate()
    with pytest.raises(ClipcompError, match="not a probability"):
        CaptionKnobs(completeness=1.5).validate()
    with pytest.raises(ClipcompError, match="do not fit"):
        WorldConfig(sizes=["huge"], min_objects=4, max_objects=4, resolution=32).validate()


def test_dataset_deterministic_parallel_and_resumable(tmp_path):
    from clipcomp.synth.dataset import DatasetSpec, SynthDataset, generate

    world, knobs = WorldConfig(), CaptionKnobs(attribute_density=0.5)
    a = generate(world, knobs, DatasetSpec(out=str(tmp_path / "a"), n_train=300, n_test=50, shard_size=64),
                 progress=False)
    generate(world, knobs, DatasetSpec(out=str(tmp_path / "b"), n_train=300, n_test=50, shard_size=64, workers=2),
             progress=False)
    ta, tb = (pq.read_table(tmp_path / x / "manifest.parquet") for x in ("a", "b"))
    assert ta.equals(tb) and a["n_shards"] == 6
    da, db = SynthDataset(str(tmp_path / "a")), SynthDataset(str(tmp_path / "b"))
    assert np.array_equal(da.images(np.arange(300)), db.images(np.arange(300)))
    # the manifest's ground truth renders to the stored pixels
    scenes = da.scenes()
    assert all(np.array_equal(render_scene(scenes[i]), da.images(np.array([i]))[0]) for i in range(0, 300, 37))
    with pytest.raises(ClipcompError, match="other settings"):
        generate(world, CaptionKnobs(), DatasetSpec(out=str(tmp_path / "a"), n_train=300, n_test=50, shard_size=64),
                 progress=False)


def test_hard_negatives_use_only_the_worlds_vocabulary(tmp_path):
    """Every word of every negative caption is a word some positive caption of the world can use (issue: ~15%
    of default-world negatives named colours no positive ever used)."""
    import pyarrow.parquet as pq

    from clipcomp.synth import CaptionKnobs, WorldConfig
    from clipcomp.synth.dataset import DatasetSpec, generate
    from clipcomp.synth.world import COLOUR_RGB, SHAPES_AVAILABLE

    world = WorldConfig(shapes=["circle", "square", "triangle", "star"], colours=["red", "blue", "green"],
                        max_objects=3)
    knobs = CaptionKnobs(attribute_density=0.5, completeness=0.6)
    generate(world, knobs, DatasetSpec(out=str(tmp_path / "d"), n_train=2000, n_test=0), progress=False)
    t = pq.read_table(tmp_path / "d" / "manifest.parquet")
    positive_words = {w for c in t.column("caption").to_pylist() for w in c.split()}
    negatives = t.column("negative_caption").to_pylist()
    foreign = (set(COLOUR_RGB) - set(world.colours)) | (set(SHAPES_AVAILABLE) - set(world.shapes))
    used = {w for c in negatives for w in c.split()}
    assert not used & foreign
    assert used <= positive_words | {"s"}  # plural forms are built from the same shape words
    kinds = set(t.column("negative_kind").to_pylist())
    assert kinds == {"swap_colour", "replace_colour", "replace_shape"}
    assert all(n != c for n, c in zip(negatives, t.column("caption").to_pylist(), strict=True))


def test_render_styles_are_a_knob_of_synth_generate(tmp_path):
    import pyarrow.parquet as pq

    from clipcomp.synth import CaptionKnobs, WorldConfig
    from clipcomp.synth.dataset import DatasetSpec, SynthDataset, generate

    world = WorldConfig(styles={"natural": 1.0, "sketch": 1.0, "quickdraw": 2.0})
    generate(world, CaptionKnobs(), DatasetSpec(out=str(tmp_path / "d"), n_train=200, n_test=0), progress=False)
    t = pq.read_table(tmp_path / "d" / "manifest.parquet")
    styles = t.column("style").to_pylist()
    assert set(styles) == {"natural", "sketch", "quickdraw"} and 70 < styles.count("quickdraw") < 130
    ds = SynthDataset(str(tmp_path / "d"))
    imgs = ds.images(np.arange(200))
    qd = imgs[[s == "quickdraw" for s in styles]]
    nat = imgs[[s == "natural" for s in styles]]
    assert qd.mean() > 200 and nat.mean() < 100  # white paper with thin strokes vs a dark photo-like scene
    flat = WorldConfig()
    generate(flat, CaptionKnobs(), DatasetSpec(out=str(tmp_path / "f"), n_train=10, n_test=0), progress=False)
    assert set(pq.read_table(tmp_path / "f" / "manifest.parquet").column("style").to_pylist()) == {"flat"}
