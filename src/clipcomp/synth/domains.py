"""A domain-labelled image dataset in miniature: one shape per image (its class) drawn in each render style (its
domain), written as PNG files + a manifest (image, caption, class, domain, split) that `clipcomp mix build` and
`clipcomp train` read like any real manifest. Every image comes from its own seed: (seed, domain, class, index)."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from clipcomp.errors import ClipcompError
from clipcomp.io import atomic_output
from clipcomp.synth.styles import STYLES, render_styled
from clipcomp.synth.world import DEFAULT_COLOURS, DEFAULT_SHAPES, SHAPES_AVAILABLE

DOMAIN_WORDS = {"natural": "photo", "clipart": "clipart", "sketch": "sketch", "painting": "painting",
                "quickdraw": "doodle"}


@dataclass
class DomainSpec:
    out: str = "runs/domains"
    classes: list[str] = field(default_factory=lambda: list(DEFAULT_SHAPES))
    domains: list[str] = field(default_factory=lambda: list(STYLES))
    per_cell: int = 100  # images per (class, domain)
    test_fraction: float = 0.2
    resolution: int = 64
    seed: int = 0

    def validate(self) -> None:
        unknown = [c for c in self.classes if c not in SHAPES_AVAILABLE]
        if unknown:
            raise ClipcompError(f"unknown shape class(es) {', '.join(unknown)} "
                                f"(available: {', '.join(SHAPES_AVAILABLE)})")
        bad = [d for d in self.domains if d not in STYLES]
        if bad:
            raise ClipcompError(f"unknown domain(s) {', '.join(bad)} (available: {', '.join(STYLES)})")
        if self.per_cell < 2 or not 0 < self.test_fraction < 1 or self.resolution < 16:
            raise ClipcompError("per_cell ≥ 2, test_fraction in (0, 1), resolution ≥ 16")


def _cell(job: tuple) -> dict[str, list]:
    spec, d_i, c_i = job
    domain, cls = spec.domains[d_i], spec.classes[c_i]
    rows: dict[str, list] = {k: [] for k in ("image", "caption", "class", "domain", "colour", "split")}
    n_test = max(1, int(round(spec.per_cell * spec.test_fraction)))
    folder = os.path.join(spec.out, "images", domain, cls)
    os.makedirs(folder, exist_ok=True)
    for i in range(spec.per_cell):
        rng = np.random.default_rng([spec.seed, 31_337, d_i, c_i, i])
        extent = int(rng.integers(int(0.35 * spec.resolution), int(0.8 * spec.resolution)))
        x, y = (int(v) for v in rng.integers(0, spec.resolution - extent + 1, 2))
        colour = DEFAULT_COLOURS[int(rng.integers(len(DEFAULT_COLOURS)))]
        img = render_styled(domain, cls, colour, (x, y, extent), spec.resolution, rng)
        rel = os.path.join("images", domain, cls, f"{i:05d}.png")
        Image.fromarray(img).save(os.path.join(spec.out, rel))
        rows["image"].append(rel)
        rows["caption"].append(f"a {DOMAIN_WORDS[domain]} of a {cls}")
        rows["class"].append(cls)
        rows["domain"].append(domain)
        rows["colour"].append(colour)
        rows["split"].append("test" if i < n_test else "train")
    return rows


def generate_domains(spec: DomainSpec, workers: int = 1, force: bool = False) -> str:
    """Write OUT/images/<domain>/<class>/*.png and OUT/manifest.parquet; returns the manifest path."""
    from clipcomp.io import atomic_write_json, prepare_output

    spec.validate()
    settings = {k: v for k, v in asdict(spec).items() if k != "out"}
    state = prepare_output(spec.out, "synth domains", settings, force=force, markers=("manifest.parquet",))
    manifest = os.path.join(spec.out, "manifest.parquet")
    if state.reuse and os.path.exists(manifest):
        return manifest
    jobs = [(spec, d, c) for d in range(len(spec.domains)) for c in range(len(spec.classes))]
    if workers > 1:
        import multiprocessing as mp

        from clipcomp.procs import die_with_parent

        with mp.get_context("fork").Pool(workers, initializer=die_with_parent, initargs=(os.getpid(),)) as pool:
            parts = pool.map(_cell, jobs)
    else:
        parts = [_cell(j) for j in jobs]
    table = pa.table({k: [v for p in parts for v in p[k]] for k in parts[0]})
    with atomic_output(manifest) as tmp:
        pq.write_table(table, tmp)
    atomic_write_json(os.path.join(spec.out, "meta.json"), {"settings": settings, "n_images": table.num_rows})
    return manifest
