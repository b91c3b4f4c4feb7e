"""Embeddings to files, exact/approximate kNN against NumPy, pruning and dedup on constructed cases, the
calibrated domain classifier and the contamination estimate with known truth."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

pytest.importorskip("faiss")
torch = pytest.importorskip("torch")

from conftest import run_cli, shared_path  # noqa: E402

from clipcomp.errors import ClipcompError  # noqa: E402
from clipcomp.similarity.embeddings import embed_to_files, open_embeddings, write_embeddings  # noqa: E402

SAMPLE = Path(__file__).parent / "data" / "coco_sample"


def unit(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def brute(q, b, k):
    s = q @ b.T
    order = np.lexsort((np.broadcast_to(np.arange(b.shape[0]), s.shape), -s), axis=1)[:, :k]
    return np.take_along_axis(s, order, 1), order


def test_embed_real_images_in_shards_and_knn_equals_numpy(tmp_path, monkeypatch):
    monkeypatch.setenv("CLIPCOMP_CACHE", str(tmp_path / "cache"))
    imgs = SAMPLE / "images"
    code = embed_to_files(str(imgs), str(tmp_path / "base"), "clipcomp-tiny", shard_size=5, dtype="float32",
                          progress=False)
    assert code["n_items"] == 18 and code["n_shards"] == 4
    e = open_embeddings(str(tmp_path / "base"))
    ids, mat = e.load()
    assert np.allclose(np.linalg.norm(mat, axis=1), 1, atol=1e-4) and len(set(ids)) == 18
    embed_to_files(str(SAMPLE / "captions_val2017.json"), str(tmp_path / "q"), "clipcomp-tiny", modality="text",
                   images=str(imgs), shard_size=40, dtype="float32", progress=False)
    from clipcomp.similarity.knn import knn

    info = knn(str(tmp_path / "q"), str(tmp_path / "base"), str(tmp_path / "nn"), k=4)
    nn = pq.read_table(tmp_path / "nn" / "neighbors.parquet")
    assert info["mode"] == "exact" and nn.num_rows == 90 * 4
    q_ids, q = open_embeddings(str(tmp_path / "q")).load()
    sims, order = brute(q, mat, 4)
    got = np.array(nn.column("similarity").to_pylist()).reshape(90, 4)
    np.testing.assert_allclose(got, sims, atol=1e-5)
    got_ids = np.array(nn.column("base_id").to_pylist()).reshape(90, 4)
    ref_ids = np.array(ids)[order]
    near_tie = np.abs(np.diff(sims, axis=1)) < 1e-6
    assert ((got_ids == ref_ids) | np.c_[near_tie, np.zeros((90, 1), bool)] |
            np.c_[np.zeros((90, 1), bool), near_tie]).all()
    assert nn.column("query_id").to_pylist()[:4] == [q_ids[0]] * 4


def test_shard_ranges_write_the_same_files_as_one_process(tmp_path, monkeypatch):
    monkeypatch.setenv("CLIPCOMP_CACHE", str(tmp_path / "cache"))
    one = tmp_path / "one"
    embed_to_files(str(SAMPLE / "images"), str(one), "clipcomp-tiny", shard_size=4, progress=False)
    two = tmp_path / "two"
    for part in (1, 0):  # any order; the last one to finish writes meta.json
        embed_to_files(str(SAMPLE / "images"), str(two), "clipcomp-tiny", shard_size=4, shard_range=(part, 2),
                       progress=False)
    for f in sorted(one.glob("part-*.parquet")):
        assert pq.read_table(f).equals(pq.read_table(two / f.name))
    assert (two / "meta.json").exists()


def test_exact_knn_across_shards_on_shared_coco(tmp_path, monkeypatch):
    coco = shared_path("coco_mini")
    monkeypatch.setenv("CLIPCOMP_CACHE", str(tmp_path / "cache"))
    embed_to_files(str(coco / "val2017"), str(tmp_path / "b"), "clipcomp-tiny", shard_size=16, dtype="float32",
                   progress=False)
    embed_to_files(str(coco / "train2017"), str(tmp_path / "q"), "clipcomp-tiny", shard_size=64, dtype="float32",
                   progress=False)
    from clipcomp.similarity.knn import search_exact

    b, q = open_embeddings(str(tmp_path / "b")), open_embeddings(str(tmp_path / "q"))
    d, i, _ = search_exact(q.load()[1], b.shards(), 5)
    sims, _ = brute(q.load()[1], b.load()[1], 5)
    np.testing.assert_allclose(d, sims, atol=1e-5)


def test_approximate_index_reports_measured_recall(tmp_path):
    rng = np.random.default_rng(0)
    base = unit(rng.normal(size=(4000, 32)).astype(np.float32))
    q = unit(base[:300] + 0.05 * rng.normal(size=(300, 32)).astype(np.float32))
    write_embeddings(str(tmp_path / "b"), [f"b{i}" for i in range(4000)], base, {"model_identity": "m"},
                     shard_size=1000, dtype="float32")
    write_embeddings(str(tmp_path / "q"), [f"q{i}" for i in range(300)], q, {"model_identity": "m"}, dtype="float32")
    from clipcomp.similarity.knn import knn

    for kind in ("ivf", "hnsw"):
        info = knn(str(tmp_path / "q"), str(tmp_path / "b"), str(tmp_path / kind), k=10, index=kind, nprobe=8)
        assert info["mode"] == f"approximate ({kind})" and 0.5 < info["recall_at_k"] <= 1.0
        assert info["recall_sample"] == 300


def test_mismatched_embedding_sets_are_one_line(tmp_path, capsys):
    write_embeddings(str(tmp_path / "a"), ["x"], np.ones((1, 4)), {"model_identity": "m1", "model": "A"})
    write_embeddings(str(tmp_path / "b"), ["y"], np.ones((1, 8)), {"model_identity": "m1", "model": "A"})
    write_embeddings(str(tmp_path / "c"), ["z"], np.ones((1, 4)), {"model_identity": "m2", "model": "B"})
    code, _, err = run_cli(["similarity", "knn", str(tmp_path / "a"), str(tmp_path / "b"), "-o",
                            str(tmp_path / "o"), "-k", "1"], capsys)
    assert code == 2 and "different dimensions" in err and str(tmp_path / "a") in err
    code, _, err = run_cli(["similarity", "knn", str(tmp_path / "a"), str(tmp_path / "c"), "-o",
                            str(tmp_path / "o"), "-k", "1"], capsys)
    assert code == 2 and "different models" in err


def test_pruning_keeps_exactly_its_definition_and_controls_match_size():
    from clipcomp.similarity.prune import prune_sets

    e = np.eye(6, dtype=np.float32)
    tests = e[[0, 1]]  # two test items on axes 0 and 1
    reference = unit(np.array([[0.9, 0.1, 0, 0, 0, 0.4], [0.1, 0.6, 0, 0, 0, 0.8]], np.float32))
    # thresholds: τ_0 = max_r r·t0 ≈ 0.897, τ_1 ≈ 0.6
    base = unit(np.array([[1, 0, 0, 0, 0, 0.1],     # sim to t0 ≈ 0.995 > τ_0 → removed
                          [0.8, 0, 0, 0, 0, 0.6],   # 0.8 < τ_0; sim to t1 0 → kept
                          [0, 1, 0, 0, 0, 0.9],     # sim to t1 ≈ 0.743 > 0.6 → removed
                          [0, 0.5, 0, 0, 0, 1],     # sim to t1 ≈ 0.447 < 0.6 → kept
                          [0, 0, 1, 0, 0, 0],       # far → kept
                          [0, 0, 0, 1, 0, 0]], np.float32))
    sets = prune_sets(base, tests, reference, seed=1)
    assert sets["aligned"].tolist() == [True, False, True, False, False, False]
    for c in ("near", "far", "random"):
        assert sets[c].sum() == 2
    assert sets["near"].tolist() == [True, True, False, False, False, False]  # the two most similar (0.995, 0.8)
    assert not (sets["far"] & sets["near"]).any()


def test_reference_inside_the_base_is_never_pruned_and_streaming_matches():
    """The float bug of round 3: τ from one code path, candidates from another, strict '>' — a reference item that
    is a test item's nearest neighbour got pruned. Now one routine + a stated tolerance; the far control runs."""
    from clipcomp.similarity.prune import aligned_pass, prune_sets, thresholds

    rng = np.random.default_rng(5)
    base = unit(rng.normal(size=(3000, 64)).astype(np.float32))
    reference = base[::5].copy()  # 600 reference items, all inside the base
    tests = unit(rng.normal(size=(640, 64)).astype(np.float32))
    sets = prune_sets(base, tests, reference, seed=0)
    nn = np.argmax(tests @ reference.T, axis=1)  # each test item's nearest reference item
    assert not sets["aligned"][np.unique(nn) * 5].any()
    n = int(sets["aligned"].sum())
    assert all(sets[c].sum() == n for c in ("near", "far", "random"))
    tau = thresholds(tests, [(None, reference[:250]), (None, reference[250:])], block=100)
    np.testing.assert_array_equal(tau, sets["tau"])
    shards = [(None, base[s:s + 700]) for s in range(0, len(base), 700)]
    res = aligned_pass(shards, tests, tau, [slice(0, 300), slice(300, 640)], block=256)
    np.testing.assert_array_equal(res["aligned"], sets["aligned"])
    assert (res["per_test_set"].any(axis=1) == res["aligned"]).all()


