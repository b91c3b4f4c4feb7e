"""Every command's output is a function of its inputs, options and seed: byte-identical files under different
PYTHONHASHSEED values and worker counts (each run in its own process, as a user would run it)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("faiss")
torch = pytest.importorskip("torch")

ROOT = Path(__file__).resolve().parents[1]
COCO = ROOT / "tests" / "data" / "coco_sample"


def cli(args: list[str], hashseed: int, cwd: Path) -> None:
    env = {**os.environ, "PYTHONHASHSEED": str(hashseed), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    res = subprocess.run([sys.executable, "-m", "clipcomp.cli", *args], cwd=cwd, env=env, capture_output=True,
                         text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]


def same_bytes(a: Path, b: Path, names: list[str]) -> None:
    for n in names:
        assert (a / n).read_bytes() == (b / n).read_bytes(), f"{n} differs between runs"


def captions() -> list[str]:
    import json

    data = json.loads((COCO / "captions_val2017.json").read_text())
    return [a["caption"].strip() for a in data["annotations"]]


def test_negatives_identical_across_hash_seeds_and_workers(tmp_path):
    caps = captions()
    half = len(caps) // 2
    (tmp_path / "a.txt").write_text("\n".join(caps[:half]) + "\n")
    (tmp_path / "b.txt").write_text("\n".join(caps[half:]) + "\n")
    for run, (seed, workers) in enumerate(((1, 1), (2, 2), (3, 2))):
        cli(["negatives", "generate", "a.txt", "b.txt", "-o", f"n{run}", "--workers", str(workers), "--seed", "3"],
            seed, tmp_path)
    for run in (1, 2):
        same_bytes(tmp_path / "n0", tmp_path / f"n{run}", ["negatives.parquet", "unperturbable.parquet"])


def test_mix_prune_dedup_train_identical_across_hash_seeds(tmp_path):
    from clipcomp.similarity.embeddings import write_embeddings

    rng = np.random.default_rng(0)
    for name, n in (("base", 600), ("tests", 40), ("ref", 120)):
        x = rng.normal(size=(n, 16))
        write_embeddings(str(tmp_path / name), [f"{name}{i}" for i in range(n)],
                         x / np.linalg.norm(x, axis=1)[:, None], {"model_identity": "m"}, shard_size=150)
    lines = [f"{d}/c{c}/{d}_{c}_{i}.jpg {c}" for d in ("real", "sketch", "clipart") for c in range(6) for i in range(4)]
    for d in ("real", "sketch", "clipart"):
        (tmp_path / f"{d}_train.txt").write_text("\n".join(x for x in lines if x.startswith(d)) + "\n")
    for run, seed in enumerate((11, 12)):
        cli(["mix", "build", "real_train.txt", "sketch_train.txt", "clipart_train.txt", "-o", f"m{run}",
             "--setting", "cg-high", "--test-domain", "sketch", "--n-held-out", "2", "--seed", "5"], seed, tmp_path)
        cli(["similarity", "prune", "base", "--test", "tests", "--reference", "ref", "-o", f"p{run}", "--method",
             "random"], seed, tmp_path)
        cli(["similarity", "dedup", "base", "-o", f"d{run}", "--clusters", "4", "--threshold", "0.5"], seed,
            tmp_path)
        cli(["train", "--data", str(COCO / "captions_val2017.json"), "--images", str(COCO / "images"), "-o",
             f"t{run}", "--model", "clipcomp-micro", "--steps", "2", "--batch-size", "8", "--threads", "1",
             "--workers", "0", "-q"], seed, tmp_path)
    same_bytes(tmp_path / "m0", tmp_path / "m1", ["train.parquet", "meta.json"])
    same_bytes(tmp_path / "p0", tmp_path / "p1", ["kept.parquet", "removed.parquet", "report.json"])
    same_bytes(tmp_path / "d0", tmp_path / "d1", ["kept.parquet", "removed.parquet", "report.json"])
    a = torch.load(tmp_path / "t0" / "final.pt", weights_only=False)["state_dict"]
    b = torch.load(tmp_path / "t1" / "final.pt", weights_only=False)["state_dict"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
