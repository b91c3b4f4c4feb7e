"""Evaluation tasks on real COCO images and SugarCrepe items, checked against direct computations."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from clipcomp.errors import ClipcompError  # noqa: E402
from clipcomp.models import import_open_clip, load_model, save_model_dir  # noqa: E402
from clipcomp.models.embed import Embedder  # noqa: E402
from clipcomp.tasks import retrieval, selection, zeroshot  # noqa: E402

SAMPLE = Path(__file__).parent / "data" / "coco_sample"


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory):
    """A small open_clip model saved in open_clip's local-dir layout, loadable by clipcomp and by open_clip."""
    lm = load_model("clipcomp-tiny", seed=7)
    return save_model_dir(lm, str(tmp_path_factory.mktemp("models") / "tiny"))


@pytest.fixture(scope="session")
def lm(model_dir):
    return load_model(None, model_dir)


@pytest.fixture()
def embedder(lm, tmp_path):
    return Embedder(lm, cache_dir=str(tmp_path / "cache"), batch_size=5, num_workers=0, progress=False)


@pytest.fixture(scope="session")
def image_folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("folder") / "coco6"
    for line in (SAMPLE / "labels.csv").read_text().splitlines()[1:]:
        path, label = line.split(",")
        d = root / label.replace(" ", "_")
        d.mkdir(parents=True, exist_ok=True)
        shutil.copy(SAMPLE / path, d / os.path.basename(path))
    return root


def test_zero_shot_equals_hand_written_open_clip(model_dir, embedder, image_folder):
    data = zeroshot.load_image_folder(str(image_folder))
    templates = ["a photo of a {c}.", "a blurry photo of a {c}.", "a drawing of the {c}."]
    res = zeroshot.evaluate(embedder, data, templates)

    # The same computation written directly against open_clip.
    open_clip = import_open_clip()
    from PIL import Image

    model, _, preprocess = open_clip.create_model_and_transforms(f"local-dir:{model_dir}")
    model.eval()
    tok = open_clip.get_tokenizer(f"local-dir:{model_dir}")
    classes = sorted(p.name.replace("_", " ") for p in image_folder.iterdir())
    with torch.no_grad():
        weights = []
        for c in classes:
            e = model.encode_text(tok([t.format(c=c) for t in templates]))
            e = e / e.norm(dim=-1, keepdim=True)
            m = e.mean(dim=0)
            weights.append(m / m.norm())
        w = torch.stack(weights)
        paths, labels = [], []
        for ci, c in enumerate(classes):
            for f in sorted((image_folder / c.replace(" ", "_")).iterdir()):
                paths.append(str(f))
                labels.append(ci)
        x = torch.stack([preprocess(Image.open(p).convert("RGB")) for p in paths])
        f = model.encode_image(x)
        f = f / f.norm(dim=-1, keepdim=True)
        logits = f @ w.T
    pred = logits.argmax(dim=1).numpy()
    expected_acc = float((pred == np.array(labels)).mean())
    assert res.metrics["acc1"] == pytest.approx(expected_acc)
    assert res.items.column("path").to_pylist() == paths
    assert res.items.column("pred_index").to_pylist() == pred.tolist()
    np.testing.assert_allclose(res.items.column("true_score").to_numpy(),
                               logits.numpy()[np.arange(len(paths)), labels], rtol=1e-4, atol=1e-5)
    top5 = (torch.topk(logits, 5, dim=1).indices.numpy() == np.array(labels)[:, None]).any(axis=1).mean()
    assert res.metrics["acc5"] == pytest.approx(float(top5))
    per_class = {c: float((pred[np.array(labels) == i] == i).mean()) for i, c in enumerate(classes)}
    assert res.metrics["per_class_acc1"] == pytest.approx(per_class)


def test_manifest_with_80_openai_templates(embedder, lm):
    data = zeroshot.load_manifest(str(SAMPLE / "labels.csv"))
    assert data.classnames == sorted({"refrigerator", "dining table", "person", "laptop", "bed", "tv"})
    templates = zeroshot.load_templates("openai")
    assert len(templates) == 80
    res = zeroshot.evaluate(embedder, data, templates)
    assert res.items.num_rows == 18
    # brute force: class weights = normalized mean of the normalized template embeddings; argmax of cosine
    w = []
    for c in data.classnames:
        e = embedder.texts([t.format(c=c) for t in templates]).mean(axis=0)
        w.append(e / np.linalg.norm(e))
    pred = (embedder.images(data.paths).embeddings @ np.stack(w).T).argmax(axis=1)
    assert res.items.column("pred_index").to_pylist() == pred.tolist()
    assert res.metrics["acc1"] == pytest.approx(float((pred == np.asarray(data.labels)).mean()))
    assert set(res.items.column_names) >= {"path", "label", "pred", "correct", "correct_top5", "rank"}


