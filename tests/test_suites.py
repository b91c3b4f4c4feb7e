"""Compositionality suites: each loader reads a sample in its official format (built here from the real COCO
sample images and captions), Winoground scoring is exact on constructed cases, COCO-Order is built from real
COCO captions, the linear probe works, and `clipcomp eval suites` writes one table."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import SHARED, run_cli

pytest.importorskip("torch")

from clipcomp.datasets.aro import coco_order, load_vg, order_items  # noqa: E402
from clipcomp.datasets.sugarcrepe_pp import load_sugarcrepe_pp  # noqa: E402
from clipcomp.datasets.valse import load_valse  # noqa: E402
from clipcomp.datasets.winoground import load_winoground  # noqa: E402
from clipcomp.errors import ClipcompError  # noqa: E402
from clipcomp.tasks.winoground import group_scores  # noqa: E402

SAMPLE = Path(__file__).parent / "data" / "coco_sample"
IMAGES = SAMPLE / "images"


def _items():
    d = json.loads((SAMPLE / "captions_val2017.json").read_text())
    files = {im["id"]: im["file_name"] for im in d["images"]}
    out = {}
    for a in d["annotations"]:
        out.setdefault(files[a["image_id"]], []).append(a["caption"].strip())
    return sorted(out.items())


def test_winoground_group_scores_on_constructed_cases():
    # s[group, caption, image]
    s = np.array([
        [[0.9, 0.1], [0.2, 0.8]],  # everything right
        [[0.9, 0.95], [0.2, 0.8]],  # image 1 prefers caption 0 → text ok? c1 on i1 0.8 > c0 on i1 0.95? no
        [[0.5, 0.4], [0.6, 0.7]],  # text: i0 prefers c1 (0.6 > 0.5) → text wrong; image: c0 i0 > c0 i1, c1 i1 > c1 i0
        [[0.5, 0.5], [0.1, 0.9]],  # tie on caption 0 across images → image score fails (strict)
    ])
    text, image, group = group_scores(s)
    assert text.tolist() == [True, False, False, True]
    assert image.tolist() == [True, False, True, False]
    assert group.tolist() == [True, False, False, False]


def test_winoground_loader_and_scores(tmp_path):
    items = _items()
    lines = []
    for k in range(4):
        (a, ca), (b, cb) = items[2 * k], items[2 * k + 1]
        lines.append(json.dumps({"id": k, "caption_0": ca[0], "caption_1": cb[0], "image_0": Path(a).stem,
                                 "image_1": Path(b).stem, "tag": "Object", "secondary_tag": "",
                                 "num_main_preds": 1, "collapsed_tag": "Object"}))
    (tmp_path / "images").mkdir()
    for name, _ in items[:8]:
        from PIL import Image

        Image.open(IMAGES / name).convert("RGB").save(tmp_path / "images" / f"{Path(name).stem}.png")
    (tmp_path / "examples.jsonl").write_text("\n".join(lines) + "\n")
    data = load_winoground(str(tmp_path / "examples.jsonl"))
    assert len(data.ids) == 4 and all(Path(p).exists() for pair in data.images for p in pair)
    from clipcomp.pipelines.suites import eval_suite
    from clipcomp.tasks.run import ModelSpec

    summary = eval_suite("winoground", str(tmp_path / "examples.jsonl"), str(tmp_path / "out"),
                         spec=ModelSpec(model="clipcomp-micro", cache_dir=None), progress=False)
    m = summary["metrics"]
    assert {"text_score", "image_score", "group_score"} <= set(m)
    assert m["group_score"] <= min(m["text_score"], m["image_score"])
    (tmp_path / "bad.jsonl").write_text('{"id": 0, "caption_0": "x"}\n')
    with pytest.raises(ClipcompError, match="lacks caption_1, image_0, image_1"):
        load_winoground(str(tmp_path / "bad.jsonl"))


def test_sugarcrepe_pp_loader_and_scoring(tmp_path):
    items = _items()
    obj = {str(i): {"filename": name, "caption": caps[0], "caption2": caps[1],
                    "negative_caption": caps[0].replace("a ", "two ", 1)} for i, (name, caps) in enumerate(items)}
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "swap_obj.json").write_text(json.dumps(obj))
    data = load_sugarcrepe_pp([str(suite)], str(IMAGES))
    assert len(data.ids) == len(items) and data.subsets[0] == "swap_obj"
    from clipcomp.pipelines.suites import eval_suite, summary_columns
    from clipcomp.tasks.run import ModelSpec

    eval_suite("sugarcrepe++", str(suite), str(tmp_path / "out"), str(IMAGES),
               ModelSpec(model="clipcomp-micro", cache_dir=None), progress=False)
    cols = summary_columns("sugarcrepe++", str(tmp_path / "out"))
    assert {"sugarcrepe++/itt", "sugarcrepe++/tot", "sugarcrepe++/swap_obj/itt"} <= set(cols)
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "x.json").write_text(json.dumps({"0": {"filename": "a.jpg", "caption": "c"}}))
    with pytest.raises(ClipcompError, match="caption2, negative_caption"):
        load_sugarcrepe_pp([str(tmp_path / "bad")], str(IMAGES))


def test_aro_vg_relation_and_attribution_crop_their_boxes(tmp_path):
    items = _items()
    rel = [{"image_id": Path(n).stem, "image_path": n, "bbox_x": 5, "bbox_y": 6, "bbox_w": 40, "bbox_h": 30,
            "true_caption": "the cup is on the table", "false_caption": "the table is on the cup",
            "relation_name": "on"} for n, _ in items[:3]]
    (tmp_path / "visual_genome_relation.json").write_text(json.dumps(rel))
    data = load_vg(str(tmp_path / "visual_genome_relation.json"), str(IMAGES), str(tmp_path / "crops"), "relation")
    from PIL import Image

    assert len(data.ids) == 3 and data.subsets == ["on"] * 3
    assert all(Image.open(p).size == (40, 30) for p in data.paths)
    att = [{**r, "attributes": ["white", "black"], "true_caption": "the white cup and the black table",
            "false_caption": "the black cup and the white table"} for r in rel]
    (tmp_path / "visual_genome_attribution.json").write_text(json.dumps(att))
    a = load_vg(str(tmp_path / "visual_genome_attribution.json"), str(IMAGES), str(tmp_path / "crops"),
                "attribution")
    assert a.subsets == ["white_black"] * 3
    (tmp_path / "bad.json").write_text(json.dumps([{"image_path": "x.jpg"}]))
    with pytest.raises(ClipcompError, match="lacks bbox_x"):
        load_vg(str(tmp_path / "bad.json"), str(IMAGES), str(tmp_path / "crops"))


def test_valse_loader(tmp_path):
    items = _items()
    obj = {f"v{i}": {"dataset": "coco2017", "image_file": name, "caption": caps[0],
                     "foils": [caps[0].replace("a ", "no ", 1)], "classes": None}
           for i, (name, caps) in enumerate(items[:5])}
    (tmp_path / "existence.json").write_text(json.dumps(obj))
    data = load_valse([str(tmp_path / "existence.json")], str(IMAGES))
    assert len(data.ids) == 5 and set(data.subsets) == {"existence"} and len(data.negatives[0]) == 1
    (tmp_path / "bad.json").write_text(json.dumps({"x": {"caption": "c"}}))
    with pytest.raises(ClipcompError, match="VALSE format"):
        load_valse([str(tmp_path / "bad.json")], str(IMAGES))


def test_order_perturbations_keep_the_words_and_change_the_order():
    caption = "A large brown dog is sleeping on a soft red couch near the window."
    opts = order_items([caption])[0]
    assert len(opts) == 5 and opts[0] == "a large brown dog is sleeping on a soft red couch near the window"
    for p in opts[1:]:
        assert sorted(p.split()) == sorted(opts[0].split())
    assert sum(p != opts[0] for p in opts[1:]) >= 3
    assert order_items([caption]) == order_items([caption])  # ARO's seed: the same texts every run


def test_coco_order_from_the_sample_captions():
    data = coco_order(str(SAMPLE / "captions_val2017.json"), str(IMAGES))
    n_captions = len(json.loads((SAMPLE / "captions_val2017.json").read_text())["annotations"])
    assert len(data.ids) == n_captions and all(len(n) == 4 for n in data.negatives)  # every caption, as ARO
    assert data.ties_correct
    # the same characters in another order (ARO's tokenizers may split "man's" into "man 's")
    assert all(sorted(n.replace(" ", "")) == sorted(p.replace(" ", ""))
               for p, ns in zip(data.positives, data.negatives, strict=True) for n in ns)


@pytest.mark.skipif(not (SHARED / "coco_mini").exists(), reason="needs ../shared/data/coco_mini")
def test_coco_order_from_the_shared_coco_captions():
    ann = SHARED / "coco_mini" / "annotations" / "captions_val2017.json"
    data = coco_order(str(ann), str(SHARED / "coco_mini" / "val2017"))
    assert len(data.ids) >= 70 and all(Path(p).exists() for p in data.paths)


def test_eval_suites_writes_one_table(tmp_path, capsys):
    cfg = tmp_path / "suites.yaml"
    cfg.write_text(f"""
