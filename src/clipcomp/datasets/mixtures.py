"""Controlled domain–class mixtures exactly as Kempf et al. (ICML 2025) build them, from any manifest with image,
class and domain columns (or DomainNet list / caption files), plus an optional natural set merged in full
(their ImageNet-Captions part, a `filepath\\ttitle` TSV).

Reference: lmb-freiburg/understanding-clip-ood, scripts/subsample_domainnet_lso.py (cited by line below) and
slurm/subsample-domainnet.sh (which flags make which setting). T = the test domain, N = the natural domain, H = the
held-out classes, R = the other rendition domains (all, or the `domains` subset — the domains-added path).

  natural-only      N with every class, no subsampling (their --real_only, l.58-66)
  leave-out-domain  N + R, every class; no item of T (DG; --exclude T --exclude_domains T)
  cg-low            N + T without H (--exclude T --single_domain, l.76-78)
  cg-high           N + R with every class + T without H (--exclude T; l.71-73: H is removed from T *only*)
  class-overlap     cg-high, then T's items kept for a seeded share `overlap` of T's classes and replaced by T items
                    of `extra_classes`, dropping random other items so the size stays (scripts/mix_in_sketches.py,
                    l.59-106; their extra items are ImageNet-Sketch images of classes outside DomainNet)
Options as in their code: `allow_pct` lets that share of H's T items back (l.138-165), `pseudo_exclude` keeps H in
T (their upper bound, l.72). Every setting but natural-only is subsampled to the size of the single-rendition
setting (N + T without H; l.122-133): each (domain, class) cell keeps its first ceil(shrink × n) items (l.154-165),
then one item per class is dropped, largest domain first, until the size is exact (l.167-186). Their cells are in
list-file order; clipcomp's default orders each cell by a seeded shuffle (`shuffle=False`: manifest order, theirs
exactly). The domain order of the trimming is descending training size (for DomainNet this is their fixed list
real, quickdraw, painting, sketch, infograph, clipart).

Options that are not theirs (named, never the default): `held_out_from="all-renditions"` (H removed from every
rendition domain, clipcomp ≤ 0.3's semantics), `size="all" | "fixed-total" | "fixed-natural"`.
Captions: `keep`; `kempf` / `kempf-aligned` (their templates and domain terms, or only "image"/"picture";
scripts/generate_domainnet_captions.py l.8-61, Python's `random` seeded with `caption_seed`, default 42 as theirs,
drawn row by row in manifest order); `neutral`; `named`.
"""

from __future__ import annotations

import math
import os
import random
from dataclasses import asdict, dataclass, field

import numpy as np
import pyarrow as pa

from clipcomp.errors import ClipcompError
from clipcomp.io import write_parquet

SETTINGS = ("natural-only", "leave-out-domain", "cg-low", "cg-high", "class-overlap")
SIZES = ("kempf", "all", "fixed-total", "fixed-natural")
CAPTIONS = ("keep", "kempf", "kempf-aligned", "neutral", "named")
HELD_OUT_FROM = ("test-domain", "all-renditions")
DOMAIN_WORDS = {"real": "photo", "natural": "photo", "quickdraw": "doodle", "infograph": "infographic"}

# scripts/generate_domainnet_captions.py l.8-43
KEMPF_TERMS = {"all": ["image", "picture"], "clipart": ["clipart", "illustration"],
               "infograph": ["infograph", "informational chart"], "painting": ["painting", "art"],
               "quickdraw": ["quickdraw", "doodle"], "real": ["photo", "snapshot"], "sketch": ["sketch", "drawing"]}
KEMPF_TERMS_ALIASES = {"natural": "real", "doodle": "quickdraw"}
KEMPF_AAN = {"image": "an ", "illustration": "an ", "infograph": "an ", "informational chart": "an ", "art": ""}
KEMPF_TEMPLATES = ["{AAN}{TERM} of a {CLS}.", "a {CLS} {TERM}.", "{AAN}{TERM} depicting a {CLS}.",
                   "a {CLS} depicted in {AAN}{TERM}.", "{AAN}{TERM} showing a {CLS}.",
                   "a {CLS} is visible in {AAN}{TERM}."]


