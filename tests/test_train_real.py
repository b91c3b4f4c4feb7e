"""Training on real image–caption data without a config file: COCO captions JSON, CSV manifest, WebDataset
shards made from the bundled COCO images, the synthetic dataset; exact resume; DDP; registered losses."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from conftest import run_cli  # noqa: E402

from clipcomp.errors import ClipcompError  # noqa: E402
from clipcomp.train.trainer import TrainConfig, train  # noqa: E402

SAMPLE = Path(__file__).parent / "data" / "coco_sample"
COCO_JSON = SAMPLE / "captions_val2017.json"
IMAGES = SAMPLE / "images"
FAST = ["--model", "clipcomp-micro", "--steps", "3", "--batch-size", "8", "--lr", "1e-4", "--warmup", "1",
        "--threads", "1", "-q"]


def _pairs() -> list[tuple[str, str, int]]:
    d = json.loads(COCO_JSON.read_text())
    files = {im["id"]: im["file_name"] for im in d["images"]}
    return [(files[a["image_id"]], a["caption"].strip(), a["image_id"]) for a in d["annotations"]]


@pytest.fixture(scope="module")
def manifest(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("man") / "pairs.csv"
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["filepath", "title", "weight", "neg"])
        for i, (fn, cap, _) in enumerate(_pairs()):
            w.writerow([str(IMAGES / fn), cap, 0.5 + (i % 3) * 0.25, cap.replace("a ", "two ", 1)])
    return path


@pytest.fixture(scope="module")
def shards(tmp_path_factory) -> Path:
    """Three img2dataset-style shards (KEY.jpg, KEY.txt, KEY.json) of the real COCO images and captions."""
    import webdataset as wds

    root = tmp_path_factory.mktemp("wds")
    pairs = _pairs()
    for s in range(3):
        with wds.TarWriter(str(root / f"{s:05d}.tar")) as sink:
            for i, (fn, cap, iid) in enumerate(pairs[s::3]):
                sink.write({"__key__": f"{s:05d}{i:04d}", "jpg": (IMAGES / fn).read_bytes(), "txt": cap,
                            "json": json.dumps({"image_id": iid, "weight": 1.0})})
    return root


def _state(path: Path) -> dict:
    return torch.load(path, weights_only=False)["state_dict"]


def _equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_train_on_coco_captions_json(tmp_path, capsys):
    code, out, err = run_cli(["train", "--data", str(COCO_JSON), "--images", str(IMAGES), "-o",
                              str(tmp_path / "r"), "--workers", "0", *FAST], capsys)
    assert code == 0, err
    run = json.loads((tmp_path / "r" / "run.json").read_text())
    assert run["format"] == "coco" and run["n_items"] == 90 and run["status"] == "finished"
    assert (tmp_path / "r" / "final.pt").exists() and "step 3/3" in out


def test_train_on_csv_manifest_with_workers(tmp_path, capsys, manifest):
    code, _, err = run_cli(["train", "--data", str(manifest), "-o", str(tmp_path / "r"), "--workers", "2",
                            "--augment", *FAST], capsys)
    assert code == 0, err
    run = json.loads((tmp_path / "r" / "run.json").read_text())
    assert run["format"] == "manifest" and run["n_items"] == 90 and run["loader_workers"] == 2


def test_manifest_without_caption_column_is_one_line(tmp_path, capsys):
    (tmp_path / "m.csv").write_text(f"filepath,label\n{IMAGES / '000000000139.jpg'},tv\n")
    code, _, err = run_cli(["train", "--data", str(tmp_path / "m.csv"), "-o", str(tmp_path / "r"), *FAST], capsys)
    assert code == 2 and "no caption column" in err and "--caption-column" in err
    assert len([ln for ln in err.splitlines() if ln.strip()]) == 1


def test_train_on_webdataset_shards_brace_and_glob(tmp_path, capsys, shards):
    code, _, err = run_cli(["train", "--data", str(shards / "{00000..00002}.tar"), "-o", str(tmp_path / "b"),
                            "--workers", "2", *FAST], capsys)
    assert code == 0, err
    run = json.loads((tmp_path / "b" / "run.json").read_text())
    assert run["format"] == "webdataset" and run["status"] == "finished"
    code, _, err = run_cli(["train", "--data", str(shards / "*.tar"), "-o", str(tmp_path / "g"), "--workers", "0",
                            *FAST], capsys)
    assert code == 0, err


def test_train_on_synthetic_dataset_without_config(tmp_path, capsys):
    from clipcomp.synth import CaptionKnobs, WorldConfig
    from clipcomp.synth.dataset import DatasetSpec, generate

    generate(WorldConfig(), CaptionKnobs(), DatasetSpec(out=str(tmp_path / "d"), n_train=64, n_test=8),
             progress=False)
    code, _, err = run_cli(["train", "--data", str(tmp_path / "d"), "-o", str(tmp_path / "r"), "--loss", "negclip",
                            *FAST], capsys)
    assert code == 0, err
    assert json.loads((tmp_path / "r" / "run.json").read_text())["fields"] == {"hard_negatives": "negative_caption"}


@pytest.mark.parametrize("source", ["manifest", "webdataset"])
def test_resume_on_real_data_is_exact(tmp_path, manifest, shards, source):
    data = str(manifest) if source == "manifest" else str(shards)
    base = dict(data=data, model="clipcomp-micro", steps=6, batch_size=8, warmup=1, lr=1e-4, threads=1,
                checkpoint_every=2, workers=2, augment=True, shuffle_buffer=10)
    train(TrainConfig(out=str(tmp_path / "straight"), **base), progress=False)
    assert train(TrainConfig(out=str(tmp_path / "resumed"), **base), progress=False, stop_after=3)["steps_done"] == 3
    res = train(TrainConfig(out=str(tmp_path / "resumed"), **base), progress=False)
    assert res["resumed_from"] == 3
    assert _equal(_state(tmp_path / "straight" / "final.pt"), _state(tmp_path / "resumed" / "final.pt"))


def test_corrupt_image_is_one_line_or_skipped_and_counted(tmp_path, capsys):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    rows = [("filepath", "caption")] + [(str(IMAGES / fn), cap) for fn, cap, _ in _pairs()[:15]] + \
        [(str(bad), "a broken picture")]
    with open(tmp_path / "m.csv", "w", newline="") as f:
        csv.writer(f).writerows(rows)
    args = ["train", "--data", str(tmp_path / "m.csv"), "--workers", "0", "--batch-size", "16",
            "--model", "clipcomp-micro", "--steps", "2", "--warmup", "1", "-q"]
    code, _, err = run_cli([*args, "-o", str(tmp_path / "a")], capsys)
    assert code == 2 and "broken.jpg: cannot read image" in err
    assert len([ln for ln in err.splitlines() if ln.strip()]) == 1
    code, _, err = run_cli([*args, "-o", str(tmp_path / "b"), "--skip-bad"], capsys)
    assert code == 0, err
    run = json.loads((tmp_path / "b" / "run.json").read_text())
    assert run["n_skipped"] == 2 and "broken.jpg" in run["skipped"][0]  # one bad row, seen in both steps


def test_truncated_shard_is_named(tmp_path, capsys, shards):
    data = (shards / "00000.tar").read_bytes()
    (tmp_path / "cut.tar").write_bytes(data[: len(data) // 3])
    code, _, err = run_cli(["train", "--data", str(tmp_path / "cut.tar"), "-o", str(tmp_path / "r"), "--workers",
                            "0", *FAST], capsys)
    assert code == 2 and "cut.tar" in err, err


def test_registered_loss_with_extra_field_needs_no_trainer_change(tmp_path, manifest):
    from clipcomp.train.losses import LOSSES, TrainingLoss, register_loss

    seen: list[list[float]] = []

    @register_loss
    class WeightedInfoNCE(TrainingLoss):
        name = "test-weighted"
        fields = ("weight",)
        text_fields = ("negative",)

        def forward(self, image_features, text_features, logit_scale, weight=None, negative_features=None, **_):
            seen.append(weight.tolist())
            assert negative_features.shape == text_features.shape
            logits = logit_scale * image_features @ text_features.T
            labels = torch.arange(len(logits))
            ce = torch.nn.functional.cross_entropy(logits, labels, reduction="none")
            return (ce * weight).sum() / weight.sum()

    try:
        res = train(TrainConfig(data=str(manifest), out=str(tmp_path / "w"), model="clipcomp-micro", steps=2,
                                batch_size=8, warmup=1, lr=1e-4, threads=1, workers=0, loss="test-weighted",
                                fields={"negative": "neg"}), progress=False)
        assert res["steps_done"] == 2 and len(seen) == 2
        assert all(w in (0.5, 0.75, 1.0) for batch in seen for w in batch) and len(seen[0]) == 8
        with pytest.raises(ClipcompError, match="needs batch field 'negative'.*no column 'negative'"):
            train(TrainConfig(data=str(manifest), out=str(tmp_path / "x"), model="clipcomp-micro", steps=1,
                              batch_size=8, warmup=0, loss="test-weighted"), progress=False)
    finally:
        LOSSES.pop("test-weighted")


def test_negclip_loss_equals_hand_computation():
    from clipcomp.train.losses import make_loss

    g = torch.Generator().manual_seed(0)
    img, txt, neg = (torch.nn.functional.normalize(torch.randn(4, 6, generator=g), dim=-1) for _ in range(3))
    scale = torch.tensor(10.0)
    got = make_loss("negclip")(img, txt, scale, hard_negatives_features=neg)
    s_i2t = (scale * img @ torch.cat([txt, neg]).T).numpy()
    s_t2i = (scale * txt @ img.T).numpy()

    def ce(rows):
        return np.mean([np.log(np.exp(r).sum()) - r[i] for i, r in enumerate(rows)])

    assert float(got) == pytest.approx((ce(s_i2t) + ce(s_t2i)) / 2, rel=1e-5)


def test_freeze_and_wise_ft(tmp_path, manifest):
    base = dict(data=str(manifest), model="clipcomp-micro", steps=2, batch_size=8, warmup=1, lr=1e-3, threads=1,
                workers=0, seed=3)
    train(TrainConfig(out=str(tmp_path / "f"), freeze="image", **base), progress=False)
    from clipcomp.models import load_model

    start = load_model("clipcomp-micro", seed=3).model.state_dict()
    frozen = _state(tmp_path / "f" / "final.pt")
    assert all(torch.equal(frozen[k], start[k]) for k in start if k.startswith("visual."))
    assert not torch.equal(frozen["text_projection"], start["text_projection"])
    train(TrainConfig(out=str(tmp_path / "w"), wise_ft=0.25, **base), progress=False)
    tuned, mixed = _state(tmp_path / "w" / "finetuned.pt"), _state(tmp_path / "w" / "final.pt")
    for k in ("text_projection", "visual.proj"):
        torch.testing.assert_close(mixed[k], 0.75 * start[k] + 0.25 * tuned[k])


def test_finetune_evaluates_before_and_after_in_one_command(tmp_path, capsys, manifest, monkeypatch):
    monkeypatch.setenv("CLIPCOMP_CACHE", str(tmp_path / "cache"))
    code, out, err = run_cli(["train", "--data", str(manifest), "-o", str(tmp_path / "ft"), "--workers", "0",
                              "--eval", f"retrieval={COCO_JSON}", "--eval-images", str(IMAGES), *FAST], capsys)
    assert code == 0, err
    before = json.loads((tmp_path / "ft" / "eval" / "before-retrieval-0" / "summary.json").read_text())
    after = json.loads((tmp_path / "ft" / "eval" / "after-retrieval-0" / "summary.json").read_text())
    assert before["metrics"]["n_images"] == after["metrics"]["n_images"] == 18
    assert "before → after" in out and "text_retrieval_recall@1" in out


@pytest.mark.slow
def test_torchrun_ddp_on_real_manifest_matches_single_process(tmp_path, manifest):
    """Two CPU processes (gloo), each decoding its half of the global batch, train like one process."""
    args = ["train", "--data", str(manifest), "--model", "clipcomp-micro", "--steps", "3", "--batch-size", "8",
            "--warmup", "1", "--lr", "5e-4", "--threads", "1", "--workers", "1", "--log-every", "1", "-q"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           "-m", "clipcomp.cli", *args, "-o", str(tmp_path / "ddp")], capture_output=True, text=True,
                          env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    one = subprocess.run([sys.executable, "-m", "clipcomp.cli", *args, "-o", str(tmp_path / "one")],
                         capture_output=True, text=True, env=env, timeout=300)
    assert one.returncode == 0, one.stderr[-3000:]
    a, b = _state(tmp_path / "ddp" / "final.pt"), _state(tmp_path / "one" / "final.pt")
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-3, atol=2e-5)


def test_shards_without_a_usable_sample_fail_fast_even_with_skip_bad(tmp_path, capsys):
    """No sample has a caption: --skip-bad cannot help; a full pass without one usable sample is one line, exit 2
    (it used to loop forever)."""
    import webdataset as wds

    pairs = _pairs()[:12]
    with wds.TarWriter(str(tmp_path / "00000.tar")) as sink:
        for i, (fn, _, _) in enumerate(pairs):
            sink.write({"__key__": f"{i:05d}", "jpg": (IMAGES / fn).read_bytes()})
    code, _, err = run_cli(["train", "--data", str(tmp_path / "00000.tar"), "-o", str(tmp_path / "r"), "--workers",
                            "0", "--skip-bad", *FAST], capsys)
    assert code == 2 and "no usable sample in a full pass" in err and "without a caption" in err


def test_non_finite_loss_stops_with_one_line_and_no_nan_weights(tmp_path, capsys):
    args = [a for a in FAST if a not in ("--lr", "1e-4")]
    code, _, err = run_cli(["train", "--data", str(COCO_JSON), "--images", str(IMAGES), "-o", str(tmp_path / "r"),
                            "--workers", "0", "--lr", "1e8", *args, "--steps", "20"], capsys)
    assert code == 2 and "loss became non-finite" in err and len(err.strip().splitlines()) == 1
    assert json.loads((tmp_path / "r" / "run.json").read_text())["status"] == "diverged"
    assert not (tmp_path / "r" / "final.pt").exists()
    code, _, err = run_cli(["train", "--data", str(COCO_JSON), "-o", str(tmp_path / "s"), "--lr", "inf"], capsys)
    assert code == 2 and "finite" in err