def test_semdedup_is_clip_ood_rule():
    """Within a cluster, removed ⇔ cosine to some earlier item (dataset order) > threshold — checked against a
    direct double loop."""
    from clipcomp.similarity.prune import semdedup

    rng = np.random.default_rng(1)
    centres = unit(rng.normal(size=(3, 16)).astype(np.float32))
    x = unit(np.repeat(centres, 60, axis=0) + 0.25 * rng.normal(size=(180, 16)).astype(np.float32))
    keep = semdedup(x, n_clusters=1, threshold=0.9, block=7)
    ref = [not any(float(x[i] @ x[j]) > 0.9 for j in range(i)) for i in range(len(x))]
    assert keep.tolist() == ref and 0 < keep.sum() < len(x)


def test_semdedup_drops_exactly_the_near_duplicates():
    from clipcomp.similarity.prune import semdedup

    rng = np.random.default_rng(0)
    originals = unit(rng.normal(size=(40, 16)).astype(np.float32))
    dups = unit(originals[:10] + 0.01 * rng.normal(size=(10, 16)).astype(np.float32))
    x = np.concatenate([originals, dups])
    keep = semdedup(x, n_clusters=4, threshold=0.95, seed=0)
    assert keep.sum() == 40  # one of each near-duplicate pair removed, nothing else
    for i in range(10):
        assert keep[i] != keep[40 + i]