def test_retrieval_recalls_match_brute_force(embedder):
    data = retrieval.load_coco_captions(str(SAMPLE / "captions_val2017.json"), str(SAMPLE))
    data.paths = [str(SAMPLE / "images" / os.path.basename(p)) for p in data.paths]
    res = retrieval.evaluate(embedder, data)
    img = embedder.images(data.paths).embeddings
    txt = embedder.texts(data.captions)
    sim = txt @ img.T
    t2i = [int((sim[j] > sim[j, data.caption_image[j]]).sum()) for j in range(len(data.captions))]
    i2t = []
    for i in range(len(data.paths)):
        own = [j for j in range(len(data.captions)) if data.caption_image[j] == i]
        best = max(sim[j, i] for j in own)
        i2t.append(int((sim[:, i] > best).sum()))
    for k in (1, 5, 10):
        assert res.metrics[f"image_retrieval_recall@{k}"] == pytest.approx(np.mean(np.array(t2i) < k))
        assert res.metrics[f"text_retrieval_recall@{k}"] == pytest.approx(np.mean(np.array(i2t) < k))


def test_retrieval_perfect_when_captions_are_the_images(tmp_path, lm):
    # Constructed case with a known answer: a "model" whose text and image towers agree exactly.
    class Echo:
        def images(self, paths, skip_bad=False):
            from clipcomp.models.embed import ImageEmbeddings

            e = np.eye(len(paths), dtype=np.float32)
            return ImageEmbeddings(e, np.ones(len(paths), bool))

        def texts(self, texts):
            return np.stack([np.eye(3, dtype=np.float32)[int(t.split()[-1])] for t in texts])

    data = retrieval.CaptionData("toy", [0, 1, 2], ["a", "b", "c"], ["img 0", "img 1", "img 2", "img 2"],
                                 np.array([0, 1, 2, 2]))
    res = retrieval.evaluate(Echo(), data)
    assert res.metrics["image_retrieval_recall@1"] == 1.0 and res.metrics["text_retrieval_recall@1"] == 1.0


def test_sugarcrepe_selection_matches_direct_scores(embedder):
    data = selection.load_sugarcrepe([str(SAMPLE / "sugarcrepe")], str(SAMPLE / "images"))
    res = selection.evaluate(embedder, data)
    assert res.items.num_rows == 33
    img = embedder.images(data.paths).embeddings
    pos = np.einsum("nd,nd->n", img, embedder.texts(data.positives))
    neg = np.einsum("nd,nd->n", img, embedder.texts([n[0] for n in data.negatives]))
    assert res.items.column("correct").to_pylist() == (pos > neg).tolist()
    subsets = np.array(data.subsets)
    for s, acc in res.metrics["per_subset_acc"].items():
        assert acc == pytest.approx((pos > neg)[subsets == s].mean())


def test_generic_selection_manifest(tmp_path, embedder):
    rows = ["image,positive,negative,negative_2,subset"]
    for line in (SAMPLE / "labels.csv").read_text().splitlines()[1:7]:
        path, label = line.split(",")
        rows.append(f"{SAMPLE / path},a photo of a {label},a photo of a zebra,a photo of a kite,objects")
    (tmp_path / "m.csv").write_text("\n".join(rows) + "\n")
    data = selection.load_selection_manifest(str(tmp_path / "m.csv"))
    assert data.negatives[0] == ["a photo of a zebra", "a photo of a kite"]
    res = selection.evaluate(embedder, data)
    assert res.metrics["per_subset_acc"].keys() == {"objects"} and res.items.num_rows == 6


def test_embedding_cache_second_run_and_resume(lm, tmp_path, monkeypatch):
    paths = sorted(str(p) for p in (SAMPLE / "images").iterdir())
    first = Embedder(lm, cache_dir=str(tmp_path / "c"), batch_size=4, num_workers=0, progress=False)
    import clipcomp.models.embed as embed_mod

    monkeypatch.setattr(embed_mod, "FLUSH_ROWS", 4)
    calls = {"n": 0}
    real = lm.model.encode_image

    def dying(x):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(x)

    monkeypatch.setattr(lm.model, "encode_image", dying)
    with pytest.raises(KeyboardInterrupt):
        first.images(paths)
    monkeypatch.setattr(lm.model, "encode_image", real)
    again = Embedder(lm, cache_dir=str(tmp_path / "c"), batch_size=4, num_workers=0, progress=False)
    out = again.images(paths)
    assert out.computed == len(paths) - 8  # two batches of 4 survived the interruption
    third = Embedder(lm, cache_dir=str(tmp_path / "c"), batch_size=4, num_workers=0, progress=False)
    cached = third.images(paths)
    assert cached.computed == 0
    fresh = Embedder(lm, cache_dir=None, batch_size=7, num_workers=0, progress=False).images(paths)
    np.testing.assert_allclose(cached.embeddings, fresh.embeddings, rtol=1e-5, atol=1e-6)


