"""Domain–class mixtures match Kempf et al.'s public code on constructed manifests (a line-by-line transcription of
scripts/subsample_domainnet_lso.py over plain lists is the reference); bad choices list what exists."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import run_cli

from clipcomp.datasets.mixtures import SETTINGS, MixSpec, build_mixture, read_domainnet_lists
from clipcomp.errors import ClipcompError

CLASSES = [f"c{i}" for i in range(10)]
DOMAINS = ["real", "clipart", "sketch", "painting", "quickdraw"]
RENDITIONS = ["clipart", "painting", "quickdraw", "sketch"]


def manifest(seed: int = 0, split: bool = True, extra: tuple[str, ...] = ()) -> pa.Table:
    """Unequal cells (3–14 training rows, domain sizes differ) so that subsampling and trimming are exercised."""
    rng = np.random.default_rng(seed)
    rows = {k: [] for k in ("image", "caption", "class", "domain", "split")}
    for d, c in itertools.product(DOMAINS, CLASSES + list(extra)):
        if c in extra and d != "sketch":
            continue
        n = int(rng.integers(3, 15)) + (8 if d == "real" else 0) + (40 if c in extra else 0)
        for i in range(n + 2):
            rows["image"].append(f"{d}/{c}/{i}.jpg")
            rows["caption"].append(f"a {d} {c}")
            rows["class"].append(c)
            rows["domain"].append(d)
            rows["split"].append("test" if i < 2 else "train")
    t = pa.table(rows)
    return t if split else t.drop_columns(["split"])


def kempf_reference(t: pa.Table, test_domain: str, held: list[str], setting: str, exclude_domains=(),
                    allow_pct: float = 0.0, pseudo: bool = False) -> set[str]:
    """subsample_domainnet_lso.py, transcribed over lists (their file order = manifest order)."""
    samples = [(p, c, d) for p, c, d, s in zip(*(t.column(k).to_pylist() for k in ("image", "class", "domain",
                                                                                   "split")), strict=True)
               if s == "train"]
    counts = {d: sum(1 for s in samples if s[2] == d) for d in DOMAINS}
    domains = sorted(DOMAINS, key=lambda d: (-counts[d], d))  # their fixed list is DomainNet's descending size
    if setting == "natural-only":
        return {p for p, _, d in samples if d == "real"}
    excl = {"cg-low": [d for d in RENDITIONS if d != test_domain], "cg-high": [],
            "leave-out-domain": [test_domain]}[setting] + list(exclude_domains)
    filt = not pseudo and allow_pct == 0

    def dataset(exclude, filter_t):
        return [s for s in samples if s[2] not in exclude and not (filter_t and s[2] == test_domain and s[1] in held)]

    train = dataset(excl, filt)
    index = {d: {} for d in domains}
    for s in train:
        index[s[2]].setdefault(s[1], []).append(s)
    size = len(dataset([d for d in RENDITIONS if d != test_domain], True))
    shrink = size / len(train)
    if allow_pct > 0:
        allowed = sum(math.ceil(allow_pct * shrink * len(index[test_domain][c])) for c in held)
        maximum = sum(len(index[test_domain][c]) for c in held)
        pseudo_shrink, shrink = shrink, (size - allowed) / (len(train) - maximum)
    sub = {}
    for d in domains:
        sub[d] = {}
        for c in index[d]:
            if allow_pct > 0 and d == test_domain and c in held:
                sub[d][c] = index[d][c][:math.ceil(allow_pct * pseudo_shrink * len(index[d][c]))]
            else:
                sub[d][c] = index[d][c][:math.ceil(shrink * len(index[d][c]))]
    current = sum(len(v) for d in domains for v in sub[d].values())
    while current != size:
        for d in domains:
            for c in sub[d]:
                if allow_pct > 0 and d == test_domain and c in held:
                    continue
                sub[d][c].pop()
                current -= 1
                if current == size:
                    break
            if current == size:
                break
    return {s[0] for d in domains for v in sub[d].values() for s in v}


CASES = [("natural-only", {}), ("leave-out-domain", {}), ("cg-low", {}), ("cg-high", {}),
         ("cg-high", {"domains": ["clipart"]}), ("cg-low", {"allow_pct": 0.3}), ("cg-high", {"allow_pct": 0.5}),
         ("cg-high", {"pseudo_exclude": True}), ("cg-low", {"pseudo_exclude": True})]


@pytest.mark.parametrize("test_domain", ["sketch", "quickdraw"])
@pytest.mark.parametrize(("setting", "opts"), CASES)
def test_rows_equal_kempf_code(setting, opts, test_domain):
    t = manifest(seed=len(setting) + len(opts))
    held = ["c1", "c4", "c7"]
    spec = MixSpec(setting=setting, test_domain=test_domain, held_out_classes=held, shuffle=False, **opts)
    train, _, meta = build_mixture(t, spec)
    excl = [d for d in RENDITIONS if d != test_domain and d not in opts["domains"]] if "domains" in opts else []
    ref = kempf_reference(t, test_domain, held, setting, excl, opts.get("allow_pct", 0.0),
                          opts.get("pseudo_exclude", False))
    assert set(train.column("image").to_pylist()) == ref
    assert meta["n_train"] == len(ref)


@pytest.mark.parametrize("seed", [0, 1])
def test_kempf_invariants(seed):
    t = manifest(seed=seed)
    sizes = {}
    for setting in SETTINGS[:4]:
        spec = MixSpec(setting=setting, test_domain="sketch", n_held_out=3, seed=seed)
        train, tests, meta = build_mixture(t, spec)
        held = set(meta["held_out_classes"])
        cd = list(zip(train.column("class").to_pylist(), train.column("domain").to_pylist(), strict=True))
        assert not any(c in held and d == "sketch" for c, d in cd)  # T never holds a held-out class
        assert set(train.column("split").to_pylist()) == {"train"}
        if setting in ("cg-high", "leave-out-domain"):  # every other rendition domain holds every held-out class
            for d in ("clipart", "painting", "quickdraw"):
                assert held <= {c for c, dd in cd if dd == d}
        assert {c for c, d in cd if d == "real"} == set(CLASSES)
        assert set(tests["test_sketch_unseen"].column("class").to_pylist()) == held
        assert build_mixture(t, spec)[0].equals(train)  # deterministic per seed
        sizes[setting] = train.num_rows
    assert sizes["leave-out-domain"] == sizes["cg-low"] == sizes["cg-high"] < sizes["natural-only"] + 10_000
    spec = MixSpec(setting="cg-high", test_domain="sketch", held_out_classes=sorted(held), seed=seed)
    a = build_mixture(t, spec)[0]
    spec.seed += 5  # another seed: same sizes, another subsample of each cell
    b = build_mixture(t, spec)[0]
    assert a.num_rows == b.num_rows and set(a.column("image").to_pylist()) != set(b.column("image").to_pylist())


def test_allow_pct_lets_exactly_their_share_back():
    t = manifest(seed=4)
    held = ["c2", "c3"]
    spec = MixSpec(setting="cg-high", test_domain="sketch", held_out_classes=held, allow_pct=0.4)
    train, _, meta = build_mixture(t, spec)
    base = build_mixture(t, MixSpec(setting="cg-high", test_domain="sketch", held_out_classes=held))[0]
    assert train.num_rows == base.num_rows
    cd = list(zip(train.column("class").to_pylist(), train.column("domain").to_pylist(), strict=True))
    n_ht = sum(1 for c, d in cd if c in held and d == "sketch")
    cand = t.column("split").to_pylist().count("train")  # cg-high with allow_pct: every training row
    shrink = meta["subsampling"]["reference_rows"] / cand
    per = {c: sum(1 for cc, d, s in zip(*(t.column(k).to_pylist() for k in ("class", "domain", "split")),
                                          strict=True) if cc == c and d == "sketch" and s == "train") for c in held}
    assert n_ht == sum(math.ceil(0.4 * shrink * n) for n in per.values()) == meta["subsampling"][
        "allowed_held_out_rows"]


def test_class_overlap_keeps_size_and_replaces_test_domain_classes():
    t = manifest(seed=2, extra=("x1", "x2"))
    base = build_mixture(t, MixSpec(setting="cg-high", test_domain="sketch", held_out_classes=["c0"],
                                    extra_classes=["x1", "x2"]))[0]
    assert not {"x1", "x2"} & set(base.column("class").to_pylist())  # extra classes only in class-overlap
    kept_sets = []
    for overlap in (1.0, 0.5, 0.2):
        spec = MixSpec(setting="class-overlap", test_domain="sketch", held_out_classes=["c0"], overlap=overlap,
                       extra_classes=["x1", "x2"], seed=3)
        train, tests, meta = build_mixture(t, spec)
        assert train.num_rows == base.num_rows
        sk = {c for c, d in zip(train.column("class").to_pylist(), train.column("domain").to_pylist(), strict=True)
              if d == "sketch"}
        assert sk == set(meta["overlap_classes"]) | {"x1", "x2"}
        assert len(meta["overlap_classes"]) == round(overlap * 9)
        kept_sets.append(set(meta["overlap_classes"]))
        assert "x1" not in set(tests["test_sketch_seen"].column("class").to_pylist())
    assert kept_sets[2] <= kept_sets[1] <= kept_sets[0]  # nested, as in mix_in_sketches.py


def test_named_options_and_captions():
    t = manifest(split=False)
    legacy = build_mixture(t, MixSpec(setting="cg-high", test_domain="quickdraw", held_out_classes=["c1"],
                                      held_out_from="all-renditions", size="all"))[0]
    cd = set(zip(legacy.column("class").to_pylist(), legacy.column("domain").to_pylist(), strict=True))
    assert not any(c == "c1" and d != "real" for c, d in cd)
    spec = MixSpec(setting="cg-high", test_domain="quickdraw", held_out_classes=["c1", "c2"], size="fixed-total",
                   n=100, captions="named")
    train, _, meta = build_mixture(t, spec)
    assert train.num_rows == 100 and meta["n_train"] == 100
    assert all(c.startswith("a ") and " of a c" in c for c in train.column("caption").to_pylist())
    kempf = build_mixture(t, MixSpec(setting="cg-high", test_domain="quickdraw", held_out_classes=["c1"],
                                     captions="kempf"))[0].column("caption").to_pylist()
    aligned = build_mixture(t, MixSpec(setting="cg-high", test_domain="quickdraw", held_out_classes=["c1"],
                                       captions="kempf-aligned"))[0].column("caption").to_pylist()
    words = {"photo", "snapshot", "clipart", "illustration", "sketch", "drawing", "painting", "art", "doodle",
             "quickdraw"}
    assert any(w in c.split() for c in kempf for w in words)
    assert not any(w in c.rstrip(".").split() for c in aligned for w in words)
    assert all(("image" in c or "picture" in c) for c in aligned)
    nat = build_mixture(t, MixSpec(setting="natural-only", test_domain="sketch", n_held_out=1, size="fixed-natural",
                                   n=20))[0]
    assert nat.column("domain").to_pylist().count("real") == 20


def test_natural_extra_is_merged_in_full():
    t = manifest()
    extra = pa.table({"image": [f"in/{i}.jpg" for i in range(50)], "caption": [f"title {i}" for i in range(50)]})
    a, _, m = build_mixture(t, MixSpec(setting="cg-low", test_domain="sketch", n_held_out=2), natural_extra=extra)
    b = build_mixture(t, MixSpec(setting="cg-low", test_domain="sketch", n_held_out=2))[0]
    assert a.num_rows == b.num_rows + 50 and m["n_natural_extra"] == 50
    assert a.column("domain").to_pylist()[-50:] == ["real"] * 50


def test_bad_choices_list_what_exists():
    t = manifest()
    with pytest.raises(ClipcompError, match="'photos' is not a domain.*clipart"):
        build_mixture(t, MixSpec(setting="cg-low", test_domain="photos", n_held_out=1))
    with pytest.raises(ClipcompError, match="held-out class.*zebra.*c0"):
        build_mixture(t, MixSpec(setting="cg-low", test_domain="sketch", held_out_classes=["zebra"]))
    with pytest.raises(ClipcompError, match="allow-pct must be in"):
        build_mixture(t, MixSpec(setting="cg-low", test_domain="sketch", n_held_out=1, allow_pct=1.5))
    import pyarrow.compute as pc

    small = t.filter(pc.or_(pc.not_equal(t.column("domain"), "clipart"), pc.ends_with(t.column("image"), "/2.jpg")))
    with pytest.raises(ClipcompError, match="fewer than the reference"):
        build_mixture(small, MixSpec(setting="leave-out-domain", test_domain="sketch", n_held_out=1,
                                 domains=["clipart"]))
    with pytest.raises(ClipcompError, match="only"):
        build_mixture(t, MixSpec(setting="natural-only", test_domain="sketch", n_held_out=1, size="fixed-total",
                                 n=10_000))


def test_domainnet_lists_and_caption_files(tmp_path):
    (tmp_path / "clipart_train.txt").write_text("clipart/aircraft_carrier/clipart_001_000001.jpg 0\n"
                                                "clipart/zebra/clipart_345_000002.jpg 344\n")
    (tmp_path / "real_test.txt").write_text("real/zebra/real_345_000003.jpg 344\n")
    t = read_domainnet_lists([str(tmp_path / "clipart_train.txt"), str(tmp_path / "real_test.txt")])
    assert t.column("class").to_pylist() == ["aircraft carrier", "zebra", "zebra"]
    assert t.column("domain").to_pylist() == ["clipart", "clipart", "real"]
    assert t.column("split").to_pylist() == ["train", "train", "test"]
    (tmp_path / "sketch_train.tsv").write_text("sketch/zebra/s1.jpg\t344\ta zebra sketch.\n")
    t = read_domainnet_lists([str(tmp_path / "sketch_train.tsv")])
    assert t.column("caption").to_pylist() == ["a zebra sketch."]


def test_cli_builds_from_list_files_with_natural_extra(tmp_path, capsys):
    lines = {d: [] for d in ("real", "sketch", "clipart")}
    for d in lines:
        for c in range(6):
            for i in range(5):
                lines[d].append(f"{d}/cls_{c}/{d}_{c}_{i}.jpg {c}")
    files = []
    for d, ls in lines.items():
        (tmp_path / f"{d}_train.txt").write_text("\n".join(ls) + "\n")
        files.append(str(tmp_path / f"{d}_train.txt"))
    (tmp_path / "in.tsv").write_text("filepath\ttitle\n" + "".join(f"in/{i}.jpg\ta photo {i}\n" for i in range(7)))
    code, out, err = run_cli(["mix", "build", *files, "-o", str(tmp_path / "m"), "--setting", "cg-high",
                              "--test-domain", "sketch", "--held-out-classes", "cls 1,cls 2", "--captions", "kempf",
                              "--natural-extra", str(tmp_path / "in.tsv")], capsys)
    assert code == 0, err
    meta = json.loads((tmp_path / "m" / "meta.json").read_text())
    train = pq.read_table(tmp_path / "m" / "train.parquet")
    assert meta["n_natural_extra"] == 7 and train.num_rows == meta["n_train"]
    assert (tmp_path / "m" / "train.tsv").read_text().startswith("filepath\ttitle\n")
    code, _, err = run_cli(["mix", "build", *files, "-o", str(tmp_path / "m2"), "--setting", "cg-low",
                            "--test-domain", "doodle", "--n-held-out", "1"], capsys)
    assert code == 2 and "'doodle' is not a domain" in err and "sketch" in err
    bad = [(["--held-out-classes", "zebra"], "held-out class(es) zebra not in the manifest (classes: cls 0"),
           (["--allow-pct", "1.5", "--n-held-out", "1"], "--allow-pct"),
           (["--n-held-out", "1", "--size", "fixed-total", "--n", "100000"], "--n 100000: the cg-high"),
           (["--n-held-out", "1", "--domains", "photo"], "--domains photo: not rendition domains")]
    for extra, msg in bad:
        args = ["mix", "build", *files, "-o", str(tmp_path / "m4"), "--test-domain", "sketch", *extra]
        if "--setting" not in extra:
            args += ["--setting", "cg-high"]
        code, _, err = run_cli(args, capsys)
        assert code == 2, (extra, err)
        last = err.strip().splitlines()[-1]  # the one line that says what is wrong (usage errors add a usage line)
        assert last.startswith(("error:", "Error:")) and (msg is None or msg in " ".join(last.split())), err
    (tmp_path / "nocol.csv").write_text("image,label\na.jpg,x\n")
    code, _, err = run_cli(["mix", "build", str(tmp_path / "nocol.csv"), "-o", str(tmp_path / "m3"), "--setting",
                            "cg-low", "--test-domain", "sketch", "--n-held-out", "1"], capsys)
    assert code == 2 and "nocol.csv" in err and "columns: image, label" in err
