"""No command deletes or overwrites one of its inputs, whatever -o and --force say: an output that is an input,
contains one, or lies inside an input directory is refused before any work (io.guard_output, applied by
io.prepare_output to every path a command records in its settings)."""

from __future__ import annotations

import hashlib
import os

import numpy as np
import pytest
from conftest import run_cli

pytest.importorskip("faiss")


def digest(path) -> str:
    h = hashlib.sha256()
    for root, _, files in sorted(os.walk(path)) if os.path.isdir(path) else [(os.path.dirname(path), [], [
            os.path.basename(path)])]:
        for f in sorted(files):
            with open(os.path.join(root, f), "rb") as fh:
                h.update(f.encode() + fh.read())
    return h.hexdigest()


@pytest.fixture()
def inputs(tmp_path):
    from clipcomp.similarity.embeddings import write_embeddings

    rng = np.random.default_rng(0)
    d = tmp_path / "in"
    d.mkdir()
    for name, n in (("base", 200), ("tests", 20), ("ref", 50)):
        x = rng.normal(size=(n, 8))
        write_embeddings(str(d / name), [f"{name}{i}" for i in range(n)], x / np.linalg.norm(x, axis=1)[:, None],
                         {"model_identity": "m"})
    lines = [f"{dom}/c{c}/{dom}_{c}_{i}.jpg {c}" for dom in ("real", "sketch", "clipart") for c in range(4)
             for i in range(3)]
    for dom in ("real", "sketch", "clipart"):
        (d / "lists").mkdir(exist_ok=True)
        (d / "lists" / f"{dom}_train.txt").write_text("\n".join(x for x in lines if x.startswith(dom)) + "\n")
    (d / "caps").mkdir()
    (d / "caps" / "c.txt").write_text("A small dog sleeps on a wooden bench.\nTwo men ride horses on a beach.\n")
    return d


def commands(d):
    """(name, input that must survive, argv builder given -o)."""
    lists = [str(d / "lists" / f"{x}_train.txt") for x in ("real", "sketch", "clipart")]
    return [
        ("similarity dedup", d / "base", lambda o: ["similarity", "dedup", str(d / "base"), "-o", o, "--clusters",
                                                    "2"]),
        ("similarity knn", d / "base", lambda o: ["similarity", "knn", str(d / "tests"), str(d / "base"), "-o", o,
                                                  "-k", "2"]),
        ("similarity prune", d / "base", lambda o: ["similarity", "prune", str(d / "base"), "--test",
                                                    str(d / "tests"), "--reference", str(d / "ref"), "-o", o]),
        ("mix build", d / "lists", lambda o: ["mix", "build", *lists, "-o", o, "--setting", "cg-high",
                                              "--test-domain", "sketch", "--n-held-out", "1"]),
        ("negatives generate", d / "caps", lambda o: ["negatives", "generate", str(d / "caps" / "c.txt"), "-o", o]),
        ("stats build", d / "caps", lambda o: ["stats", "build", str(d / "caps" / "c.txt"), "-o", o, "-q"]),
    ]


@pytest.mark.parametrize("where", ["is", "contains", "inside"])
def test_no_command_touches_its_inputs(inputs, capsys, where):
    for name, keep, argv in commands(inputs):
        before = digest(keep)
        out = {"is": str(keep), "contains": str(keep.parent), "inside": str(keep / "out")}[where]
        if where == "inside" and name.split()[0] != "similarity":
            continue  # only the embedding sets are directories given as inputs; the rest name files
        code, _, err = run_cli([*argv(out), "--force"], capsys)
        assert code == 2, (name, where, err)
        assert len(err.strip().splitlines()) == 1 and "-o" in err, (name, err)
        assert digest(keep) == before, f"{name}: -o {where} its input changed it"
        assert not os.path.exists(keep / "out")


def test_negatives_check_never_overwrites_its_input(tmp_path, capsys):
    src = tmp_path / "c.txt"
    src.write_text("A small dog sleeps on a wooden bench.\nTwo men ride horses along a beach.\n")
    code, _, err = run_cli(["negatives", "generate", str(src), "-o", str(tmp_path / "neg")], capsys)
    assert code == 0, err
    table = tmp_path / "neg" / "negatives.parquet"
    before = digest(table)
    for out in (str(table), str(tmp_path / "neg")):
        code, _, err = run_cli(["negatives", "check", str(tmp_path / "neg"), "-o", out], capsys)
        assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert digest(table) == before
    code, _, err = run_cli(["negatives", "check", str(tmp_path / "neg"), "-o", str(tmp_path / "check.json")], capsys)
    assert code == 0, err


def test_symlinked_output_to_an_input_is_refused(inputs, capsys):
    link = inputs.parent / "alias"
    os.symlink(inputs / "base", link)
    before = digest(inputs / "base")
    code, _, err = run_cli(["similarity", "dedup", str(inputs / "base"), "-o", str(link), "--force"], capsys)
    assert code == 2 and "is the input" in err
    assert digest(inputs / "base") == before


@pytest.fixture()
def coco(tmp_path):
    """A copy of the bundled COCO sample (images, labels, captions, SugarCrepe items) to aim outputs at."""
    import shutil
    from pathlib import Path

    src = Path(__file__).parent / "data" / "coco_sample"
    dst = tmp_path / "coco"
    shutil.copytree(src, dst)
    return dst


def more_commands(d):
    """Commands that read files inside a folder: -o naming that folder (it contains the input) or the file."""
    img = str(d / "images")
    return [
        ("embed", d / "images", ["embed", img, "--model", "clipcomp-micro"], [img, str(d)]),
        ("eval zeroshot", d / "labels.csv", ["eval", "zeroshot", str(d / "labels.csv"), "--cache-dir", "none"],
         [str(d), str(d / "labels.csv")]),
        ("eval retrieval", d / "captions_val2017.json", ["eval", "retrieval", str(d / "captions_val2017.json"),
                                                         "--images", img, "--cache-dir", "none"], [str(d), img]),
        ("eval select", d / "sugarcrepe", ["eval", "select", str(d / "sugarcrepe"), "--images", img, "--cache-dir",
                                           "none"], [str(d / "sugarcrepe"), str(d)]),
        ("train", d / "captions_val2017.json", ["train", "--data", str(d / "captions_val2017.json"), "--images", img,
                                                "--model", "clipcomp-micro", "--steps", "1"], [str(d), img]),
    ]


@pytest.mark.parametrize("name", ["embed", "eval zeroshot", "eval retrieval", "eval select", "train"])
def test_commands_reading_files_never_write_over_them(coco, capsys, name):
    for cmd, keep, argv, outs in more_commands(coco):
        if cmd != name:
            continue
        before = digest(coco)
        for out in outs:
            code, _, err = run_cli([*argv, "-o", out, "--force"], capsys)
            assert code == 2, (cmd, out, err)
            assert len(err.strip().splitlines()) == 1 and "-o" in err, (cmd, err)
        assert digest(coco) == before, f"{cmd}: an input changed"
        assert keep.exists()