@pytest.mark.parametrize("order", ["dataset", "centroid"])
def test_streamed_semdedup_keeps_the_same_set_as_in_memory(tmp_path, order):
    """`dedup` streams the shards (k-means sample, per-shard assignment, cluster-ordered scratch file) and must keep
    exactly what the in-memory rule keeps; the scratch file is gone afterwards."""
    import pyarrow.parquet as pq

    from clipcomp.similarity.embeddings import write_embeddings
    from clipcomp.similarity.prune import dedup, semdedup

    rng = np.random.default_rng(3)
    centres = unit(rng.normal(size=(12, 24)).astype(np.float32))
    x = unit(centres[rng.integers(0, 12, 3000)] + 0.3 * rng.normal(size=(3000, 24)).astype(np.float32))
    x[2500:] = unit(x[rng.integers(0, 2500, 500)] + 0.02 * rng.normal(size=(500, 24)).astype(np.float32))
    write_embeddings(str(tmp_path / "e"), [f"i{k}" for k in range(3000)], x, {}, shard_size=450, dtype="float32")
    rep = dedup(str(tmp_path / "e"), str(tmp_path / "d"), n_clusters=7, threshold=0.95, order=order)
    keep = semdedup(x, 7, 0.95, order=order)
    kept = pq.read_table(tmp_path / "d" / "kept.parquet").column("id").to_pylist()
    assert kept == [f"i{k}" for k in np.flatnonzero(keep)]
    assert rep["n_removed"] == int((~keep).sum()) >= 400
    assert not [p for p in os.listdir(tmp_path / "d") if p.startswith("semdedup-")]
