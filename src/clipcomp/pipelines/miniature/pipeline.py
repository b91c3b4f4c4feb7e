"""`clipcomp quickstart`: generate a world with a chosen co-occurrence structure → ConceptStats from its
captions → train a small CLIP → zero-shot classify the class shape in two-object and pasted test scenes →
PMI analysis → report. A uniform-co-occurrence control and paste-augmented fine-tuning run beside it.

Every stage writes to OUT and is skipped (or resumed) when its output is already there, so an interrupted
quickstart continues where it stopped.
"""

from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import field

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from clipcomp.config import typed
from clipcomp.errors import ClipcompError
from clipcomp.io import atomic_output, atomic_write_json, file_sha256, prepare_output, write_parquet
from clipcomp.pipelines.miniature.design import DEFAULT_CLASSES, DEFAULT_PARTNERS, design_pmi, joint_design, world_for

TEMPLATES = ("a {c}", "a picture of a {c}", "an image with a {c}", "a {c} on a dark background")
BENCHMARKS = ("pairs", "paste")


@typed
class QuickstartConfig:
    out: str = "runs/quickstart"
    classes: list[str] = field(default_factory=lambda: list(DEFAULT_CLASSES))
    partners: list[str] = field(default_factory=lambda: list(DEFAULT_PARTNERS))
    decay: float = 0.5  # weight ratio between a class's successive partners (graded design)
    never: int = 1  # partners per class never seen with it
    n_train: int = 40_000
    per_pair: int = 40  # test scenes per (class, partner) in each benchmark
    completeness: float = 0.5  # caption knob: chance the second object is named
    attribute_density: float = 0.0  # caption knob: chance each attribute is named (0: shapes only, so a small
    #                                 model spends its CPU budget on shapes, the concepts under study)
    model: str = "clipcomp-micro"
    steps: int = 1000
    batch_size: int = 128
    lr: float = 1e-3
    seed: int = 0
    workers: int = 2
    control: bool = True
    finetune: bool = True
    finetune_steps: int = 300
    finetune_lr: float = 2e-4
    finetune_n: int = 10_000
    area_fraction: float = 0.1
    device: str = "auto"
    # torch CPU threads for training and evaluation. Float sums run in a thread-count-dependent order, so the
    # documented numbers (README, docs/results/pmi_miniature.md: 2 threads) need the same count; 0: torch's own
    # default (the number of cores), which differs between machines.
    threads: int = 2

    def validate(self) -> None:
        for name in ("n_train", "per_pair", "steps", "batch_size", "workers", "finetune_steps", "finetune_n"):
            if getattr(self, name) < 1:
                raise ClipcompError(f"quickstart: {name.replace('_', '-')} must be ≥ 1 (got {getattr(self, name)})")
        for name in ("completeness", "attribute_density"):
            if not 0 <= getattr(self, name) <= 1:
                raise ClipcompError(f"quickstart: {name.replace('_', '-')} must be in [0, 1]")
        if not 0 < self.area_fraction < 1:
            raise ClipcompError("quickstart: area-fraction must be in (0, 1)")
        if self.threads < 0:
            raise ClipcompError(f"quickstart: threads must be ≥ 0 (got {self.threads}; 0 = torch's default)")


def _say(msg: str, progress: bool) -> None:
    if progress:
        print(f"[quickstart] {msg}", flush=True)


def _knobs(cfg: QuickstartConfig):
    from clipcomp.synth.captions import CaptionKnobs

    return CaptionKnobs(attribute_density=cfg.attribute_density, completeness=cfg.completeness)