models:
  - {{name: micro-a, model: clipcomp-micro, seed: 0}}
  - {{name: micro-b, model: clipcomp-micro, seed: 1}}
suites:
  - {{suite: sugarcrepe, path: {SAMPLE / 'sugarcrepe'}, images: {IMAGES}}}
  - {{suite: coco-order, path: {SAMPLE / 'captions_val2017.json'}, images: {IMAGES}}}
  - {{suite: zeroshot, path: {SAMPLE / 'labels.csv'}, images: {SAMPLE}}}
  - {{suite: retrieval, path: {SAMPLE / 'captions_val2017.json'}, images: {IMAGES}}}
  - {{suite: linear-probe, path: {SAMPLE / 'labels.csv'}, images: {SAMPLE}}}
settings: {{batch_size: 16, device: cpu}}
""")
    code, out, err = run_cli(["eval", "suites", str(cfg), "-o", str(tmp_path / "out"), "-q"], capsys)
    assert code == 0, err
    import pyarrow.csv as pacsv

    table = pacsv.read_csv(tmp_path / "out" / "table.csv")
    assert table.column("model").to_pylist() == ["micro-a", "micro-b"]
    cols = set(table.column_names)
    assert {"sugarcrepe", "coco-order", "zeroshot/acc1", "linear-probe/acc1",
            "retrieval/image_retrieval_recall@5"} <= cols
    assert any(c.startswith("sugarcrepe/") for c in cols)
    assert (tmp_path / "out" / "table.md").read_text().count("micro-") == 2
    code, _, err = run_cli(["eval", "suite", "nosuch", str(cfg), "-o", str(tmp_path / "x")], capsys)
    assert code == 2 and "unknown suite 'nosuch'" in err


def test_linear_probe_on_separable_features_and_multilabel_map():
    from clipcomp.tasks import linear_probe

    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 40)
    x = rng.normal(size=(120, 8)) + 3 * np.eye(8)[y]

    class Features:  # an embedder over precomputed vectors (the probe's input is embeddings)
        def images(self, paths, skip_bad=False):
            from clipcomp.models.embed import ImageEmbeddings

            idx = [int(p) for p in paths]
            return ImageEmbeddings(x[idx], np.ones(len(idx), bool), [], 0)

    data = linear_probe.ProbeData("sep", [str(i) for i in range(120)], y, ["a", "b", "c"])
    res = linear_probe.evaluate(Features(), data)
    assert res.metrics["acc1"] >= 0.95 and res.metrics["C"] in linear_probe.C_GRID
    ym = np.stack([y == 0, y == 1, (y == 1) | (y == 2)], axis=1).astype(np.int8)
    res = linear_probe.evaluate(Features(), linear_probe.ProbeData("ml", data.paths, ym, ["a", "b", "c"],
                                                                   multilabel=True))
    assert res.metrics["map"] >= 0.95


@pytest.mark.skipif(not (SHARED / "coco_mini").exists(), reason="needs ../shared/data/coco_mini")
def test_linear_probe_multilabel_from_coco_instances():
    from clipcomp.tasks.linear_probe import coco_multilabel

    data = coco_multilabel(str(SHARED / "coco_mini" / "annotations" / "instances_val2017.json"),
                           str(SHARED / "coco_mini" / "val2017"))
    assert data.multilabel and data.targets.shape[0] == len(data.paths) and data.targets.sum() > 0
    assert all(Path(p).exists() for p in data.paths)


def test_slipform_recipe_end_to_end(tmp_path, capsys):
    """negatives → Cement fine-tuning → suites before/after, through the CLI, on the real COCO sample."""
    cfg = tmp_path / "slipform.yaml"
    cfg.write_text(f"""
