"""The redesign's promises, checked end to end on the bundled real COCO sample:

- one evaluation registry: a toy suite added as one new module + one registry line runs through
  `eval suite`, `eval suites` and `train --eval`, item for item the same as the built-in task it reuses;
- typed configs: `TrainConfig(steps=20)` works in Python as on the command line, and `clipcomp train CONFIG
  key.sub=value` and the Python loader accept the same overrides and give the same config;
- the trainer's torch scheduler sets exactly the learning rates of `cosine_lr`, also after a resume;
- `eval suite aro-vg-relation --force` over an earlier run gives the same result as a fresh run.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from conftest import run_cli

pytest.importorskip("torch")

from clipcomp.errors import ClipcompError  # noqa: E402
from clipcomp.tasks.registry import SUITES, Suite, get_suite, register_suite  # noqa: E402
from clipcomp.train.trainer import TrainConfig, cosine_lr, load_train_config, make_scheduler  # noqa: E402

SAMPLE = Path(__file__).parent / "data" / "coco_sample"
IMAGES = SAMPLE / "images"
MODEL = ["--model", "clipcomp-micro", "--cache-dir", "none", "-q"]

TOY_MODULE = '''
"""A toy suite: caption selection on a manifest whose negatives are the captions reversed word by word."""
import pyarrow.csv as pacsv

from clipcomp.datasets.selection import SelectionData


def open_suite(path, images, options, cache):
    t = pacsv.read_csv(path).to_pylist()
    return SelectionData("toy", [str(i) for i in range(len(t))], ["reversed"] * len(t),
                         [images + "/" + r["image"] for r in t], [r["caption"] for r in t],
                         [[" ".join(reversed(r["caption"].split()))] for r in t])
'''


def _captions() -> list[tuple[str, str]]:
    d = json.loads((SAMPLE / "captions_val2017.json").read_text())
    files = {im["id"]: im["file_name"] for im in d["images"]}
    seen = {}
    for a in d["annotations"]:
        seen.setdefault(files[a["image_id"]], a["caption"].strip())
    return sorted(seen.items())


@pytest.fixture
def toy_suite(tmp_path, monkeypatch):
    """The toy suite: one module on the path and one registry line."""
    import inspect

    from clipcomp.datasets.selection import SelectionData

    assert "subsets" in inspect.signature(SelectionData).parameters
    (tmp_path / "toy_suite_mod.py").write_text(TOY_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    register_suite(Suite("toy-reversed", load="toy_suite_mod:open_suite", run="clipcomp.tasks.selection:run_suite"))
    rows = _captions()[:6]
    path = tmp_path / "toy.csv"
    pacsv.write_csv(pa.table({"image": [r[0] for r in rows], "caption": [r[1] for r in rows]}), path)
    # the same items as a plain selection manifest, for the built-in `eval select`
    man = tmp_path / "same.csv"
    pacsv.write_csv(pa.table({"image": [r[0] for r in rows], "positive": [r[1] for r in rows],
                               "negative": [" ".join(reversed(r[1].split())) for r in rows]}), man)
    yield path, man
    SUITES.pop("toy-reversed", None)
    sys.modules.pop("toy_suite_mod", None)


def test_toy_suite_runs_through_eval_suite_and_matches_the_builtin_task(toy_suite, tmp_path, capsys):
    path, man = toy_suite
    code, _, err = run_cli(["eval", "suite", "toy-reversed", str(path), "-o", str(tmp_path / "toy"),
                            "--images", str(IMAGES), *MODEL], capsys)
    assert code == 0, err
    code, _, err = run_cli(["eval", "select", str(man), "-o", str(tmp_path / "sel"), "--images", str(IMAGES),
                            *MODEL], capsys)
    assert code == 0, err
    toy = pq.read_table(tmp_path / "toy" / "items.parquet")
    sel = pq.read_table(tmp_path / "sel" / "items.parquet")
    assert toy.num_rows == sel.num_rows == 6
    assert toy.column("correct").to_pylist() == sel.column("correct").to_pylist()
    assert toy.column("positive_score").to_pylist() == pytest.approx(sel.column("positive_score").to_pylist())
    summary = json.loads((tmp_path / "toy" / "summary.json").read_text())
    assert summary["metrics"]["acc"] == pytest.approx(sum(toy.column("correct").to_pylist()) / 6)


def test_toy_suite_in_a_suites_table_and_in_train_eval(toy_suite, tmp_path, capsys):
    import yaml

    path, _ = toy_suite
    cfg = tmp_path / "suites.yaml"
    cfg.write_text(yaml.safe_dump({"models": [{"name": "micro", "model": "clipcomp-micro"}],
                                   "suites": [{"suite": "toy-reversed", "path": str(path), "images": str(IMAGES)}],
                                   "settings": {"batch_size": 8}}))
    code, _, err = run_cli(["eval", "suites", str(cfg), "-o", str(tmp_path / "table"), "-q"], capsys)
    assert code == 0, err
    table = pacsv.read_csv(tmp_path / "table" / "table.csv")
    item = pq.read_table(tmp_path / "table" / "micro" / "toy-reversed" / "items.parquet")
    assert table.column("toy-reversed").to_pylist() == [pytest.approx(sum(item.column("correct").to_pylist()) / 6)]

    code, _, err = run_cli(["train", "--data", str(SAMPLE / "captions_val2017.json"), "--images", str(IMAGES),
                            "-o", str(tmp_path / "t"), "--model", "clipcomp-micro", "--steps", "2",
                            "--batch-size", "4", "--workers", "0", "--eval", f"toy-reversed={path}",
                            "--eval-images", str(IMAGES), "-q"], capsys)
    assert code == 0, err
    for when in ("before", "after"):
        s = json.loads((tmp_path / "t" / "eval" / f"{when}-toy-reversed-0" / "summary.json").read_text())
        assert s["n_items"] == 6 and s["task"] == "image_caption_selection"


def test_unknown_suite_is_one_line_listing_the_registered_ones(tmp_path, capsys):
    code, _, err = run_cli(["eval", "suite", "sugarcrep", str(SAMPLE / "labels.csv"), "-o", str(tmp_path / "x"),
                            *MODEL], capsys)
    assert code == 2 and "unknown suite 'sugarcrep'" in err and "did you mean sugarcrepe" in err
    with pytest.raises(ClipcompError, match="already registered"):
        register_suite(get_suite("valse"))


# ------------------------------------------------------------------------------------------------ configs


def test_train_config_in_python_settles_the_warmup_and_checks_types():
    assert TrainConfig(steps=20).warmup == 20  # the default (100) clamped to the steps, in the object itself
    assert TrainConfig().warmup == 100 and TrainConfig(steps=20, warmup=5).warmup == 5
    TrainConfig(steps=20).validate()
    with pytest.raises(Exception, match="valid integer"):
        TrainConfig(steps="20")
    with pytest.raises(Exception, match="unexpected|Unexpected"):
        TrainConfig(stepz=20)


def test_cli_and_python_loader_take_the_same_overrides(tmp_path, capsys):
    import torch
    import yaml

    cfg = tmp_path / "train.yaml"
    cfg.write_text(yaml.safe_dump({"train": {"data": str(SAMPLE / "captions_val2017.json"), "images": str(IMAGES),
                                             "model": "clipcomp-micro", "steps": 50, "batch_size": 4,
                                             "workers": 0, "out": str(tmp_path / "run")}}))
    overrides = ["train.steps=3", "lr=0.002", "train.loss_options.temperature_floor=0.0", "seed=7"]
    py = load_train_config(str(cfg), [o for o in overrides if "temperature" not in o])
    assert (py.steps, py.lr, py.seed, py.warmup) == (3, 0.002, 7, 3)
    code, _, err = run_cli(["train", str(cfg), *[o for o in overrides if "temperature" not in o], "-q"], capsys)
    assert code == 0, err
    saved = torch.load(tmp_path / "run" / "final.pt", map_location="cpu", weights_only=False)["config"]
    import dataclasses

    assert saved == dataclasses.asdict(py)
    from clipcomp.io import file_sha256

    first = file_sha256(str(tmp_path / "run" / "final.pt"))
    code, _, err = run_cli(["train", str(cfg), *[o for o in overrides if "temperature" not in o], "-q"], capsys)
    assert code == 0, err
    assert file_sha256(str(tmp_path / "run" / "final.pt")) == first  # a rerun writes the same bytes
    code, _, err = run_cli(["train", str(cfg), "train.stepz=3", "-q"], capsys)
    assert code == 2 and "unknown key 'train.stepz'" in err and "did you mean steps" in err
    code, _, err = run_cli(["train", str(cfg), "train.steps=many", "-q"], capsys)
    assert code == 2 and "'train.steps' = 'many'" in err
    code, _, err = run_cli(["train", str(cfg), "=3", "-q"], capsys)
    assert code == 2 and "expected KEY.SUB=VALUE" in err


def test_override_parsing_nests_and_reads_yaml_values():
    from clipcomp.config import apply_overrides, parse_overrides

    assert parse_overrides(["a.b=1", "a.c=[x, y]", "d=0.5", "e=hello world", "f=null"]) == \
        {"a": {"b": 1, "c": ["x", "y"]}, "d": 0.5, "e": "hello world", "f": None}
    assert apply_overrides({"a": {"b": 0, "z": 2}}, ["a.b=1"]) == {"a": {"b": 1, "z": 2}}


def test_scheduler_sets_exactly_the_cosine_rates_also_after_a_jump():
    import torch

    cfg = TrainConfig(steps=40, warmup=7, lr=3e-3)
    p = torch.nn.Parameter(torch.zeros(2))
    opt = torch.optim.AdamW([{"params": [p]}, {"params": [], "weight_decay": 0.0}], lr=cfg.lr)
    sched = make_scheduler(opt, cfg)
    for step in range(cfg.steps):
        assert [g["lr"] for g in opt.param_groups] == [cosine_lr(step, cfg)] * 2
        opt.step()
        sched.step()
    sched.jump_to(13)
    assert [g["lr"] for g in opt.param_groups] == [cosine_lr(13, cfg)] * 2


# ------------------------------------------------------------------------------------------------ ARO --force


def test_aro_force_over_an_earlier_run_equals_a_fresh_run(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("CLIPCOMP_DATA_CACHE", str(tmp_path / "cache"))
    rows = _captions()[:4]
    rel = [{"image_id": Path(n).stem, "image_path": n, "bbox_x": 5 + i, "bbox_y": 6, "bbox_w": 40, "bbox_h": 30,
            "true_caption": "the cup is on the table", "false_caption": "the table is on the cup",
            "relation_name": "on"} for i, (n, _) in enumerate(rows)]
    data = tmp_path / "visual_genome_relation.json"
    data.write_text(json.dumps(rel))
    args = ["eval", "suite", "aro-vg-relation", str(data), "--images", str(IMAGES), *MODEL]
    assert run_cli([*args, "-o", str(tmp_path / "a")], capsys)[0] == 0
    first = pq.read_table(tmp_path / "a" / "items.parquet")
    code, _, err = run_cli([*args, "-o", str(tmp_path / "a"), "--force", "--batch-size", "2"], capsys)
    assert code == 0, err
    forced = pq.read_table(tmp_path / "a" / "items.parquet")
    code, _, err = run_cli([*args, "-o", str(tmp_path / "fresh"), "--batch-size", "2"], capsys)
    assert code == 0, err
    fresh = pq.read_table(tmp_path / "fresh" / "items.parquet")
    assert forced.num_rows == fresh.num_rows == first.num_rows == 4
    assert forced.column("correct").to_pylist() == fresh.column("correct").to_pylist()
    assert forced.column("positive_score").to_pylist() == pytest.approx(fresh.column("positive_score").to_pylist())
    assert not (tmp_path / "a" / "crops").exists()  # derived crops live in the cache, not in OUT
    assert any((tmp_path / "cache" / "suites").rglob("*.png"))


def test_loss_names_without_torch_match_the_registry():
    """`clipcomp train` checks loss names before importing torch; the light list must equal the registry."""
    from clipcomp.train.loss_names import LOSS_MODULES
    from clipcomp.train.losses import LOSSES

    assert set(LOSS_MODULES) == set(LOSSES)
    assert all(LOSSES[n].__module__ == m for n, m in LOSS_MODULES.items())