def build_world_data(cfg: QuickstartConfig, variant: str, joint: np.ndarray, progress: bool) -> tuple[str, str]:
    """Generate the variant's training corpus and its ConceptStats; returns (data_dir, stats_dir)."""
    from clipcomp.cooccur.build import BuildOptions, build_stats
    from clipcomp.synth.dataset import DatasetSpec, generate

    root = os.path.join(cfg.out, variant)
    data = os.path.join(root, "data")
    world = world_for(cfg.classes, cfg.partners, joint)
    spec = DatasetSpec(out=data, n_train=cfg.n_train, n_test=0, seed=cfg.seed, shard_size=10_000,
                       workers=cfg.workers)
    _say(f"{variant}: generating {cfg.n_train:,} training scenes", progress)
    generate(world, _knobs(cfg), spec, progress=progress)
    captions = os.path.join(root, "captions.parquet")
    if not os.path.exists(captions):
        t = pq.read_table(os.path.join(data, "manifest.parquet"), columns=["caption", "split"])
        with atomic_output(captions) as tmp:
            pq.write_table(t.select(["caption"]), tmp)
    stats = os.path.join(root, "stats")
    _say(f"{variant}: concept statistics of the captions", progress)
    build_stats([captions], stats, BuildOptions(text_column="caption", min_count=1, workers=1))
    return data, stats


def build_testsets(cfg: QuickstartConfig, progress: bool) -> dict[str, str]:
    from clipcomp.pipelines.miniature import testsets

    base = world_for(cfg.classes, cfg.partners, joint_design(len(cfg.classes), len(cfg.partners), "uniform"))
    out = {}
    for bench in BENCHMARKS:
        d = os.path.join(cfg.out, "testsets", bench)
        out[bench] = d
        settings = {"version": 2, "classes": cfg.classes, "partners": cfg.partners, "per_pair": cfg.per_pair,
                    "seed": cfg.seed,
                    "area_fraction": cfg.area_fraction if bench == "paste" else None}
        # the output rule: same settings → reuse; other settings → this stage is rebuilt (force)
        state = prepare_output(d, "quickstart test set", settings, force=True, markers=("manifest.parquet",))
        if state.reuse and os.path.exists(os.path.join(d, "manifest.parquet")):
            continue
        _say(f"test set '{bench}': {len(cfg.classes) * len(cfg.partners) * cfg.per_pair:,} scenes", progress)
        if bench == "pairs":
            images, rows = testsets.pairs(cfg.classes, cfg.partners, base, cfg.per_pair, cfg.seed)
        else:
            images, rows = testsets.pasted(cfg.classes, cfg.partners, base, cfg.per_pair, cfg.area_fraction, cfg.seed)
        testsets.save_set(d, images, rows, {"settings": settings, "benchmark": bench})
    return out