def test_missing_and_corrupt_images(tmp_path, embedder):
    good = sorted(str(p) for p in (SAMPLE / "images").iterdir())[:3]
    (tmp_path / "broken.jpg").write_bytes(b"not a jpeg at all")
    with pytest.raises(ClipcompError, match=r"nope\.jpg: image not found"):
        embedder.images(good + [str(tmp_path / "nope.jpg")])
    with pytest.raises(ClipcompError, match=r"broken\.jpg: cannot decode image"):
        embedder.images(good + [str(tmp_path / "broken.jpg")])
    out = embedder.images(good + [str(tmp_path / "broken.jpg"), str(tmp_path / "nope.jpg")], skip_bad=True)
    assert out.ok.tolist() == [True, True, True, False, False] and out.embeddings.shape[0] == 3
    assert {os.path.basename(e["path"]) for e in out.errors} == {"broken.jpg", "nope.jpg"}
    assert out.computed == 0  # the good ones were cached by the failed attempts


def test_classnames_must_match_folders(tmp_path, image_folder):
    (tmp_path / "names.txt").write_text("refrigerator\nperson\ncat\n")
    with pytest.raises(ClipcompError, match="do not match the folders.*no folder for cat"):
        zeroshot.load_image_folder(str(image_folder), str(tmp_path / "names.txt"))
    mapping = "\n".join(f"{p.name}\t{p.name.upper()}" for p in sorted(image_folder.iterdir()))
    (tmp_path / "map.tsv").write_text(mapping)
    data = zeroshot.load_image_folder(str(image_folder), str(tmp_path / "map.tsv"))
    assert data.classnames[0] == "BED"


def test_unknown_model_lists_close_matches():
    with pytest.raises(ClipcompError, match=r"unknown model 'ViT-B-23'.*ViT-B-32"):
        load_model("ViT-B-23")
    with pytest.raises(ClipcompError, match="unknown pretrained tag"):
        load_model("clipcomp-tiny", "laion400m_e32")


def test_summary_json_follows_clip_benchmark(tmp_path, embedder, lm):
    from clipcomp.tasks import write_result

    data = zeroshot.load_manifest(str(SAMPLE / "labels.csv"))
    res = zeroshot.evaluate(embedder, data, ["a photo of a {c}."])
    summary = write_result(res, str(tmp_path / "out"), {"model": "clipcomp-tiny", "pretrained": None})
    on_disk = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert {"dataset", "model", "pretrained", "task", "metrics"} <= set(on_disk)
    assert on_disk["task"] == "zeroshot_classification" and on_disk["metrics"]["acc1"] == summary["metrics"]["acc1"]


def test_clip_benchmark_build_reads_every_clipcomp_summary(tmp_path, embedder, lm):
    """`clip_benchmark build` (the package's own code) on clipcomp run folders: a randomly initialized model,
    fewer than 5 classes, SugarCrepe one row per subset, no Python reprs of nested fields."""
    import argparse
    import csv

    pytest.importorskip("clip_benchmark")
    from clipcomp.models import import_open_clip

    import_open_clip()  # the torchvision compatibility step clip_benchmark's imports need here
    from clip_benchmark.cli import main_build

    from clipcomp.tasks import selection, write_result

    info = {"model": "clipcomp-tiny", "pretrained": None, "seed": 0}
    data = zeroshot.load_manifest(str(SAMPLE / "labels.csv"))
    three = zeroshot.ClassificationData("three", data.paths[:9], data.labels[:9] % 3, data.classnames[:3])
    write_result(zeroshot.evaluate(embedder, three, ["a photo of a {c}."]), str(tmp_path / "zs3"), info)
    sc = selection.load_sugarcrepe([str(SAMPLE / "sugarcrepe")], str(SAMPLE / "images"))
    write_result(selection.evaluate(embedder, sc), str(tmp_path / "sc"), info)
    out = tmp_path / "bench.csv"
    main_build(argparse.Namespace(files=[str(tmp_path / "zs3"), str(tmp_path / "sc")], output=str(out)))
    rows = list(csv.DictReader(out.read_text().splitlines()))
    assert len(rows) == 1 + 1 + 6
    zs_row = next(r for r in rows if r["task"] == "zeroshot_classification")
    assert zs_row["pretrained"] == "random-init(seed=0)" and zs_row["acc5"] == "nan" and "acc4" not in zs_row
    assert {r["dataset"] for r in rows if r["dataset"].startswith("sugar_crepe/")} == {
        f"sugar_crepe/{s}" for s in ("add_obj", "replace_att", "replace_obj", "replace_rel", "swap_att", "swap_obj")}
    assert not any(v.startswith(("{", "[")) for r in rows for v in r.values())  # no nested reprs
