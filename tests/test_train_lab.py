"""Trainer resume, binding probes with known answers, configs and a miniature sweep."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from clipcomp.cli import main  # noqa: E402
from clipcomp.errors import ClipcompError  # noqa: E402
from clipcomp.synth import CaptionKnobs, WorldConfig  # noqa: E402
from clipcomp.synth.dataset import DatasetSpec, SynthDataset, generate  # noqa: E402
from clipcomp.synth.world import COLOUR_RGB, DEFAULT_SHAPES, SHAPES_AVAILABLE  # noqa: E402
from clipcomp.tasks import binding  # noqa: E402
from clipcomp.train.data import batch_indices  # noqa: E402
from clipcomp.train.trainer import TrainConfig, train  # noqa: E402


@pytest.fixture(scope="module")
def small_data(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth") / "d"
    generate(WorldConfig(), CaptionKnobs(), DatasetSpec(out=str(out), n_train=256, n_test=40, shard_size=100),
             progress=False)
    return str(out)


def test_batches_depend_only_on_seed_and_step():
    a = batch_indices(7, 100, 32, 3)
    assert np.array_equal(a, batch_indices(7, 100, 32, 3)) and len(set(a.tolist())) == 32
    epoch = np.concatenate([batch_indices(s, 96, 32, 3) for s in range(3)])
    assert sorted(epoch.tolist()) == list(range(96))  # one epoch covers every row once


def test_resume_gives_the_same_final_weights(tmp_path, small_data):
    base = dict(data=small_data, model="clipcomp-micro", steps=10, batch_size=16, warmup=2, checkpoint_every=3,
                log_every=1, lr=5e-4, threads=1)
    train(TrainConfig(out=str(tmp_path / "straight"), **base), progress=False)
    res = train(TrainConfig(out=str(tmp_path / "resumed"), **base), progress=False, stop_after=5)
    assert res["steps_done"] == 5 and not (tmp_path / "resumed" / "final.pt").exists()
    res = train(TrainConfig(out=str(tmp_path / "resumed"), **base), progress=False)
    assert res["resumed_from"] == 5
    a = torch.load(tmp_path / "straight" / "final.pt", weights_only=False)["state_dict"]
    b = torch.load(tmp_path / "resumed" / "final.pt", weights_only=False)["state_dict"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    lines = (tmp_path / "resumed" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(x)["step"] for x in lines] == list(range(1, 11))
    with pytest.raises(ClipcompError, match="other settings.*lr"):
        train(TrainConfig(out=str(tmp_path / "resumed"), **{**base, "lr": 1e-3}), progress=False)


def test_negclip_loss_trains_with_hard_negatives(tmp_path, small_data):
    cfg = TrainConfig(data=small_data, out=str(tmp_path / "neg"), model="clipcomp-micro", steps=3, batch_size=8,
                      warmup=1, loss="negclip", hard_negatives=True, threads=1)
    res = train(cfg, progress=False)
    assert res["steps_done"] == 3 and np.isfinite(res["last"]["loss"])


class _Oracle:
    """Scores by exact (shape, colour, size) bindings parsed from text and read from the scene's pixels."""

    def __init__(self, scenes_by_image, bag_of_words=False):
        self.scenes_by_image, self.bow = scenes_by_image, bag_of_words
        self.vocab = [(s, c, z) for s in SHAPES_AVAILABLE for c in COLOUR_RGB for z in ("small", "large")]
        self.words = list(SHAPES_AVAILABLE) + list(COLOUR_RGB) + ["small", "large"]

    def _vec(self, triples):
        if self.bow:
            v = np.zeros(len(self.words))
            for t in triples:
                for w in t:
                    v[self.words.index(w)] += 1
        else:
            v = np.zeros(len(self.vocab))
            for t in triples:
                v[self.vocab.index(t)] = 1
        return v / np.linalg.norm(v)

    def arrays(self, images):
        out = []
        for img in images:
            objs = self.scenes_by_image[img.tobytes()]
            out.append(self._vec([(o.shape, o.colour, o.size) for o in objs]))
        return np.stack(out)

    def texts(self, texts):
        out = []
        for t in texts:
            found = re.findall(r"(small|large) (\w+) (\w+)", t)
            out.append(self._vec([(s, c, z) for z, c, s in found]))
        return np.stack(out)


