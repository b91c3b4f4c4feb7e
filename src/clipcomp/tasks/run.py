"""Evaluation as library functions: one call per task loads the model, reads the dataset, runs the task module
and writes `items.parquet` + `summary.json` (CLIP_benchmark's fields). `clipcomp eval ...` is a thin layer over
these; a notebook calls them directly. `EVAL_TASKS` maps task names to them (used by `train --eval` and suites).
"""

from __future__ import annotations

import os

from clipcomp.errors import ClipcompError
from clipcomp.models import ModelSpec
from clipcomp.models.embed import make_embedder

__all__ = ["ModelSpec", "make_embedder"]


def _run(task: str, evaluate_fn, spec: ModelSpec, out: str, settings: dict, force: bool, progress: bool) -> dict:
    """Load the model, apply the reuse rule to OUT, run the task, write items.parquet + summary.json."""
    from clipcomp.io import prepare_output
    from clipcomp.tasks import write_result

    emb, info = make_embedder(spec, progress)
    prepare_output(out, f"eval {task}", {**settings, "model_identity": info["identity"]}, force=force,
                   markers=("summary.json", "items.parquet"))
    return write_result(evaluate_fn(emb), out, info)


def eval_zeroshot(data: str, out: str = "runs/zeroshot", classnames: str | None = None, templates: str = "openai",
                  images: str | None = None, spec: ModelSpec | None = None, skip_bad: bool = False,
                  force: bool = False, progress: bool = True) -> dict:
    """Zero-shot classification of an image folder (one sub-folder per class) or a `path,label` manifest."""
    from clipcomp.datasets.classification import load_image_folder, load_manifest
    from clipcomp.tasks import zeroshot

    ds = load_image_folder(data, classnames) if os.path.isdir(data) else load_manifest(data, classnames, images)
    tpl = zeroshot.load_templates(templates)
    return _run("zeroshot", lambda emb: zeroshot.evaluate(emb, ds, tpl, skip_bad=skip_bad), spec or ModelSpec(),
                out, {"data": os.path.abspath(data), "classnames": classnames, "templates": tpl}, force, progress)


def eval_retrieval(captions: str, out: str = "runs/retrieval", images: str | None = None,
                   spec: ModelSpec | None = None, skip_bad: bool = False, force: bool = False,
                   progress: bool = True) -> dict:
    """Image↔text retrieval (Recall@1/5/10 both ways) on a COCO-style captions JSON."""
    from clipcomp.datasets.coco import load_coco_captions
    from clipcomp.tasks import retrieval

    ds = load_coco_captions(captions, images)
    return _run("retrieval", lambda emb: retrieval.evaluate(emb, ds, skip_bad=skip_bad), spec or ModelSpec(),
                out, {"data": os.path.abspath(captions), "images": images}, force, progress)


def eval_select(inputs: list[str] | str, out: str = "runs/select", images: str | None = None,
                spec: ModelSpec | None = None, skip_bad: bool = False, force: bool = False,
                progress: bool = True) -> dict:
    """Caption selection: SugarCrepe JSON files/folders (need `images`) or one manifest table."""
    from clipcomp.datasets.selection import load_selection_manifest, load_sugarcrepe
    from clipcomp.tasks import selection

    inputs = [inputs] if isinstance(inputs, str) else list(inputs)
    if not inputs:
        raise ClipcompError("caption selection needs at least one input file")
    manifest = len(inputs) == 1 and inputs[0].lower().endswith((".csv", ".tsv", ".parquet", ".pq", ".jsonl"))
    if manifest:
        ds = load_selection_manifest(inputs[0], images)
    else:
        if images is None:
            raise ClipcompError("SugarCrepe input needs --images DIR (the COCO val2017 images)")
        ds = load_sugarcrepe(inputs, images)
    return _run("select", lambda emb: selection.evaluate(emb, ds, skip_bad=skip_bad), spec or ModelSpec(),
                out, {"data": [os.path.abspath(p) for p in inputs], "images": images}, force, progress)


def eval_binding(data: str, out: str = "runs/binding", spec: ModelSpec | None = None, scenes: int = 1000,
                 split: str = "test", seed: int = 0, force: bool = False, progress: bool = True) -> dict:
    """Binding probes on a synthetic dataset's held-out scenes (attribute swap / replace / t→i swap)."""
    from clipcomp.tasks import binding

    if scenes < 1:
        raise ClipcompError(f"--scenes must be ≥ 1 (got {scenes})")
    spec = spec or ModelSpec(model=None, cache_dir=None)
    if spec.model is None:
        from clipcomp.models import checkpoint_model_name

        spec.model = checkpoint_model_name(spec.pretrained) or "clipcomp-tiny"
    return _run("binding", lambda emb: binding.evaluate_dataset(emb, data, scenes, split, seed), spec, out,
                {"data": os.path.abspath(data), "scenes": scenes, "split": split, "probe_seed": seed}, force,
                progress)


EVAL_TASKS = {"zeroshot": eval_zeroshot, "retrieval": eval_retrieval, "select": eval_select,
              "binding": eval_binding}


def run_eval(task: str, data: str, out: str, spec: ModelSpec | None = None, images: str | None = None,
             force: bool = False, progress: bool = True) -> dict:
    """One task by name on one data path (how `train --eval TASK=PATH` and suites call the harness)."""
    if task not in EVAL_TASKS:
        raise ClipcompError(f"unknown evaluation task {task!r} (expected {', '.join(EVAL_TASKS)})")
    if task == "binding":
        return eval_binding(data, out, spec, force=force, progress=progress)
    return EVAL_TASKS[task](data, out, images=images, spec=spec, force=force, progress=progress)