def train_model(cfg: QuickstartConfig, data: str, out: str, progress: bool, pretrained: str | None = None,
                steps: int | None = None, lr: float | None = None) -> str:
    from clipcomp.train.trainer import TrainConfig, train

    steps = steps or cfg.steps
    tcfg = TrainConfig(data=data, out=out, model=cfg.model, pretrained=pretrained, steps=steps,
                       batch_size=cfg.batch_size, lr=lr or cfg.lr, warmup=min(100, steps // 10), seed=cfg.seed,
                       device=cfg.device, checkpoint_every=max(100, steps // 4), log_every=20)
    final = os.path.join(out, "final.pt")
    # the trainer's own output rule: a finished model with the same settings is reused, other settings refused
    state = prepare_output(out, "train", tcfg.resume_settings(), markers=("checkpoint.pt", "final.pt"))
    if state.reuse and os.path.exists(final):
        import torch

        done = torch.load(final, map_location="cpu", weights_only=False).get("step")
        if done == steps:  # the trainer counts steps as extendable; a finished quickstart model must match them
            return final
        raise ClipcompError(f"{out}: holds a model trained with other settings (differs in: steps {done} → "
                            f"{steps}); use another --out")
    _say(f"training {cfg.model} for {steps} steps → {out}", progress)
    train(tcfg, progress=progress)
    return final


def zero_shot(emb, cfg: QuickstartConfig, testset: str) -> pa.Table:
    """Per-item zero-shot classification of the class shape (prompts name the class shapes only), by the
    harness's zero-shot task on the in-memory test images; the test set's columns are kept beside the results."""
    from clipcomp.datasets.classification import ClassificationData
    from clipcomp.pipelines.miniature.testsets import load_set
    from clipcomp.tasks import zeroshot

    images, items = load_set(testset)
    labels = np.asarray(items.column("label").to_numpy())
    data = ClassificationData(os.path.basename(testset), [f"{testset}#{i}" for i in range(len(labels))], labels,
                              list(cfg.classes), arrays=images)
    res = zeroshot.evaluate(emb, data, list(TEMPLATES)).items
    return (items.append_column("pred", res.column("pred")).append_column("correct", res.column("correct"))
            .append_column("margin", res.column("margin")))


def evaluate(cfg: QuickstartConfig, name: str, weights: str, tests: dict[str, str], stats_dirs: dict[str, str],
             progress: bool, n_bins: int = 10) -> dict:
    """Both benchmarks for one model; PMI analysis against each given ConceptStats (`n_bins` equal-count bins:
    one per co-occurrence level of the design, since every level has the same number of test items)."""
    from clipcomp.analysis.pmi import analyze_results
    from clipcomp.stats import ConceptStats

    out = {}
    emb = None  # the model is loaded once, and only when some benchmark has no up-to-date results
    for bench, d in tests.items():
        res_dir = os.path.join(cfg.out, "results", f"{name}-{bench}")
        path = os.path.join(res_dir, "items.parquet")
        settings = {"weights": file_sha256(weights), "testset": file_sha256(os.path.join(d, "manifest.parquet")),
                    "classes": list(cfg.classes), "templates": list(TEMPLATES)}
        state = prepare_output(res_dir, "quickstart zero-shot", settings, force=True, markers=("items.parquet",))
        if state.reuse and os.path.exists(path):
            items = pq.read_table(path)
        else:
            _say(f"zero-shot: {name} on '{bench}'", progress)
            if emb is None:
                from clipcomp.models import ModelSpec
                from clipcomp.models.embed import make_embedder

                emb, _ = make_embedder(ModelSpec(cfg.model, weights, cfg.device, cache_dir=None), progress=False)
            items = zero_shot(emb, cfg, d)
            with atomic_output(path) as tmp:
                pq.write_table(items, tmp)
        out[bench] = {}
        for label, sdir in stats_dirs.items():
            joined, res = analyze_results(items, ConceptStats.load(sdir), pair_columns=("class", "partner"),
                                          n_bins=n_bins, seed=cfg.seed)
            res.set_chance(1.0 / len(cfg.classes))
            write_parquet(joined, os.path.join(res_dir, f"items_pmi_{label}.parquet"))
            out[bench][label] = {"analysis": res, "pair_table": pair_table(joined)}
    return out


def pair_table(joined: pa.Table) -> list[dict]:
    """Accuracy per (class, partner) with its PMI and training co-occurrence count."""
    rows: dict[tuple, dict] = {}
    for r in joined.select(["class", "partner", "correct", "pmi", "pair_count"]).to_pylist():
        e = rows.setdefault((r["class"], r["partner"]), {"class": r["class"], "partner": r["partner"], "n": 0,
                                                          "correct": 0, "pmi": r["pmi"], "pair_count": r["pair_count"]})
        e["n"] += 1
        e["correct"] += int(r["correct"])
    out = []
    for e in rows.values():
        e["accuracy"] = e["correct"] / e["n"]
        if e["pmi"] is None or not np.isfinite(e["pmi"]):
            e["pmi"] = None
        out.append(e)
    return out


def run(cfg: QuickstartConfig, progress: bool = True) -> dict:
    """The whole quickstart; returns the summary written to OUT/summary.json (with the environment it ran in)."""
    import torch

    cfg.validate()
    threads_before = torch.get_num_threads()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    try:
        return _run(cfg, progress)
    finally:
        torch.set_num_threads(threads_before)


def environment() -> dict:
    """What a float-exact rerun needs to match: library versions, torch's thread count, the CPU."""
    import platform

    import torch

    return {"torch": torch.__version__, "numpy": np.__version__, "torch_threads": torch.get_num_threads(),
            "machine": platform.machine(), "processor": platform.processor() or None, "cpu_count": os.cpu_count()}


def _run(cfg: QuickstartConfig, progress: bool) -> dict:
    from clipcomp.io import check_output_path, record_output, recorded_kind
    from clipcomp.pipelines.miniature.report import write_report

    t0 = time.perf_counter()
    check_output_path(cfg.out)
    other = recorded_kind(cfg.out)
    if other not in (None, "quickstart"):
        raise ClipcompError(f"{cfg.out}: holds the output of `{other}`, not of `quickstart`; use another -o")
    if other is None and os.path.isdir(cfg.out) and any(
            os.path.exists(os.path.join(cfg.out, m)) for m in ("summary.json", "items.parquet", "meta.json")) \
            and not os.path.isdir(os.path.join(cfg.out, "pmi")):
        raise ClipcompError(f"{cfg.out}: already holds other results; use another -o")
    os.makedirs(cfg.out, exist_ok=True)
    record_output(cfg.out, "quickstart", {"note": "stages are reused by their own settings checks"})
    joint = joint_design(len(cfg.classes), len(cfg.partners), "graded", cfg.decay, cfg.never, cfg.seed)
    timings: dict[str, float] = {}

    def stage(name, fn, *a, **k):
        s = time.perf_counter()
        r = fn(*a, **k)
        timings[name] = timings.get(name, 0.0) + time.perf_counter() - s
        return r

    data, stats = stage("data+stats", build_world_data, cfg, "pmi", joint, progress)
    tests = stage("test sets", build_testsets, cfg, progress)
    models = {"pmi": stage("train", train_model, cfg, data, os.path.join(cfg.out, "pmi", "model"), progress)}
    if cfg.control:
        uniform = joint_design(len(cfg.classes), len(cfg.partners), "uniform")
        cdata, cstats = stage("data+stats", build_world_data, cfg, "control", uniform, progress)
        models["control"] = stage("train", train_model, cfg, cdata, os.path.join(cfg.out, "control", "model"),
                                  progress)
    if cfg.finetune:
        from clipcomp.pipelines.miniature.testsets import paste_training_set

        ft_data = os.path.join(cfg.out, "paste_augmentation")
        world = world_for(cfg.classes, cfg.partners, joint)
        _say(f"paste augmentation set: {cfg.finetune_n:,} scenes", progress)
        stage("data+stats", paste_training_set, ft_data, cfg.classes, cfg.partners, world, _knobs(cfg),
              cfg.finetune_n, cfg.area_fraction, cfg.seed)
        models["pmi+paste-ft"] = stage("train", train_model, cfg, ft_data,
                                       os.path.join(cfg.out, "pmi", "paste_finetune"), progress,
                                       pretrained=models["pmi"], steps=cfg.finetune_steps, lr=cfg.finetune_lr)
    levels = min(10, max(3, int(np.unique(np.round(joint[joint > 0], 12)).size)))
    results = {}
    for name, weights in models.items():
        sdirs = {"pmi": stats} if name != "control" else {"pmi": stats, "own": cstats}
        results[name] = stage("evaluate", evaluate, cfg, name, weights, tests, sdirs, progress, levels)
    summary = {
        "config": dataclasses.asdict(cfg),
        "design": {"classes": cfg.classes, "partners": cfg.partners, "joint": joint.tolist(),
                   "design_pmi": [[None if not np.isfinite(v) else float(v) for v in row]
                                  for row in design_pmi(joint)]},
        "results": {m: {b: {s: {"analysis": v["analysis"].as_dict(), "pairs": v["pair_table"]}
                            for s, v in per.items()} for b, per in r.items()} for m, r in results.items()},
        "timings_s": timings,
        "seconds": time.perf_counter() - t0,
        "environment": environment(),
    }
    stage("report", write_report, cfg, summary)
    summary["timings_s"] = timings
    atomic_write_json(os.path.join(cfg.out, "summary.json"), summary)
    return summary