def test_probes_known_answers(small_data):
    from clipcomp.synth.negatives import swap_colours
    from clipcomp.synth.render import render_scene

    ds = SynthDataset(small_data, "test")
    scenes = ds.scenes()
    images = ds.images(np.arange(len(scenes)))
    probes = binding.build_probes(scenes, seed=0)
    lookup = {}
    for sc, img in zip(scenes, images, strict=True):
        lookup[img.tobytes()] = sc.objects
    for sc, (i, j), neg in zip(scenes, probes["pair"], probes["neg_image"], strict=True):
        swapped = swap_colours(sc, i, j)
        lookup[neg.tobytes()] = tuple(swapped)
        assert np.array_equal(neg, render_scene(sc.with_objects(swapped)))
        diff = (render_scene(sc) != neg).any(axis=2)  # only the two swapped objects' pixels change
        ys, xs = np.nonzero(diff)
        for y, x in zip(ys, xs, strict=True):
            assert any(o.x <= x < o.x + o.extent and o.y <= y < o.y + o.extent for o in (sc.objects[i], sc.objects[j]))
    perfect = binding.evaluate(_Oracle(lookup), scenes, images, seed=0)
    assert all(perfect.metrics[f"{p}_acc"] == 1.0 for p in binding.PROBES)
    blind = binding.evaluate(_Oracle(lookup, bag_of_words=True), scenes, images, seed=0)
    assert blind.metrics["swap_attribute_acc"] == 0.0 and blind.metrics["t2i_swap_attribute_acc"] == 0.0
    assert blind.metrics["replace_attribute_acc"] == 1.0 and blind.metrics["replace_object_acc"] == 1.0
    for cap, swap in zip(probes["true"], probes["swap"], strict=True):
        assert sorted(cap.split()) == sorted(swap.split()) and cap != swap
    assert all(any(s in c for s in DEFAULT_SHAPES) for c in probes["replace_object"])


def test_config_errors_are_one_line(tmp_path, capsys):
    cases = {
        "unknown key": ("captions:\n  completness: 0.5\n",
                        "unknown key 'captions.completness' (did you mean completeness"),
        "probability": ("captions:\n  saliency_bias: 1.5\n", "captions.saliency_bias: 1.5 is not a probability"),
        "vocabulary": ("world:\n  shapes: [circle, square]\n  max_objects: 3\n", "need at least that many shapes"),
        "type": ("dataset:\n  n_train: many\n", "'dataset.n_train' = 'many' has the wrong type"),
        "section": ("wrld: {}\n", "unknown section 'wrld' (did you mean world?)"),
    }
    for name, (text, expected) in cases.items():
        path = tmp_path / f"{name.replace(' ', '_')}.yaml"
        path.write_text(text)
        with pytest.raises(SystemExit) as exc:
            main(["synth", "generate", str(path), "--out", str(tmp_path / "o")])
        err = capsys.readouterr().err
        assert exc.value.code == 2, name
        assert expected in " ".join(err.split()), (name, err)
        assert path.name in err
    toml = tmp_path / "c.toml"
    toml.write_text("[captions]\nattribute_density = 2\n")
    with pytest.raises(SystemExit):
        main(["synth", "generate", str(toml)])
    assert "attribute_density: 2.0 is not a probability" in capsys.readouterr().err


