"""Controlled domain–class mixtures (Kempf et al., ICML 2025): from any manifest with image, caption, class and
domain columns (or DomainNet's list files), the training set of each setting and the test splits.

Settings (T = the test domain, N = the natural domain, H = the held-out classes, R = the other rendition domains):
  natural-only      N, all classes
  leave-out-domain  N (all classes) + R without H          — DG: no item of T at all
  cg-low            N (all classes) + T without H          — CG with little domain diversity
  cg-high           N (all classes) + R without H + T without H
  class-overlap     cg-high, but a seeded fraction `overlap` of H is allowed back into R (never into T)
In every setting the held-out classes are seen only in the natural domain (plus, for class-overlap, in R), so
(H, T) is an unseen combination and the settings differ only in what else is seen. Test splits: for each domain
and {seen, unseen} classes, the manifest's test rows (its `split` column), or a seeded test fraction per
(class, domain) cell when there is none; no test row is ever in a training set.

Sizes: `size="all"` uses every eligible training row; `fixed-total` draws `n` rows from the mixture (uniformly,
seeded); `fixed-natural` keeps `n` natural rows and adds every eligible rendition row. Captions: `keep` the
manifest's, `neutral` ("an image of a {class}"), or `named` ("a {domain word} of a {class}").
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field

import numpy as np
import pyarrow as pa

from clipcomp.errors import ClipcompError
from clipcomp.io import write_parquet

SETTINGS = ("natural-only", "leave-out-domain", "cg-low", "cg-high", "class-overlap")
SIZES = ("all", "fixed-total", "fixed-natural")
CAPTIONS = ("keep", "neutral", "named")
DOMAIN_WORDS = {"real": "photo", "natural": "photo", "quickdraw": "doodle", "infograph": "infographic"}


@dataclass
class MixSpec:
    setting: str
    test_domain: str
    natural_domain: str = "real"
    held_out_classes: list[str] | None = None
    n_held_out: int | None = None
    overlap: float = 0.5  # class-overlap: share of held-out classes allowed in the other rendition domains
    domains: list[str] | None = None  # rendition domains to use besides natural and test (default: all)
    size: str = "all"
    n: int | None = None
    captions: str = "keep"
    test_fraction: float = 0.2  # only when the manifest has no split column
    seed: int = 0
    image_column: str = "image"
    caption_column: str = "caption"
    class_column: str = "class"
    domain_column: str = "domain"
    extra: dict = field(default_factory=dict)

    def validate(self) -> None:
        if self.setting not in SETTINGS:
            raise ClipcompError(f"--setting {self.setting!r}: expected one of {', '.join(SETTINGS)}")
        if self.size not in SIZES:
            raise ClipcompError(f"--size {self.size!r}: expected one of {', '.join(SIZES)}")
        if self.captions not in CAPTIONS:
            raise ClipcompError(f"--captions {self.captions!r}: expected one of {', '.join(CAPTIONS)}")
        if self.size != "all" and (self.n is None or self.n < 1):
            raise ClipcompError(f"--size {self.size} needs --n ≥ 1")
        if not 0 <= self.overlap <= 1:
            raise ClipcompError(f"--overlap must be in [0, 1] (got {self.overlap})")
        if self.held_out_classes is None and (self.n_held_out is None or self.n_held_out < 1):
            raise ClipcompError("give --held-out-classes a,b,c or --n-held-out N (≥ 1)")


def read_domainnet_lists(paths: list[str], image_root: str | None = None) -> pa.Table:
    """DomainNet list files (`clipart/aircraft_carrier/clipart_001_000001.jpg 0` per line, one file per domain and
    split, e.g. clipart_train.txt): domain and class from the path, split from the file name."""
    from clipcomp.io import read_text

    rows: dict[str, list] = {k: [] for k in ("image", "caption", "class", "domain", "split")}
    for path in paths:
        base = os.path.basename(path).rsplit(".", 1)[0]
        split = "test" if base.endswith("_test") else "train"
        for n, line in enumerate(read_text(path, "DomainNet list file").splitlines(), start=1):
            if not line.strip():
                continue
            rel = line.split()[0]
            parts = rel.split("/")
            if len(parts) < 3:
                raise ClipcompError(f"{path}: line {n}: expected DOMAIN/CLASS/FILE LABEL, got {line[:80]!r}")
            cls = parts[1].replace("_", " ")
            rows["image"].append(os.path.join(image_root, rel) if image_root else rel)
            rows["caption"].append(f"a {DOMAIN_WORDS.get(parts[0], parts[0])} of a {cls}")
            rows["class"].append(cls)
            rows["domain"].append(parts[0])
            rows["split"].append(split)
    if not rows["image"]:
        raise ClipcompError(f"{', '.join(paths)}: no entries")
    return pa.table(rows)


def read_domain_manifest(path: str, image_column: str = "image", class_column: str = "class",
                         domain_column: str = "domain", caption_column: str | None = None) -> pa.Table:
    """A domain-labelled manifest (Parquet/CSV/TSV/JSONL) or a DomainNet .txt list file, checked for the columns
    needed (the caption column only when given)."""
    from clipcomp.io import read_table

    if path.lower().endswith(".txt"):
        return read_domainnet_lists([path])
    table = read_table(path)
    need = [image_column, class_column, domain_column] + ([caption_column] if caption_column else [])
    missing = [c for c in need if c not in table.column_names]
    if missing:
        raise ClipcompError(f"{path}: no {' / '.join(repr(c) for c in missing)} column (columns: "
                            f"{', '.join(table.column_names)}); name them with --image-column, --caption-column, "
                            "--class-column, --domain-column")
    return table


def read_mix_manifest(path: str, spec: MixSpec) -> pa.Table:
    return read_domain_manifest(path, spec.image_column, spec.class_column, spec.domain_column,
                                spec.caption_column if spec.captions == "keep" else None)


def _split_rows(table: pa.Table, spec: MixSpec) -> np.ndarray:
    """True for test rows: the manifest's split column, else a seeded fraction of each (class, domain) cell."""
    if "split" in table.column_names:
        return np.array([str(s) == "test" for s in table.column("split").to_pylist()])
    cls = table.column(spec.class_column).to_pylist()
    dom = table.column(spec.domain_column).to_pylist()
    test = np.zeros(table.num_rows, bool)
    cells: dict[tuple, list[int]] = {}
    for i, key in enumerate(zip(cls, dom, strict=True)):
        cells.setdefault(key, []).append(i)
    for k, (_cell, idx) in enumerate(sorted(cells.items())):
        rng = np.random.default_rng([spec.seed, 4_242, k])
        n_test = max(1, int(round(len(idx) * spec.test_fraction))) if len(idx) > 1 else 0
        test[rng.permutation(np.array(idx))[:n_test]] = True
    return test