def _blobs(rng, n, frac_pos, sep=3.0, d=8):
    y = rng.random(n) < frac_pos
    x = rng.normal(size=(n, d))
    x[:, 0] += np.where(y, sep, 0.0)
    return x.astype(np.float32), y


def test_calibrated_threshold_reaches_target_precision_on_held_out_data():
    from clipcomp.similarity.domains import fit_classifier

    rng = np.random.default_rng(1)
    x, y = _blobs(rng, 6000, 0.3)
    clf = fit_classifier(x, y, target_precision=0.95, seed=0)
    s = clf.stats
    assert s["precision"] >= 0.95 and s["precision_ci"][0] > 0.9 and 0 < s["recall"] < 1
    xt, yt = _blobs(np.random.default_rng(2), 20000, 0.3)  # fresh data from the same distributions
    flag = clf.proba(xt) >= clf.threshold
    assert (yt[flag]).mean() >= 0.94
    with pytest.raises(ClipcompError, match="one class only"):
        fit_classifier(x[~y], y[~y])
    xo, yo = _blobs(rng, 2000, 0.5, sep=0.2)  # heavily overlapping: 0.999 precision is out of reach
    with pytest.raises(ClipcompError, match="no threshold has a precision whose 95% lower bound reaches 0.999"):
        fit_classifier(xo, yo, target_precision=0.999)


def test_contamination_estimate_covers_the_true_fraction():
    from clipcomp.similarity.domains import contamination, fit_classifier

    rng = np.random.default_rng(3)
    x, y = _blobs(rng, 6000, 0.5, sep=2.0)
    clf = fit_classifier(x, y, target_precision=0.9, seed=0)
    covered, err_corr, err_naive = 0, [], []
    for s in range(5):
        xc, yc = _blobs(np.random.default_rng(100 + s), 20000, 0.08, sep=2.0)
        est = contamination(clf.proba(xc) >= clf.threshold, clf.stats, seed=s)
        covered += est["corrected_ci"][0] <= yc.mean() <= est["corrected_ci"][1]
        err_corr.append(abs(est["corrected_fraction"] - yc.mean()))
        err_naive.append(abs(est["flagged_fraction"] - yc.mean()))
    assert covered >= 4
    assert np.mean(err_corr) < np.mean(err_naive)  # the flagged share alone is biased by the error rates