@dataclass
class MixSpec:
    setting: str
    test_domain: str
    natural_domain: str = "real"
    held_out_classes: list[str] | None = None
    n_held_out: int | None = None
    domains: list[str] | None = None  # rendition domains besides N and T (default: all) — the domains-added path
    allow_pct: float = 0.0  # share of H's T items allowed back (cg-low / cg-high; needs size="kempf")
    pseudo_exclude: bool = False  # keep H in T (their "with test classes" upper bound)
    overlap: float = 1.0  # class-overlap: share of T's classes whose T items stay
    extra_classes: list[str] | None = None  # class-overlap: classes whose T items replace the removed ones
    held_out_from: str = "test-domain"
    size: str = "kempf"
    n: int | None = None
    shuffle: bool = True  # seeded order within each (domain, class) cell; False = manifest order (theirs)
    captions: str = "keep"
    caption_seed: int = 42
    test_fraction: float = 0.2  # only when the manifest has no split column
    seed: int = 0
    image_column: str = "image"
    caption_column: str = "caption"
    class_column: str = "class"
    domain_column: str = "domain"
    extra: dict = field(default_factory=dict)

    def validate(self) -> None:
        for name, value, allowed in (("--setting", self.setting, SETTINGS), ("--size", self.size, SIZES),
                                     ("--captions", self.captions, CAPTIONS),
                                     ("--held-out-from", self.held_out_from, HELD_OUT_FROM)):
            if value not in allowed:
                raise ClipcompError(f"{name} {value!r}: expected one of {', '.join(allowed)}")
        if self.size in ("fixed-total", "fixed-natural") and (self.n is None or self.n < 1):
            raise ClipcompError(f"--size {self.size} needs --n ≥ 1")
        if not 0 <= self.allow_pct <= 1 or not math.isfinite(self.allow_pct):
            raise ClipcompError(f"--allow-pct must be in [0, 1] (got {self.allow_pct})")
        if not 0 <= self.overlap <= 1 or not math.isfinite(self.overlap):
            raise ClipcompError(f"--overlap must be in [0, 1] (got {self.overlap})")
        if not 0 < self.test_fraction < 1:
            raise ClipcompError(f"--test-fraction must be in (0, 1) (got {self.test_fraction})")
        if self.allow_pct > 0:  # l.34-35
            if self.setting not in ("cg-low", "cg-high"):
                raise ClipcompError(f"--allow-pct applies to cg-low / cg-high, not {self.setting}")
            if self.size != "kempf":
                raise ClipcompError("--allow-pct needs --size kempf (their code: 'allow_pct requires subsampling')")
            if self.pseudo_exclude:
                raise ClipcompError("--allow-pct and --pseudo-exclude exclude each other")
        if self.setting == "class-overlap" and not self.extra_classes:
            raise ClipcompError("--setting class-overlap needs --extra-classes (classes whose test-domain items "
                                "replace the removed ones)")
        if self.held_out_classes is None and (self.n_held_out is None or self.n_held_out < 1):
            raise ClipcompError("give --held-out-classes a,b,c or --n-held-out N (≥ 1)")


# ------------------------------------------------------------------------------------------------ readers
def read_domainnet_lists(paths: list[str], image_root: str | None = None) -> pa.Table:
    """DomainNet list files (`clipart/aircraft_carrier/clipart_001_000001.jpg 0` per line, one file per domain and
    split, e.g. clipart_train.txt) or their caption files (`{domain}_{split}.tsv`: path, label, caption, tab-
    separated): domain and class from the path, split from the file name, the caption when the file has one."""
    from clipcomp.io import read_text

    rows: dict[str, list] = {k: [] for k in ("image", "caption", "class", "domain", "split")}
    for path in paths:
        base = os.path.basename(path).rsplit(".", 1)[0]
        split = "test" if base.endswith(("_test", "_val")) else "train"
        for n, line in enumerate(read_text(path, "DomainNet list file").splitlines(), start=1):
            if not line.strip():
                continue
            fields = line.split("\t") if "\t" in line else line.split()
            rel = fields[0]
            parts = rel.split("/")
            if len(parts) < 3:
                raise ClipcompError(f"{path}: line {n}: expected DOMAIN/CLASS/FILE LABEL, got {line[:80]!r}")
            domain, cls = parts[-3], parts[-2].replace("_", " ")
            rows["image"].append(os.path.join(image_root, rel) if image_root else rel)
            rows["caption"].append(fields[2].strip() if "\t" in line and len(fields) >= 3
                                   else f"a {DOMAIN_WORDS.get(domain, domain)} of a {cls}")
            rows["class"].append(cls)
            rows["domain"].append(domain)
            rows["split"].append(split)
    if not rows["image"]:
        raise ClipcompError(f"{', '.join(paths)}: no entries")
    return pa.table(rows)


