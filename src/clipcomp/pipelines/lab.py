"""Experiment runner: generate → train → probe binding, over a grid of knob values (or named cells), with
repeats over seeds and the same step budget everywhere; a results table and a plot at the end.

Config sections: `world`, `captions`, `dataset`, `train` (the base), and `sweep`:

    sweep:
      out: runs/sweep
      seeds: [0, 1]
      eval_scenes: 500                 # held-out test scenes probed per run
      grid:                            # every combination of these overrides ...
        captions.attribute_density: [1.0, 0.5, 0.25]
      cells:                           # ... or named cells of overrides
        dense: {}
        sparse: {captions.attribute_density: 0.25}

      gates:                           # optional: the base task each run must have learned (probe: minimum)
        replace_attribute_acc: 0.9

Finished runs are kept (`runs/<cell>-s<seed>/binding.json`) and skipped when the sweep is run again. With
`gates`, every run's probes are checked (clipcomp.analysis.gates) and written to `gates.md` before any effect:
`lab_gates` gives the table, and `clipcomp lab sweep` stops with one line when a run failed one.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import math
import os
from dataclasses import field

import numpy as np
import pyarrow as pa

from clipcomp.config import build, check_sections, read_config, typed
from clipcomp.errors import ClipcompError
from clipcomp.io import atomic_write_json, atomic_write_text, write_parquet
from clipcomp.synth.captions import CaptionKnobs
from clipcomp.synth.dataset import DatasetSpec
from clipcomp.synth.world import WorldConfig
from clipcomp.train.trainer import TrainConfig

SECTIONS = ("world", "captions", "dataset", "train", "sweep", "eval")
PROBES = ("binding_accuracy", "replace_attribute_acc", "replace_object_acc", "t2i_swap_attribute_acc")
_CLASSES = {"world": WorldConfig, "captions": CaptionKnobs, "dataset": DatasetSpec, "train": TrainConfig}


@typed
class SweepConfig:
    out: str = "runs/sweep"
    seeds: list[int] = field(default_factory=lambda: [0])
    eval_scenes: int = 500
    grid: dict | None = None
    cells: dict | None = None
    gates: dict | None = None  # probe name → minimum accuracy every run must reach (the base task it learned)

    def validate(self, where: str = "sweep") -> None:
        for k, v in (self.gates or {}).items():
            if k not in PROBES:
                raise ClipcompError(f"{where}.gates.{k}: not a probe (expected one of {', '.join(PROBES)})")
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or not 0 <= v <= 1:
                raise ClipcompError(f"{where}.gates.{k} = {v!r}: a gate threshold must be in [0, 1]")
        if not self.seeds:
            raise ClipcompError(f"{where}.seeds: at least one seed")
        if (self.grid is None) == (self.cells is None):
            raise ClipcompError(f"{where}: give exactly one of 'grid' or 'cells'")
        if self.eval_scenes < 1:
            raise ClipcompError(f"{where}.eval_scenes must be ≥ 1")


def load_sections(path: str, overrides=()) -> dict:
    """A lab config's sections (world, captions, dataset, train, sweep, eval) with ``section.key=value``
    overrides applied; an unknown section is one line naming the file."""
    from clipcomp.config import apply_overrides

    raw = apply_overrides(read_config(path), overrides)
    check_sections(raw, SECTIONS, path)
    return raw


def parse(raw: dict, path: str) -> dict:
    """Section objects from a raw mapping (validated)."""
    out = {name: build(cls, raw.get(name), name, path) for name, cls in _CLASSES.items()}
    return out


def _override(raw: dict, overrides: dict, path: str) -> dict:
    """A sweep cell's `section.key: value` overrides, applied by the one override rule (clipcomp.config)."""
    from clipcomp.config import apply_overrides

    for key in overrides:
        if "." not in key:
            raise ClipcompError(f"{path}: override {key!r} must be 'section.key' (e.g. captions.completeness)")
        if key.split(".", 1)[0] not in _CLASSES:
            raise ClipcompError(f"{path}: override {key!r}: unknown section {key.split('.', 1)[0]!r}")
    return apply_overrides(raw, overrides)


def cells_of(raw: dict, sweep: SweepConfig, path: str) -> list[tuple[str, dict]]:
    if sweep.cells is not None:
        items = list(sweep.cells.items())
    else:
        keys = list(sweep.grid)
        for k in keys:
            if not isinstance(sweep.grid[k], list) or not sweep.grid[k]:
                raise ClipcompError(f"{path}: sweep.grid.{k} must be a non-empty list of values")
        items = [(",".join(f"{k.split('.')[-1]}={v}" for k, v in zip(keys, combo, strict=True)),
                  dict(zip(keys, combo, strict=True))) for combo in itertools.product(*(sweep.grid[k] for k in keys))]
    for name, ov in items:
        if not isinstance(ov, dict):
            raise ClipcompError(f"{path}: sweep.cells.{name} must be a mapping of overrides")
        parse(_override(raw, ov, path), path)  # validate every cell before running any
    return items


