"""Every heavy stage on Dask writes what the local run writes: embed, negatives generate, similarity knn / prune /
dedup on a local cluster of 2 worker processes — also when a worker is killed mid-run."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

pytest.importorskip("dask.distributed")

from clipcomp.errors import ClipcompError  # noqa: E402
from clipcomp.procs import EngineOptions  # noqa: E402
from clipcomp.similarity.embeddings import write_embeddings  # noqa: E402

SAMPLE = Path(__file__).parent / "data" / "coco_sample"


def _local_cluster():
    """A LocalCluster of 2 single-thread worker processes; yields (scheduler address, client)."""
    from dask.distributed import Client, LocalCluster

    c = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
    client = Client(c)
    yield c.scheduler_address, client
    client.close()
    c.close()


@pytest.fixture(scope="module")
def cluster():
    """One cluster for the module (the --scheduler path)."""
    yield from _local_cluster()


@pytest.fixture()
def fresh_cluster():
    """A cluster of its own for a test that kills a worker (no waiting on a restart shared with other tests)."""
    yield from _local_cluster()


def _dask(cluster) -> EngineOptions:
    return EngineOptions("dask", cluster[0])


def _clustered(tmp_path, name: str, n: int, dim: int = 32, shard: int = 250, seed: int = 0) -> str:
    """Unit vectors around 20 centres with near-duplicates, in several shards."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(20, dim))
    x = centres[rng.integers(0, 20, n)] + 0.35 * rng.normal(size=(n, dim))
    x[1::7] = x[0::7][: len(x[1::7])] + 0.01 * rng.normal(size=(len(x[1::7]), dim))  # near-duplicates
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    out = tmp_path / name
    write_embeddings(str(out), [f"{name}-{i}" for i in range(n)], x, {"model": "synthetic"}, shard_size=shard)
    return str(out)


def _same_files(a, b, names) -> None:
    for name in names:
        assert (Path(a) / name).read_bytes() == (Path(b) / name).read_bytes(), name


def test_knn_prune_dedup_on_dask_write_the_local_files(tmp_path, cluster):
    from clipcomp.similarity.knn import knn
    from clipcomp.similarity.prune import dedup, prune

    base = _clustered(tmp_path, "base", 2000)
    ref = _clustered(tmp_path, "ref", 600, seed=1)
    test = _clustered(tmp_path, "test", 300, seed=2)
    for engine, tag in ((None, "local"), (_dask(cluster), "dask")):
        knn(test, base, str(tmp_path / f"knn-{tag}"), k=5, progress=False, engine=engine)
        for method in ("aligned", "near", "far", "random"):
            prune(base, [test], ref, str(tmp_path / f"prune-{method}-{tag}"), method=method, progress=False,
                  engine=engine)
        dedup(base, str(tmp_path / f"dedup-{tag}"), n_clusters=8, threshold=0.95, engine=engine)
    _same_files(tmp_path / "knn-local", tmp_path / "knn-dask", ["neighbors.parquet", "meta.json"])
    for method in ("aligned", "near", "far", "random"):
        _same_files(tmp_path / f"prune-{method}-local", tmp_path / f"prune-{method}-dask",
                    ["kept.parquet", "removed.parquet", "report.json"])
    _same_files(tmp_path / "dedup-local", tmp_path / "dedup-dask", ["kept.parquet", "removed.parquet", "report.json"])
    rep = json.loads((tmp_path / "dedup-dask" / "report.json").read_text())
    assert 0 < rep["n_removed"] < rep["n"]  # the near-duplicates are found, not everything
    assert json.loads((tmp_path / "prune-aligned-dask" / "report.json").read_text())["n_removed"] > 0


def test_streamed_dedup_equals_in_memory_semdedup_on_dask(tmp_path, cluster):
    from clipcomp.procs import Engine
    from clipcomp.similarity.embeddings import open_embeddings
    from clipcomp.similarity.prune import semdedup, semdedup_shards

    e = open_embeddings(_clustered(tmp_path, "b", 1500, shard=200))
    _, x = e.load()
    for order in ("dataset", "centroid"):
        with Engine(_dask(cluster)) as eng:
            streamed = semdedup_shards(e, 6, 0.9, seed=3, order=order, workdir=str(tmp_path), engine=eng)
        assert np.array_equal(streamed, semdedup(x, 6, 0.9, seed=3, order=order))


def test_negatives_generate_on_dask_writes_the_local_files(tmp_path, cluster):
    from clipcomp.negatives import NegativeOptions, generate_negatives

    caps = [a["caption"].strip() for a in json.loads((SAMPLE / "captions_val2017.json").read_text())["annotations"]]
    src = tmp_path / "caps.txt"
    src.write_text("\n".join(caps[:300]) + "\n")
    n_local = generate_negatives([str(src)], str(tmp_path / "local"), NegativeOptions(seed=2), progress=False)
    generate_negatives([str(src)], str(tmp_path / "dask"),
                       NegativeOptions(seed=2, engine="dask", scheduler=cluster[0]), progress=False)
    _same_files(tmp_path / "local", tmp_path / "dask", ["negatives.parquet", "unperturbable.parquet"])
    assert n_local.n_negatives > 0


def _embed(tmp_path, tag: str, engine, captions: Path) -> Path:
    from clipcomp.similarity.embeddings import embed_to_files

    out = tmp_path / tag
    embed_to_files(str(captions), str(out), "clipcomp-micro", modality="text", shard_size=10, batch_size=8,
                   device="cpu", cache_dir=None, progress=False, engine=engine)
    return out