def build_mixture(table: pa.Table, spec: MixSpec, source: str = "manifest") -> tuple[pa.Table, dict, dict]:
    """(train table, {test split name: table}, meta) for one setting; every choice is seeded and recorded."""
    spec.validate()
    cls = np.array([str(c) for c in table.column(spec.class_column).to_pylist()], dtype=object)
    dom = np.array([str(d) for d in table.column(spec.domain_column).to_pylist()], dtype=object)
    classes = sorted(set(cls.tolist()))
    domains = sorted(set(dom.tolist()))
    for what, value in (("--test-domain", spec.test_domain), ("--natural-domain", spec.natural_domain)):
        if value not in domains:
            raise ClipcompError(f"{source}: {what} {value!r} is not a domain of the manifest "
                                f"(domains: {', '.join(domains)})")
    if spec.test_domain == spec.natural_domain:
        raise ClipcompError("--test-domain must differ from --natural-domain")
    renditions = [d for d in domains if d not in (spec.natural_domain, spec.test_domain)]
    if spec.domains is not None:
        bad = [d for d in spec.domains if d not in renditions]
        if bad:
            raise ClipcompError(f"{source}: --domains {', '.join(bad)}: not rendition domains of the manifest "
                                f"(available: {', '.join(renditions)})")
        renditions = list(spec.domains)
    rng = np.random.default_rng([spec.seed, 9_001])
    if spec.held_out_classes is not None:
        bad = [c for c in spec.held_out_classes if c not in classes]
        if bad:
            raise ClipcompError(f"{source}: held-out class(es) {', '.join(bad)} not in the manifest "
                                f"(classes: {', '.join(classes[:30])}{' ...' if len(classes) > 30 else ''})")
        held = sorted(spec.held_out_classes)
    else:
        if spec.n_held_out >= len(classes):
            raise ClipcompError(f"--n-held-out {spec.n_held_out}: the manifest has only {len(classes)} classes")
        held = sorted(rng.choice(classes, size=spec.n_held_out, replace=False).tolist())
    overlap_classes: list[str] = []
    if spec.setting == "class-overlap":
        k = int(round(spec.overlap * len(held)))
        overlap_classes = sorted(np.random.default_rng([spec.seed, 9_002]).choice(held, size=k, replace=False)
                                 .tolist()) if k else []
    is_test = _split_rows(table, spec)
    is_held = np.isin(cls, held)
    nat, tst, ren = dom == spec.natural_domain, dom == spec.test_domain, np.isin(dom, renditions)
    if spec.setting == "natural-only":
        keep = nat
    elif spec.setting == "leave-out-domain":
        keep = nat | (ren & ~is_held)
    elif spec.setting == "cg-low":
        keep = nat | (tst & ~is_held)
    elif spec.setting == "cg-high":
        keep = nat | (ren & ~is_held) | (tst & ~is_held)
    else:  # class-overlap
        keep = nat | (ren & (~is_held | np.isin(cls, overlap_classes))) | (tst & ~is_held)
    train_idx = np.flatnonzero(keep & ~is_test)
    if spec.size == "fixed-total":
        if spec.n > train_idx.size:
            raise ClipcompError(f"--n {spec.n}: the {spec.setting} mixture has only {train_idx.size} training rows")
        train_idx = np.sort(np.random.default_rng([spec.seed, 9_003]).choice(train_idx, spec.n, replace=False))
    elif spec.size == "fixed-natural":
        nat_idx = train_idx[nat[train_idx]]
        if spec.n > nat_idx.size:
            raise ClipcompError(f"--n {spec.n}: only {nat_idx.size} natural training rows")
        chosen = np.random.default_rng([spec.seed, 9_004]).choice(nat_idx, spec.n, replace=False)
        train_idx = np.sort(np.concatenate([chosen, train_idx[~nat[train_idx]]]))
    train = _with_captions(table.take(pa.array(train_idx)), spec)
    tests = {}
    for d in domains:
        for part, mask in (("seen", ~is_held), ("unseen", is_held)):
            idx = np.flatnonzero(is_test & (dom == d) & mask)
            if idx.size:
                tests[f"test_{_safe(d)}_{part}"] = _with_captions(table.take(pa.array(idx)), spec)
    counts = {f"{d}/{'held-out' if h else 'seen'}": int(((dom[train_idx] == d) & (is_held[train_idx] == h)).sum())
              for d in domains for h in (False, True)}
    meta = {"settings": {k: v for k, v in asdict(spec).items() if k != "extra"}, "source": source,
            "held_out_classes": held, "overlap_classes": overlap_classes, "classes": classes, "domains": domains,
            "rendition_domains": renditions, "n_train": int(train_idx.size), "train_counts": counts,
            "tests": {k: v.num_rows for k, v in tests.items()}}
    return train, tests, meta


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)