def _data_key(sections: dict, seed: int) -> str:
    d = {k: dataclasses.asdict(sections[k]) for k in ("world", "captions")}
    spec = dataclasses.asdict(sections["dataset"])
    d["dataset"] = {k: v for k, v in spec.items() if k not in ("out", "workers", "seed")}
    d["seed"] = seed
    return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:12]


def run_cell(raw: dict, name: str, overrides: dict, seed: int, sweep: SweepConfig, path: str,
             progress: bool = True, force: bool = False) -> dict:
    """One (cell, seed): generate → train → probe. A finished cell is reused only when its fingerprint (every
    setting of the cell, the seed and the probe count) matches; a changed cell stops with one line, or is
    recomputed with `force`."""
    from clipcomp.io import atomic_write_json, prepare_output
    from clipcomp.synth.dataset import generate

    sections = parse(_override(raw, overrides, path), path)
    run_dir = os.path.join(sweep.out, "runs", f"{_safe(name)}-s{seed}")
    result_path = os.path.join(run_dir, "binding.json")
    settings = {k: dataclasses.asdict(v) for k, v in sections.items()}
    settings["dataset"] = {k: v for k, v in settings["dataset"].items() if k not in ("out", "workers")}
    settings["train"] = {k: v for k, v in settings["train"].items() if k not in ("out", "data", "workers", "threads")}
    settings.update({"seed": seed, "eval_scenes": sweep.eval_scenes})
    state = prepare_output(run_dir, "lab sweep cell", settings, force=force, markers=("binding.json",))
    if state.reuse and os.path.exists(result_path):
        with open(result_path, encoding="utf-8") as f:
            return json.load(f)
    spec = sections["dataset"]
    spec.seed = seed
    spec.n_test = max(spec.n_test, sweep.eval_scenes)
    spec.out = os.path.join(sweep.out, "data", _data_key(sections, seed))
    generate(sections["world"], sections["captions"], spec, progress=progress)
    tcfg = sections["train"]
    tcfg.data, tcfg.out, tcfg.seed = spec.out, os.path.join(run_dir, "train"), seed
    from clipcomp.train.trainer import train

    summary = train(tcfg, progress=progress, force=force)
    metrics = evaluate_run(tcfg, spec.out, sweep.eval_scenes, seed)
    row = {"cell": name, "seed": seed, "overrides": overrides, "steps": tcfg.steps, "batch_size": tcfg.batch_size,
           "train_seconds": summary["seconds"], "images_per_s": summary["images_per_s"], **metrics}
    atomic_write_json(result_path, row)
    return row


def evaluate_run(tcfg: TrainConfig, data_dir: str, n_scenes: int, seed: int) -> dict:
    """Binding probes of a trained run on the first `n_scenes` held-out test scenes."""
    from clipcomp.models import ModelSpec
    from clipcomp.models.embed import make_embedder
    from clipcomp.tasks import binding

    emb, _ = make_embedder(ModelSpec(tcfg.model, os.path.join(tcfg.out, "final.pt"), tcfg.device, cache_dir=None),
                           progress=False)
    res = binding.evaluate_dataset(emb, data_dir, n_scenes, "test", seed)
    return {k: v for k, v in res.metrics.items() if k != "by_n_objects"}


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_.=" else "_" for c in name)


def mean_ci(values: list[float]) -> tuple[float, float]:
    """Mean and the half-width of a 95% t-interval (NaN for a single value: no interval from one seed)."""
    v = np.asarray(values, dtype=float)
    if v.size < 2:
        return float(v.mean()), float("nan")
    from scipy import stats

    return float(v.mean()), float(stats.t.ppf(0.975, v.size - 1) * v.std(ddof=1) / math.sqrt(v.size))


def fmt_mean_ci(values: list[float]) -> str:
    """`mean ± half-width` of a 95 % t-interval for a report ("mean" alone from a single value)."""
    m, h = mean_ci(values)
    return f"{m:.3f}" + (f" ± {h:.3f}" if math.isfinite(h) else "")


def paired_difference(a: list[float], b: list[float]) -> str:
    """Mean paired difference (b − a) over seeds with its 95 % t-interval and a two-sided one-sample t-test over
    seeds (the independent units), formatted for a report."""
    from scipy import stats

    diff = [y - x for x, y in zip(a, b, strict=True)]
    m, h = mean_ci(diff)
    p = stats.ttest_1samp(diff, 0.0).pvalue if len(diff) >= 2 and np.std(diff) > 0 else float("nan")
    return f"{m:+.3f} ± {h:.3f} (p = {p:.2g}, n = {len(diff)} seeds)" if math.isfinite(h) else f"{m:+.3f}"