def _vectors(path: Path) -> tuple[list, np.ndarray]:
    t = pq.read_table(sorted(path.glob("part-*.parquet")))
    return t.column("id").to_pylist(), np.stack(t.column("embedding").to_numpy(zero_copy_only=False)).astype(
        np.float32)


def test_embed_on_dask_same_ids_and_vectors_even_when_a_worker_dies(tmp_path, fresh_cluster, monkeypatch):
    from clipcomp import procs as engine_mod

    caps = [a["caption"].strip() for a in json.loads((SAMPLE / "captions_val2017.json").read_text())["annotations"]]
    src = tmp_path / "caps.parquet"
    pq.write_table(pa.table({"id": [f"c{i}" for i in range(len(caps))], "caption": caps}), str(src))
    local = _embed(tmp_path, "local", None, src)
    ids, vec = _vectors(local)
    cluster = fresh_cluster
    client = cluster[1]
    victim = next(iter(client.run(os.getpid).values()))
    original, killed = engine_mod.Engine.map, []

    def map_killing_a_worker(self, *args, **kw):  # SIGKILL one worker as soon as the first shard is back
        for i, r in original(self, *args, **kw):
            if not killed:
                os.kill(victim, signal.SIGKILL)
                killed.append(len(list((tmp_path / "dask").glob("part-*.parquet"))))
            yield i, r

    monkeypatch.setattr(engine_mod.Engine, "map", map_killing_a_worker)
    out = _embed(tmp_path, "dask", _dask(cluster), src)
    n_shards = json.loads((out / "meta.json").read_text())["n_shards"]
    assert killed and killed[0] < n_shards  # killed mid-run, with shards still to do
    d_ids, d_vec = _vectors(out)
    assert d_ids == ids
    np.testing.assert_allclose(d_vec, vec, atol=2e-3)  # float16 storage; CPU thread counts differ


def test_unreachable_scheduler_fails_in_seconds_naming_it(tmp_path):
    from clipcomp.similarity.prune import dedup

    emb = _clustered(tmp_path, "e", 100)
    t0 = time.perf_counter()
    with pytest.raises(ClipcompError, match="cannot reach Dask scheduler tcp://127.0.0.1:9"):
        dedup(emb, str(tmp_path / "out"), 4, 0.9, engine=EngineOptions("dask", "tcp://127.0.0.1:9"))
    assert time.perf_counter() - t0 < 10
    with pytest.raises(ClipcompError, match="--scheduler needs --engine dask"):
        EngineOptions("local", "tcp://127.0.0.1:9").validate()


def test_cli_engine_options(tmp_path, capsys):
    from conftest import run_cli

    emb = _clustered(tmp_path, "e", 100)
    code, _, err = run_cli(["similarity", "dedup", emb, "-o", str(tmp_path / "o"), "--engine", "spark"], capsys)
    assert code == 2 and "--engine 'spark': expected local or dask" in err and len(err.strip().splitlines()) == 1
    code, _, err = run_cli(["similarity", "knn", emb, emb, "-o", str(tmp_path / "k"), "--index", "ivf", "--engine",
                            "dask"], capsys)
    assert code == 2 and "--engine local" in err


@pytest.mark.parametrize("stage", ["prune", "dedup", "knn"])
def test_a_worker_killed_mid_run_leaves_identical_output(tmp_path, fresh_cluster, monkeypatch, stage):
    from clipcomp import procs as engine_mod
    from clipcomp.similarity.knn import knn
    from clipcomp.similarity.prune import dedup, prune

    base = _clustered(tmp_path, "base", 3000, shard=60)
    ref = _clustered(tmp_path, "ref", 300, seed=1)
    test = _clustered(tmp_path, "test", 200, seed=2)

    def run(tag, engine):
        out = str(tmp_path / tag)
        if stage == "prune":
            prune(base, [test], ref, out, progress=False, engine=engine)
        elif stage == "dedup":
            dedup(base, out, n_clusters=10, threshold=0.95, engine=engine)
        else:
            knn(test, base, out, k=4, progress=False, engine=engine)
        return out

    local = run("local", None)
    cluster = fresh_cluster
    client = cluster[1]
    victim = next(iter(client.run(os.getpid).values()))
    original, seen = engine_mod.Engine.map, []

    def map_killing_a_worker(self, fn, tasks, *args, **kw):  # SIGKILL one worker after the first result back
        tasks = list(tasks)
        for i, r in original(self, fn, tasks, *args, **kw):
            if not seen and len(tasks) > 10:
                os.kill(victim, signal.SIGKILL)
                seen.append(fn.__name__)
            yield i, r

    monkeypatch.setattr(engine_mod.Engine, "map", map_killing_a_worker)
    dask_out = run("dask", _dask(cluster))
    assert seen  # a worker died while tasks were left
    names = ["neighbors.parquet"] if stage == "knn" else ["kept.parquet", "removed.parquet", "report.json"]
    _same_files(local, dask_out, names)


def test_gpu_requested_where_none_exists_is_one_line(tmp_path, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    from conftest import run_cli

    code, _, err = run_cli(["embed", str(SAMPLE / "images"), "-o", str(tmp_path / "e"), "--model", "clipcomp-micro",
                            "--device", "cuda", "--engine", "dask", "--workers", "1"], capsys)
    assert code == 2 and "cuda" in err.lower() and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "e" / "meta.json").exists()