def read_captions_tsv(path: str, image_column: str = "image", caption_column: str = "caption") -> pa.Table:
    """An ImageNet-Captions-style TSV (header `filepath\\ttitle`), the natural part merged in full."""
    from clipcomp.io import read_text

    lines = read_text(path, "captions TSV").splitlines()
    if not lines or lines[0].strip("\n") != "filepath\ttitle":
        raise ClipcompError(f"{path}: expected a header line 'filepath<TAB>title' (ImageNet-Captions style)")
    paths, titles = [], []
    for n, line in enumerate(lines[1:], start=2):
        if not line:
            continue
        p, sep, title = line.partition("\t")
        if not sep:
            raise ClipcompError(f"{path}: line {n}: expected FILEPATH<TAB>TITLE")
        paths.append(p)
        titles.append(title)
    return pa.table({image_column: pa.array(paths, pa.string()), caption_column: pa.array(titles, pa.string())})


def _is_domainnet_file(path: str) -> bool:
    low = path.lower()
    if low.endswith(".txt"):
        return True
    if low.endswith(".tsv"):  # their caption files have no header and 3 fields
        with open(path, encoding="utf-8", errors="replace") as f:
            first = f.readline().rstrip("\n").split("\t")
        return len(first) == 3 and first[0].count("/") >= 2 and first[1].strip().isdigit()
    return False


def read_domain_manifest(path: str | list[str], image_column: str = "image", class_column: str = "class",
                         domain_column: str = "domain", caption_column: str | None = None) -> pa.Table:
    """A domain-labelled manifest (Parquet/CSV/TSV/JSONL), or DomainNet list/caption files (several allowed),
    checked for the columns needed (the caption column only when given)."""
    from clipcomp.io import check_input_file, read_table

    paths = [path] if isinstance(path, str) else list(path)
    for p in paths:
        check_input_file(p, "manifest")
    if all(_is_domainnet_file(p) for p in paths):
        return read_domainnet_lists(paths)
    if len(paths) > 1:
        raise ClipcompError(f"{', '.join(paths)}: several inputs are accepted only as DomainNet list files")
    table = read_table(paths[0])
    need = [image_column, class_column, domain_column] + ([caption_column] if caption_column else [])
    missing = [c for c in need if c not in table.column_names]
    if missing:
        raise ClipcompError(f"{paths[0]}: no {' / '.join(repr(c) for c in missing)} column (columns: "
                            f"{', '.join(table.column_names)}); name them with --image-column, --caption-column, "
                            "--class-column, --domain-column")
    return table


def read_mix_manifest(path: str | list[str], spec: MixSpec) -> pa.Table:
    return read_domain_manifest(path, spec.image_column, spec.class_column, spec.domain_column,
                                spec.caption_column if spec.captions == "keep" else None)


# ------------------------------------------------------------------------------------------------ building
def _split_rows(cls: np.ndarray, dom: np.ndarray, table: pa.Table, spec: MixSpec) -> np.ndarray:
    """True for test rows: the manifest's split column, else a seeded fraction of each (class, domain) cell."""
    if "split" in table.column_names:
        s = table.column("split").cast(pa.string()).fill_null("")
        import pyarrow.compute as pc

        return np.asarray(pc.equal(s, "test").to_numpy(zero_copy_only=False), bool)
    test = np.zeros(cls.size, bool)
    key = cls.astype(np.int64) * (int(dom.max()) + 1) + dom
    order = np.argsort(key, kind="stable")
    bounds = np.flatnonzero(np.diff(key[order])) + 1
    for k, idx in enumerate(np.split(order, bounds)):
        if idx.size < 2:
            continue
        rng = np.random.default_rng([spec.seed, 4_242, k])
        n_test = max(1, int(round(idx.size * spec.test_fraction)))
        test[rng.permutation(idx)[:n_test]] = True
    return test