def sweep(path: str, progress: bool = True, force: bool = False, overrides=()) -> dict:
    """Run every (cell, seed) of a sweep config (reusing finished cells whose settings match); write the table,
    summary.json and the plot. `overrides` as on the command line (``sweep.seeds=[0,1]``, ``train.steps=50``)."""
    raw = load_sections(path, overrides)
    sw = build(SweepConfig, raw.get("sweep"), "sweep", path)
    parse(raw, path)
    cells = cells_of(raw, sw, path)
    os.makedirs(sw.out, exist_ok=True)
    rows = []
    for name, ov in cells:
        for seed in sw.seeds:
            rows.append(run_cell(raw, name, ov, seed, sw, path, progress, force))
    res = write_sweep_report(rows, cells, sw)
    res["gates"] = lab_gates(rows, sw)
    if res["gates"]:
        from clipcomp.analysis.gates import gate_table, gates_json

        res["gates_md"] = gate_table(res["gates"])
        atomic_write_text(os.path.join(sw.out, "gates.md"), res["gates_md"])
        atomic_write_json(os.path.join(sw.out, "gates.json"), gates_json(res["gates"]))
    return res


def lab_gates(rows: list[dict], sw: SweepConfig) -> list:
    """One gate per (run, gated probe): the run's probe accuracy on its held-out scenes ≥ the threshold."""
    from clipcomp.analysis.gates import Gate

    out = []
    for probe, threshold in (sw.gates or {}).items():
        for r in rows:
            v = float(r[probe])
            out.append(Gate(probe.replace("_acc", "").replace("_", " "), f"{r['cell']} s{r['seed']}", v,
                            float(threshold), ">=", int(sw.eval_scenes), math.isfinite(v) and v >= threshold))
    return out


def write_sweep_report(rows: list[dict], cells: list[tuple[str, dict]], sw: SweepConfig) -> dict:
    table = pa.Table.from_pylist([{k: (json.dumps(v) if isinstance(v, dict) else v) for k, v in r.items()}
                                  for r in rows])
    write_parquet(table, os.path.join(sw.out, "results.parquet"))
    probes = PROBES
    summary = []
    for name, ov in cells:
        rs = [r for r in rows if r["cell"] == name]
        entry = {"cell": name, "overrides": ov, "n_seeds": len(rs)}
        for p in probes:
            entry[p], entry[p + "_ci"] = mean_ci([r[p] for r in rs])
        summary.append(entry)
    lines = ["| cell | overrides | seeds | binding (attr. swap, i→t) | replace attr. | replace object | "
             "swap, t→i |", "|---|---|---:|---:|---:|---:|---:|"]
    for e in summary:
        ov = ", ".join(f"{k}={v}" for k, v in e["overrides"].items()) or "(base)"
        vals = " | ".join(f"{e[p]:.3f} ± {e[p + '_ci']:.3f}" if e["n_seeds"] > 1 else f"{e[p]:.3f}" for p in probes)
        lines.append(f"| {e['cell']} | {ov} | {e['n_seeds']} | {vals} |")
    md = "\n".join(lines) + "\n"
    atomic_write_text(os.path.join(sw.out, "results.md"), md)
    atomic_write_json(os.path.join(sw.out, "summary.json"), summary)
    plot_sweep(summary, rows, sw, os.path.join(sw.out, "binding.png"))
    return {"summary": summary, "table": md, "rows": rows}


def plot_sweep(summary: list[dict], rows: list[dict], sw: SweepConfig, path: str) -> None:
    from clipcomp.io import new_figure, save_figure

    fig, ax = new_figure(figsize=(6.4, 4.0), dpi=150)
    err = [float(np.nan_to_num(e["binding_accuracy_ci"])) for e in summary]
    single_knob = sw.grid is not None and len(sw.grid) == 1
    if single_knob:
        knob = next(iter(sw.grid))
        xs = [e["overrides"][knob] for e in summary]
        ax.errorbar(xs, [e["binding_accuracy"] for e in summary], yerr=err,
                    marker="o", capsize=3, label="binding (attribute swap)")
        for r in rows:
            ax.plot(r["overrides"][knob], r["binding_accuracy"], "k.", alpha=0.4)
        ax.set_xlabel(knob)
    else:
        xs = np.arange(len(summary))
        ax.bar(xs, [e["binding_accuracy"] for e in summary], yerr=err,
               capsize=3, color="#4C72B0", label="binding (attribute swap)")
        for i, e in enumerate(summary):
            pts = [r["binding_accuracy"] for r in rows if r["cell"] == e["cell"]]
            ax.plot([i] * len(pts), pts, "k.", alpha=0.6)
        ax.set_xticks(xs, [e["cell"] for e in summary], rotation=20, fontsize=8)
    ax.axhline(0.5, color="gray", linestyle="--", linewidth=1, label="chance")
    ax.set_ylim(0, 1.02)
    ax.set_ylabel("binding accuracy (held-out scenes)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    save_figure(fig, path)