data: {SAMPLE / 'captions_val2017.json'}
images: {IMAGES}
model: clipcomp-micro
negatives: {{types: [replace-obj, replace-att, swap-att]}}
train: {{steps: 3, batch_size: 8, lr: 1.0e-4, warmup: 0, threads: 1, workers: 0, log_every: 1}}
suites:
  - {{suite: sugarcrepe, path: {SAMPLE / 'sugarcrepe'}, images: {IMAGES}}}
settings: {{batch_size: 16, device: cpu}}
""")
    code, out, err = run_cli(["slipform", str(cfg), "-o", str(tmp_path / "sf"), "-q"], capsys)
    assert code == 0, err
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    train = pq.read_table(tmp_path / "sf" / "data" / "train.parquet").to_pylist()
    caps = json.loads((SAMPLE / "captions_val2017.json").read_text())["annotations"]
    assert len(train) == len(caps)  # every caption stays in the contrastive term
    for r in train:
        real = [n for n, m in zip(r["hard_negatives"], r["negative_mask"], strict=True) if m]
        assert all(n != r["caption"] for n in real)
        assert all(n == r["caption"] for n, m in zip(r["hard_negatives"], r["negative_mask"], strict=True) if not m)
    assert sum(1 for r in train if r["negative_mask"][0]) >= 80
    lines = [json.loads(x) for x in (tmp_path / "sf" / "train" / "metrics.jsonl").read_text().splitlines()]
    assert len(lines) == 3 and all("active_margin_fraction" in x and "grad_share_hard" in x for x in lines)
    table = pacsv.read_csv(tmp_path / "sf" / "suites" / "table.csv")
    assert table.column("model").to_pylist() == ["start", "slipform"] and "sugarcrepe" in table.column_names