def _codes(table: pa.Table, column: str) -> tuple[np.ndarray, list[str]]:
    """Integer codes (first-appearance order) and the names, via Arrow's dictionary encoding."""
    enc = table.column(column).cast(pa.string()).fill_null("").combine_chunks().dictionary_encode()
    return enc.indices.to_numpy(zero_copy_only=False).astype(np.int64), [str(x) for x in enc.dictionary.to_pylist()]


class _Cells:
    """The training candidates grouped by (domain, class) cell, each cell in the order subsampling takes it."""

    def __init__(self, idx: np.ndarray, dom: np.ndarray, cls: np.ndarray, n_classes: int, spec: MixSpec):
        key = dom[idx] * n_classes + cls[idx]
        order = np.argsort(key, kind="stable")  # manifest order within a cell
        idx, key = idx[order], key[order]
        starts = np.r_[0, np.flatnonzero(np.diff(key)) + 1]
        self.cells: dict[tuple[int, int], np.ndarray] = {}
        for s, e in zip(starts, np.r_[starts[1:], idx.size], strict=True):
            k = int(key[s])
            rows = idx[s:e]
            if spec.shuffle:
                rows = np.random.default_rng([spec.seed, 7_311, k]).permutation(rows)
            self.cells[(k // n_classes, k % n_classes)] = rows

    def size(self) -> int:
        return sum(v.size for v in self.cells.values())


def _subsample(cells: _Cells, target: int, shrink: float, protected: dict[tuple[int, int], int],
               domain_order: list[int], class_order: list[int]) -> np.ndarray:
    """subsample_domainnet_lso.py l.154-186: keep ceil(shrink × n) per cell (a protected cell keeps its given
    count), then drop one item per class, domain by domain (largest first), until exactly `target` remain."""
    kept = {}
    for c, rows in cells.cells.items():
        k = protected[c] if c in protected else math.ceil(shrink * rows.size)
        kept[c] = rows[:min(k, rows.size)]
    current = sum(v.size for v in kept.values())
    if current < target:
        raise ClipcompError(f"cannot subsample to {target:,} rows: only {current:,} remain")
    rank = {c: i for i, c in enumerate(class_order)}
    while current != target:
        before = current
        for d in domain_order:
            for c in sorted((c for c in kept if c[0] == d), key=lambda c: rank[c[1]]):
                if c in protected or kept[c].size == 0:
                    continue
                kept[c] = kept[c][:-1]
                current -= 1
                if current == target:
                    break
            if current == target:
                break
        if current == before:
            raise ClipcompError(f"cannot subsample to {target:,} rows: nothing left to drop")
    return np.sort(np.concatenate([v for v in kept.values()] or [np.zeros(0, np.int64)]))


def build_mixture(table: pa.Table, spec: MixSpec, source: str = "manifest",
                  natural_extra: pa.Table | None = None) -> tuple[pa.Table, dict, dict]:
    """(train table, {test split name: table}, meta) for one setting; every choice is seeded and recorded.
    `natural_extra` (their ImageNet-Captions part) is appended to the training set in full, never subsampled."""
    spec.validate()
    cls, classes = _codes(table, spec.class_column)
    dom, domains = _codes(table, spec.domain_column)
    for what, value in (("--test-domain", spec.test_domain), ("--natural-domain", spec.natural_domain)):
        if value not in domains:
            raise ClipcompError(f"{source}: {what} {value!r} is not a domain of the manifest "
                                f"(domains: {', '.join(sorted(domains))})")
    if spec.test_domain == spec.natural_domain:
        raise ClipcompError("--test-domain must differ from --natural-domain")
    renditions = sorted(d for d in domains if d not in (spec.natural_domain, spec.test_domain))
    if spec.domains is not None:
        bad = [d for d in spec.domains if d not in renditions]
        if bad:
            raise ClipcompError(f"{source}: --domains {', '.join(bad)}: not rendition domains of the manifest "
                                f"(available: {', '.join(renditions)})")
        renditions = sorted(spec.domains)
    extra = sorted(spec.extra_classes or [])
    bad = [c for c in extra if c not in classes]
    if bad:
        raise ClipcompError(f"{source}: --extra-classes {', '.join(bad)} not in the manifest "
                            f"(classes: {', '.join(sorted(classes)[:30])}{' ...' if len(classes) > 30 else ''})")
    main_classes = sorted(c for c in classes if c not in extra)
    if spec.held_out_classes is not None:
        bad = [c for c in spec.held_out_classes if c not in main_classes]
        if bad:
            raise ClipcompError(f"{source}: held-out class(es) {', '.join(bad)} not in the manifest "
                                f"(classes: {', '.join(main_classes[:30])}{' ...' if len(main_classes) > 30 else ''})")
        held = sorted(set(spec.held_out_classes))
    else:
        if spec.n_held_out >= len(main_classes):
            raise ClipcompError(f"--n-held-out {spec.n_held_out}: the manifest has only {len(main_classes)} classes")
        held = sorted(np.random.default_rng([spec.seed, 9_001]).choice(main_classes, size=spec.n_held_out,
                                                                       replace=False).tolist())
    code = {c: i for i, c in enumerate(classes)}
    dcode = {d: i for i, d in enumerate(domains)}
    is_held = np.isin(cls, [code[c] for c in held])
    is_extra = np.isin(cls, [code[c] for c in extra])
    is_test = _split_rows(cls, dom, table, spec)
    nat, tst = dom == dcode[spec.natural_domain], dom == dcode[spec.test_domain]
    ren = np.isin(dom, [dcode[d] for d in renditions])
    train_pool = ~is_test & ~is_extra
    filter_t = not spec.pseudo_exclude and spec.allow_pct == 0  # l.71-73
    setting = spec.setting
    if setting == "natural-only":
        keep = nat
    elif setting == "leave-out-domain":
        keep = nat | ren
    elif setting == "cg-low":
        keep = nat | (tst & ~is_held if filter_t else tst)
    else:  # cg-high, class-overlap
        keep = nat | ren | (tst & ~is_held if filter_t else tst)
    if spec.held_out_from == "all-renditions" and setting != "natural-only":
        keep &= ~(is_held & ~nat)
    cand = np.flatnonzero(keep & train_pool)
    reference = int((train_pool & (nat | (tst & ~is_held))).sum())  # l.122-133: the single-rendition setting
    sizes = {"reference_rows": reference, "candidate_rows": int(cand.size)}
    if spec.size == "kempf" and setting != "natural-only":
        if cand.size < reference:
            raise ClipcompError(f"--size kempf: the {setting} mixture has only {cand.size:,} training rows, fewer "
                                f"than the reference (the single-rendition setting, {reference:,}); use --size all")
        domain_rows = np.bincount(dom[train_pool], minlength=len(domains))
        domain_order = sorted(range(len(domains)), key=lambda d: (-domain_rows[d], domains[d]))
        cells = _Cells(cand, dom, cls, len(classes), spec)
        shrink = reference / cand.size
        protected: dict[tuple[int, int], int] = {}
        if spec.allow_pct > 0:  # l.138-148, l.158-161
            t = dcode[spec.test_domain]
            h_cells = [(t, code[c]) for c in held if (t, code[c]) in cells.cells]
            protected = {c: math.ceil(spec.allow_pct * shrink * cells.cells[c].size) for c in h_cells}
            allowed = sum(protected.values())
            maximum = sum(cells.cells[c].size for c in h_cells)
            sizes["allowed_held_out_rows"] = allowed
            shrink = (reference - allowed) / (cand.size - maximum)
        sizes["shrink_factor"] = shrink
        cand = _subsample(cells, reference, shrink, protected, domain_order, list(range(len(classes))))
    elif spec.size == "fixed-total":
        if spec.n > cand.size:
            raise ClipcompError(f"--n {spec.n}: the {setting} mixture has only {cand.size} training rows")
        cand = np.sort(np.random.default_rng([spec.seed, 9_003]).choice(cand, spec.n, replace=False))
    elif spec.size == "fixed-natural":
        nat_idx = cand[nat[cand]]
        if spec.n > nat_idx.size:
            raise ClipcompError(f"--n {spec.n}: only {nat_idx.size} natural training rows")
        chosen = np.random.default_rng([spec.seed, 9_004]).choice(nat_idx, spec.n, replace=False)
        cand = np.sort(np.concatenate([chosen, cand[~nat[cand]]]))
    overlap_classes: list[str] = []
    if setting == "class-overlap":
        extra_pool = np.flatnonzero(is_extra & tst & ~is_test)
        cand, overlap_classes, sizes["replaced_rows"] = _class_overlap(cand, tst, cls, classes, extra_pool, spec)
    captions = _captions(table, spec, domains, dom, classes, cls)
    train = _rows(table, cand, spec, captions)
    tests = {}
    for d in sorted(domains):
        for part, mask in (("seen", ~is_held & ~is_extra), ("unseen", is_held)):
            idx = np.flatnonzero(is_test & (dom == dcode[d]) & mask)
            if idx.size:
                tests[f"test_{_safe(d)}_{part}"] = _rows(table, idx, spec, captions)
    counts = {f"{d}/{'held-out' if h else 'seen'}": int(((dom[cand] == dcode[d]) & (is_held[cand] == h)).sum())
              for d in sorted(domains) for h in (False, True)}
    n_extra = 0
    if natural_extra is not None and natural_extra.num_rows:
        n_extra = natural_extra.num_rows
        train = _append_natural(train, natural_extra, spec)
    meta = {"settings": {k: v for k, v in asdict(spec).items() if k != "extra"}, "source": source,
            "held_out_classes": held, "overlap_classes": overlap_classes, "extra_classes": extra,
            "classes": main_classes, "domains": sorted(domains), "rendition_domains": renditions,
            "n_train": int(train.num_rows), "n_natural_extra": n_extra, "subsampling": sizes,
            "train_counts": counts, "tests": {k: v.num_rows for k, v in tests.items()},
            "reference": "lmb-freiburg/understanding-clip-ood scripts/subsample_domainnet_lso.py"}
    return train, tests, meta


def _class_overlap(cand, tst, cls, classes, extras, spec):
    """scripts/mix_in_sketches.py l.59-106: keep T's items of a seeded share of its classes, add every T item of
    the extra classes, drop random other items so the total stays (nested subsets across `overlap` per seed)."""
    t_rows = cand[tst[cand]]
    t_classes = sorted(set(cls[t_rows].tolist()), key=lambda c: classes[c])
    order = np.random.default_rng([spec.seed, 9_002]).permutation(len(t_classes))
    n_keep = int(round(spec.overlap * len(t_classes)))
    kept_classes = sorted(t_classes[i] for i in order[:n_keep])
    keep_t = t_rows[np.isin(cls[t_rows], kept_classes)]
    removed = t_rows.size - keep_t.size
    if removed > extras.size:
        raise ClipcompError(f"--overlap {spec.overlap}: {removed:,} test-domain rows removed but only {extras.size:,} "
                            "rows of the extra classes to put in their place (l.92 of their script)")
    other = cand[~tst[cand]]
    drop = extras.size - removed
    if drop > other.size:
        raise ClipcompError(f"--extra-classes: {extras.size:,} replacement rows exceed the other rows of the mixture")
    dropped = np.random.default_rng([spec.seed, 9_005]).choice(other.size, size=drop, replace=False)
    other = np.delete(other, dropped)
    out = np.sort(np.concatenate([other, keep_t, extras]))
    return out, sorted(classes[c] for c in kept_classes), int(removed)


def _captions(table, spec, domains, dom, classes, cls) -> pa.Array | None:
    if spec.captions == "keep":
        return None
    if spec.captions in ("neutral", "named"):
        names = [c.replace("_", " ") for c in classes]
        if spec.captions == "neutral":
            return pa.array([f"an image of a {names[c]}" for c in cls.tolist()], pa.string())
        words = [DOMAIN_WORDS.get(d, d) for d in domains]
        return pa.array([f"a {words[d]} of a {names[c]}" for c, d in zip(cls.tolist(), dom.tolist(), strict=True)],
                        pa.string())
    rng = random.Random(spec.caption_seed)  # generate_domainnet_captions.py l.46-61, row by row
    aligned = spec.captions == "kempf-aligned"
    caps = []
    for c, d in zip(cls.tolist(), dom.tolist(), strict=True):
        name = domains[d]
        template = rng.choice(KEMPF_TEMPLATES)
        template = template if rng.random() < 0.5 else template[:-1]
        terms = KEMPF_TERMS["all"] if aligned else KEMPF_TERMS["all"] + KEMPF_TERMS.get(
            KEMPF_TERMS_ALIASES.get(name, name), [name])
        term = rng.choice(terms)
        aan = KEMPF_AAN.get(term, "a ")
        caps.append(template.format(CLS=classes[c].replace("_", " "), TERM=term, AAN=aan))
    return pa.array(caps, pa.string())


def _rows(table: pa.Table, idx: np.ndarray, spec: MixSpec, captions: pa.Array | None) -> pa.Table:
    t = table.take(pa.array(idx))
    if captions is None:
        return t
    if spec.caption_column in t.column_names:
        t = t.drop_columns([spec.caption_column])
    return t.append_column(spec.caption_column, captions.take(pa.array(idx)))


def _append_natural(train: pa.Table, extra: pa.Table, spec: MixSpec) -> pa.Table:
    n = extra.num_rows
    cols = {}
    for name in train.column_names:
        if name in extra.column_names:
            cols[name] = extra.column(name).cast(train.schema.field(name).type)
        elif name == spec.domain_column:
            cols[name] = pa.array([spec.natural_domain] * n, train.schema.field(name).type)
        elif name == "split":
            cols[name] = pa.array(["train"] * n, train.schema.field(name).type)
        else:
            cols[name] = pa.nulls(n, train.schema.field(name).type)
    return pa.concat_tables([train, pa.table(cols, schema=train.schema)])


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)


def mix_build(manifest: str | list[str], out: str, spec: MixSpec, force: bool = False,
              natural_extra: str | None = None) -> dict:
    """Write OUT/train.parquet (rows of the manifest, same columns; image paths made absolute), OUT/train.tsv
    (their `filepath\\ttitle` format), OUT/test_*.parquet and OUT/meta.json; returns the meta."""
    from clipcomp.io import atomic_output, atomic_write_json, prepare_output

    paths = [manifest] if isinstance(manifest, str) else list(manifest)
    table = read_mix_manifest(paths, spec)
    table = _absolute(table, spec.image_column, os.path.dirname(os.path.abspath(paths[0])))
    extra = None
    if natural_extra:
        extra = _absolute(read_captions_tsv(natural_extra, spec.image_column, spec.caption_column),
                          spec.image_column, os.path.dirname(os.path.abspath(natural_extra)))
    train, tests, meta = build_mixture(table, spec, ", ".join(paths), extra)
    prepare_output(out, "mix build", {"manifest": [os.path.abspath(p) for p in paths],
                                      "natural_extra": os.path.abspath(natural_extra) if natural_extra else None,
                                      **meta["settings"]}, force=force, markers=("train.parquet",))
    write_parquet(train, os.path.join(out, "train.parquet"))
    if spec.caption_column in train.column_names:
        with atomic_output(os.path.join(out, "train.tsv")) as tmp, open(tmp, "w", encoding="utf-8") as f:
            f.write("filepath\ttitle\n")
            for p, c in zip(train.column(spec.image_column).to_pylist(), train.column(spec.caption_column).to_pylist(),
                            strict=True):
                f.write(f"{p}\t{c}\n")
    for name, t in tests.items():
        write_parquet(t, os.path.join(out, f"{name}.parquet"))
    atomic_write_json(os.path.join(out, "meta.json"), meta)
    return meta


def _absolute(table: pa.Table, column: str, root: str) -> pa.Table:
    if column not in table.column_names:
        return table
    paths = [p if os.path.isabs(str(p)) else os.path.join(root, str(p)) for p in table.column(column).to_pylist()]
    return table.set_column(table.column_names.index(column), column, pa.array(paths, pa.string()))