def _with_captions(t: pa.Table, spec: MixSpec) -> pa.Table:
    if spec.captions == "keep":
        return t
    cls = t.column(spec.class_column).to_pylist()
    if spec.captions == "neutral":
        caps = [f"an image of a {str(c).replace('_', ' ')}" for c in cls]
    else:
        dom = t.column(spec.domain_column).to_pylist()
        caps = [f"a {DOMAIN_WORDS.get(str(d), str(d))} of a {str(c).replace('_', ' ')}"
                for c, d in zip(cls, dom, strict=True)]
    if spec.caption_column in t.column_names:
        t = t.drop_columns([spec.caption_column])
    return t.append_column(spec.caption_column, pa.array(caps, pa.string()))


def mix_build(manifest: str, out: str, spec: MixSpec, force: bool = False) -> dict:
    """Write OUT/train.parquet (rows of the manifest, same columns; image paths made absolute), OUT/test_*.parquet
    and OUT/meta.json; returns the meta."""
    from clipcomp.io import atomic_write_json, prepare_output

    table = read_mix_manifest(manifest, spec)
    root = os.path.dirname(os.path.abspath(manifest))
    if spec.image_column in table.column_names:
        paths = [p if os.path.isabs(str(p)) else os.path.join(root, str(p))
                 for p in table.column(spec.image_column).to_pylist()]
        table = table.set_column(table.column_names.index(spec.image_column), spec.image_column,
                                 pa.array(paths, pa.string()))
    train, tests, meta = build_mixture(table, spec, manifest)
    prepare_output(out, "mix build", {"manifest": os.path.abspath(manifest), **meta["settings"]}, force=force,
                   markers=("train.parquet",))
    write_parquet(train, os.path.join(out, "train.parquet"))
    for name, t in tests.items():
        write_parquet(t, os.path.join(out, f"{name}.parquet"))
    atomic_write_json(os.path.join(out, "meta.json"), meta)
    return meta