def test_miniature_sweep(tmp_path):
    from clipcomp.pipelines.lab import sweep

    cfg = tmp_path / "sweep.yaml"
    cfg.write_text(f"""
world: {{min_objects: 3, max_objects: 3}}
dataset: {{n_train: 64, n_test: 16, shard_size: 64}}
train: {{model: clipcomp-micro, steps: 3, batch_size: 8, warmup: 1, threads: 1}}
sweep:
  out: {tmp_path / 'sw'}
  seeds: [0, 1]
  eval_scenes: 16
  grid:
    captions.attribute_density: [1.0, 0.25]
""")
    res = sweep(str(cfg), progress=False)
    assert len(res["rows"]) == 4 and {r["cell"] for r in res["rows"]} == {"attribute_density=1.0",
                                                                          "attribute_density=0.25"}
    assert (tmp_path / "sw" / "results.md").exists() and (tmp_path / "sw" / "binding.png").stat().st_size > 5000
    again = sweep(str(cfg), progress=False)  # finished runs are reused
    assert [r["binding_accuracy"] for r in again["rows"]] == [r["binding_accuracy"] for r in res["rows"]]
    # a changed config never returns the old cell's binding.json: refused with one line, recomputed with force
    cfg.write_text(cfg.read_text().replace("steps: 3", "steps: 4"))
    with pytest.raises(ClipcompError, match="other settings.*train.steps"):
        sweep(str(cfg), progress=False)
    redone = sweep(str(cfg), progress=False, force=True)
    assert all(r["steps"] == 4 for r in redone["rows"])
    single = tmp_path / "one.yaml"
    single.write_text(cfg.read_text().replace("seeds: [0, 1]", "seeds: [0]"))
    assert "±" not in sweep(str(single), progress=False)["table"]  # one seed: no "± 0.000"


def test_torchrun_ddp_matches_single_process(tmp_path, small_data):
    """Two CPU processes (gloo) with gathered features train like one process on the global batch."""
    import os
    import subprocess
    import sys

    cfg = tmp_path / "t.yaml"
    common = (f"train: {{data: {small_data}, model: clipcomp-micro, steps: 3, batch_size: 16, warmup: 1, "
              f"log_every: 1, threads: 1, lr: 0.0005, out: OUT}}\n")
    cfg.write_text(common.replace("OUT", str(tmp_path / "ddp")))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           "-m", "clipcomp.cli", "train", str(cfg)], capture_output=True, text=True, env=env,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    single = tmp_path / "single.yaml"
    single.write_text(common.replace("OUT", str(tmp_path / "one")))
    main(["train", str(single)])
    a = torch.load(tmp_path / "ddp" / "final.pt", weights_only=False)["state_dict"]
    b = torch.load(tmp_path / "one" / "final.pt", weights_only=False)["state_dict"]
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-3, atol=2e-5)
    assert len((tmp_path / "ddp" / "metrics.jsonl").read_text().splitlines()) == 3  # rank 0 logs alone


def test_report_to_tensorboard_writes_events_tensorboard_reads(tmp_path, small_data):
    pytest.importorskip("tensorboard", reason="the tensorboard extra is not installed")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = tmp_path / "tb-run"
    main(["train", "--data", str(small_data), "--model", "clipcomp-micro", "--steps", "4", "--batch-size", "8",
          "--warmup", "1", "--log-every", "2", "--threads", "1", "-o", str(out), "-q", "--report-to", "tensorboard",
          "--eval", f"binding={small_data}"])
    acc = EventAccumulator(str(out / "tensorboard"))
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    assert {"train/loss", "train/lr", "train/logit_scale"} <= tags
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [e.step for e in acc.Scalars("train/loss")] == [x["step"] for x in lines] == [2, 4]
    assert [e.value for e in acc.Scalars("train/loss")] == pytest.approx([x["loss"] for x in lines], rel=1e-6)
    evals = [t for t in tags if t.startswith("eval/binding-0/")]
    assert evals and [e.step for e in acc.Scalars(evals[0])] == [0, 4]  # before and after
    with pytest.raises(SystemExit) as exc:
        main(["train", "--data", str(small_data), "-o", str(tmp_path / "x"), "--report-to", "mlflow"])
    assert exc.value.code == 2
