"""Evaluation as library functions. `run_suite(name, path, out, ...)` is the one runner: it looks the name up in
the registry (clipcomp.tasks.registry), loads the model, applies the output rule to OUT, opens the data (any
files a loader derives, such as ARO's box crops, go to a cache directory, never into OUT), scores it and writes
`items.parquet` + `summary.json` (CLIP_benchmark's fields). `eval_zeroshot`, `eval_retrieval`, `eval_select`
and `eval_binding` are the same call with each task's options spelled out; `clipcomp eval ...`, `train --eval`,
suites tables and Slipform all come here.
"""

from __future__ import annotations

import os

from clipcomp.errors import ClipcompError
from clipcomp.models import ModelSpec
from clipcomp.models.embed import make_embedder

__all__ = ["ModelSpec", "eval_binding", "eval_retrieval", "eval_select", "eval_zeroshot", "make_embedder",
           "run_eval", "run_suite", "suite_cache_dir"]


# options that change how a run copes, not what it computes: not part of an output's fingerprint
RUNTIME_OPTIONS = ("skip_bad",)


def suite_cache_dir(name: str, paths: list[str], images: str | None) -> str:
    """Where files derived from a suite's data are kept between runs (keyed by the suite and its inputs)."""
    from clipcomp.io import cache_root, fingerprint

    key = fingerprint({"suite": name, "data": [os.path.abspath(p) for p in paths],
                       "images": os.path.abspath(images) if images else None})
    return os.path.join(cache_root(), "suites", f"{name}-{key[:16]}")


def run_suite(name: str, path: str | list[str], out: str, images: str | None = None, spec: ModelSpec | None = None,
              options: dict | None = None, force: bool = False, progress: bool = True) -> dict:
    """Run one registered task or suite on one model; writes OUT/items.parquet + summary.json, returns the
    summary. `options` are the entry's own (e.g. templates, seed, scenes, skip_bad)."""
    from clipcomp.io import check_output_path, prepare_output
    from clipcomp.tasks.common import write_result
    from clipcomp.tasks.registry import get_suite

    suite = get_suite(name)
    check_output_path(out)
    paths = [path] if isinstance(path, str) else list(path)
    if not paths:
        raise ClipcompError(f"{name}: needs at least one input path")
    for p in paths:
        if "://" not in p and not os.path.exists(p):
            raise ClipcompError(f"{p}: {name} data not found")
    if suite.needs_images and images is None:
        raise ClipcompError(f"suite {name} needs images: give `images: DIR` (its image folder)")
    opts = dict(options or {})
    emb, info = make_embedder(spec or ModelSpec(), progress)
    settings = {"suite": name, "data": [os.path.abspath(p) for p in paths], "images": images,
                "options": {k: v for k, v in opts.items() if k not in RUNTIME_OPTIONS},
                "model_identity": info["identity"]}
    prepare_output(out, f"eval {name}", settings, force=force, markers=("summary.json", "items.parquet"))
    data = suite.open(path, images, opts, suite_cache_dir(name, paths, images))
    return write_result(suite.score(emb, data, opts), out, info)


def eval_zeroshot(data: str, out: str = "runs/zeroshot", classnames: str | None = None, templates: str = "openai",
                  images: str | None = None, spec: ModelSpec | None = None, skip_bad: bool = False,
                  force: bool = False, progress: bool = True) -> dict:
    """Zero-shot classification of an image folder (one sub-folder per class) or a `path,label` manifest."""
    return run_suite("zeroshot", data, out, images, spec,
                     {"classnames": classnames, "templates": templates, "skip_bad": skip_bad}, force, progress)


def eval_retrieval(captions: str, out: str = "runs/retrieval", images: str | None = None,
                   spec: ModelSpec | None = None, skip_bad: bool = False, force: bool = False,
                   progress: bool = True) -> dict:
    """Image↔text retrieval (Recall@1/5/10 both ways) on a COCO-style captions JSON."""
    return run_suite("retrieval", captions, out, images, spec, {"skip_bad": skip_bad}, force, progress)


def eval_select(inputs: list[str] | str, out: str = "runs/select", images: str | None = None,
                spec: ModelSpec | None = None, skip_bad: bool = False, force: bool = False,
                progress: bool = True) -> dict:
    """Caption selection: SugarCrepe JSON files/folders (need `images`) or one manifest table."""
    inputs = [inputs] if isinstance(inputs, str) else list(inputs)
    if not inputs:
        raise ClipcompError("caption selection needs at least one input file")
    return run_suite("select", inputs if len(inputs) > 1 else inputs[0], out, images, spec, {"skip_bad": skip_bad},
                     force, progress)


def eval_binding(data: str, out: str = "runs/binding", spec: ModelSpec | None = None, scenes: int = 1000,
                 split: str = "test", seed: int = 0, force: bool = False, progress: bool = True) -> dict:
    """Binding probes on a synthetic dataset's held-out scenes (attribute swap / replace / t→i swap); the
    architecture defaults to the one recorded in the checkpoint."""
    if scenes < 1:
        raise ClipcompError(f"--scenes must be ≥ 1 (got {scenes})")
    return run_suite("binding", data, out, None, spec or ModelSpec(model=None, cache_dir=None),
                     {"scenes": scenes, "split": split, "seed": seed}, force, progress)


def run_eval(task: str, data: str, out: str, spec: ModelSpec | None = None, images: str | None = None,
             force: bool = False, progress: bool = True) -> dict:
    """One registered task or suite by name on one data path (how `train --eval NAME=PATH` calls it)."""
    return run_suite(task, data, out, images, spec, None, force, progress)