def test_domains_cli_on_generated_styles(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("CLIPCOMP_CACHE", str(tmp_path / "cache"))
    from clipcomp.synth.domains import DomainSpec, generate_domains

    man = generate_domains(DomainSpec(out=str(tmp_path / "d"), per_cell=60, classes=["circle", "square"],
                                      domains=["natural", "quickdraw"]))
    code, _, err = run_cli(["embed", man, "-o", str(tmp_path / "e"), "--model", "clipcomp-micro"], capsys)
    assert code == 0, err
    code, out, err = run_cli(["domains", "fit", str(tmp_path / "e"), "--labels", man, "-o", str(tmp_path / "f2"),
                              "--target-precision", "0.85"], capsys)
    assert code == 0, err  # the default: two one-vs-rest classifiers, thresholds at the corpus prevalence
    code, out, err = run_cli(["domains", "apply", str(tmp_path / "f2"), str(tmp_path / "e"), "-o",
                              str(tmp_path / "a2"), "--captions", man], capsys)
    assert code == 0, err
    rep = json.loads((tmp_path / "a2" / "report.json").read_text())
    assert rep["mode"] == "two-classifiers" and rep["lower_bound"] <= 1.0
    for name in ("natural", "rendition"):
        c = rep["classifiers"][name]
        assert c["prevalence_source"].startswith("corpus") and c["test_positives"] > 0
    nat = pq.read_table(tmp_path / "a2" / "natural.parquet").num_rows
    ren = pq.read_table(tmp_path / "a2" / "rendition.parquet").num_rows
    assert nat + ren <= 240
    code, out, err = run_cli(["domains", "fit", str(tmp_path / "e"), "--labels", man, "-o", str(tmp_path / "f"),
                              "--target-precision", "0.85", "--mode", "single"], capsys)
    assert code == 0, err
    cal = json.loads((tmp_path / "f" / "calibration.json").read_text())
    assert cal["n_labelled"] == 240 and cal["precision"] >= 0.85
    code, out, err = run_cli(["domains", "apply", str(tmp_path / "f"), str(tmp_path / "e"), "-o",
                              str(tmp_path / "a"), "--captions", man], capsys)
    assert code == 0, err
    rep = json.loads((tmp_path / "a" / "report.json").read_text())
    assert 0.3 < rep["corrected_fraction"] < 0.7 and "keyword_baseline" in rep
    nat = pq.read_table(tmp_path / "a" / "natural.parquet").num_rows
    ren = pq.read_table(tmp_path / "a" / "rendition.parquet").num_rows
    assert nat + ren == 240


def test_accuracy_vs_similarity_joins_eval_items(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CLIPCOMP_CACHE", str(tmp_path / "cache"))
    code, _, err = run_cli(["eval", "zeroshot", str(SAMPLE / "labels.csv"), "-o", str(tmp_path / "zs"),
                            "--templates", "simple", "--loader-workers", "0", "-q"], capsys)
    assert code == 0, err
    embed_to_files(str(SAMPLE / "labels.csv"), str(tmp_path / "test"), "clipcomp-tiny", image_column="path",
                   progress=False)
    ids, mat = open_embeddings(str(tmp_path / "test")).load()
    meta = json.loads((tmp_path / "test" / "meta.json").read_text())
    write_embeddings(str(tmp_path / "train"), ids[:9], mat[:9], {"model_identity": meta["model_identity"]})
    code, out, err = run_cli(["similarity", "analyze", str(tmp_path / "zs"), "--test", str(tmp_path / "test"),
                              "--train", str(tmp_path / "train"), "-o", str(tmp_path / "an"), "--bins", "3",
                              "--boot", "50"], capsys)
    assert code == 0, err
    items = pq.read_table(tmp_path / "an" / "items.parquet")
    s = np.array(items.column("nearest_train_similarity").to_pylist())
    train_set = set(ids[:9])
    in_train = np.array([p in train_set for p in items.column("path").to_pylist()])
    assert np.allclose(s[in_train], 1.0, atol=2e-3) and (s[~in_train] < 0.9999).all()
    assert (tmp_path / "an" / "accuracy_vs_similarity.png").exists()


def test_embeddings_checked_at_the_boundary(tmp_path, capsys):
    """NaN / all-zero / empty sets stop with one line naming the shard or set; vectors off unit length are
    normalized on read (and the output says so), so dedup and knn measure cosines."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 8))
    write_embeddings(str(tmp_path / "unit"), [f"r{i}" for i in range(40)], unit(x), {"model_identity": "m"},
                     dtype="float32")
    write_embeddings(str(tmp_path / "raw"), [f"r{i}" for i in range(40)], 7.5 * x, {"model_identity": "m"},
                     dtype="float32")
    bad = x.copy()
    bad[3, 2] = np.nan
    write_embeddings(str(tmp_path / "nan"), [f"r{i}" for i in range(40)], bad, {"model_identity": "m"})
    bad = x.copy()
    bad[5] = 0
    write_embeddings(str(tmp_path / "zero"), [f"r{i}" for i in range(40)], bad, {"model_identity": "m"})
    write_embeddings(str(tmp_path / "empty"), [], np.zeros((0, 8)), {"model_identity": "m"})
    for name, msg in (("nan", "NaN or infinite"), ("zero", "all-zero"), ("empty", "empty embedding set")):
        code, _, err = run_cli(["similarity", "dedup", str(tmp_path / name), "-o", str(tmp_path / f"d{name}"),
                                "--clusters", "1"], capsys)
        assert code == 2 and msg in err and str(tmp_path / name) in err and len(err.strip().splitlines()) == 1
    outs = {}
    for name in ("unit", "raw"):
        code, out, _ = run_cli(["similarity", "knn", str(tmp_path / name), str(tmp_path / name), "-o",
                                str(tmp_path / f"k{name}"), "-k", "2"], capsys)
        assert code == 0 and ("normalized on read" in out) == (name == "raw")
        outs[name] = pq.read_table(tmp_path / f"k{name}" / "neighbors.parquet").column("similarity").to_numpy()
    np.testing.assert_allclose(outs["raw"], outs["unit"], atol=1e-6)
    assert outs["raw"].max() <= 1 + 1e-6
