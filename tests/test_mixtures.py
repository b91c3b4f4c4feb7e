"""Domain–class mixtures are exact on constructed manifests; the miniature domain dataset; CLI errors."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import run_cli

from clipcomp.datasets.mixtures import SETTINGS, MixSpec, build_mixture, read_domainnet_lists
from clipcomp.errors import ClipcompError

CLASSES = [f"c{i}" for i in range(10)]
DOMAINS = ["real", "clipart", "sketch", "painting", "quickdraw"]


def manifest(per_cell: int = 6, split: bool = True) -> pa.Table:
    rows = {k: [] for k in ("image", "caption", "class", "domain", "split")}
    for d, c in itertools.product(DOMAINS, CLASSES):
        for i in range(per_cell):
            rows["image"].append(f"{d}/{c}/{i}.jpg")
            rows["caption"].append(f"a {d} {c}")
            rows["class"].append(c)
            rows["domain"].append(d)
            rows["split"].append("test" if i < 2 else "train")
    t = pa.table(rows)
    return t if split else t.drop_columns(["split"])


def pairs(t: pa.Table) -> set[tuple[str, str]]:
    return set(zip(t.column("class").to_pylist(), t.column("domain").to_pylist(), strict=True))


@pytest.mark.parametrize("setting", SETTINGS)
def test_settings_are_exact(setting):
    t = manifest()
    spec = MixSpec(setting=setting, test_domain="sketch", n_held_out=4, seed=3, overlap=0.5)
    train, tests, meta = build_mixture(t, spec)
    held = set(meta["held_out_classes"])
    assert len(held) == 4
    seen = pairs(train)
    assert not any(c in held and d == "sketch" for c, d in seen)  # never the unseen combination
    assert set(train.column("split").to_pylist()) == {"train"}  # no test row in training
    domains_in = {d for _, d in seen}
    if setting == "natural-only":
        assert domains_in == {"real"} and train.num_rows == 10 * 4
    if setting == "leave-out-domain":
        assert "sketch" not in domains_in and domains_in == {"real", "clipart", "painting", "quickdraw"}
    if setting == "cg-low":
        assert domains_in == {"real", "sketch"}
    if setting in ("cg-high", "class-overlap"):
        assert domains_in == set(DOMAINS)
    renditions_held = {c for c, d in seen if c in held and d not in ("real", "sketch")}
    if setting == "class-overlap":
        assert renditions_held == set(meta["overlap_classes"]) and len(meta["overlap_classes"]) == 2
    else:
        assert renditions_held == set()
    assert {c for c, d in seen if d == "real"} == set(CLASSES)  # held-out classes are seen naturally
    # test splits: every domain × seen/unseen, only test rows, classes as labelled
    assert set(tests) == {f"test_{d}_{p}" for d in DOMAINS for p in ("seen", "unseen")}
    assert set(tests["test_sketch_unseen"].column("class").to_pylist()) == held
    assert all(set(v.column("split").to_pylist()) == {"test"} for v in tests.values())
    again = build_mixture(t, spec)[0]
    assert again.equals(train)  # deterministic per seed


def test_sizes_and_captions():
    t = manifest(split=False)
    spec = MixSpec(setting="cg-high", test_domain="quickdraw", held_out_classes=["c1", "c2"], size="fixed-total",
                   n=100, captions="named")
    train, tests, meta = build_mixture(t, spec)
    assert train.num_rows == 100 and meta["n_train"] == 100
    assert all(c.startswith("a ") and " of a c" in c for c in train.column("caption").to_pylist())
    assert "a doodle of a c0" in set(build_mixture(t, MixSpec(setting="cg-high", test_domain="quickdraw",
                                                             held_out_classes=["c1"], captions="named"))[0]
                                     .column("caption").to_pylist())
    spec = MixSpec(setting="cg-high", test_domain="quickdraw", held_out_classes=["c1", "c2"], size="fixed-natural",
                   n=20)
    train, _, _ = build_mixture(t, spec)
    assert train.column("domain").to_pylist().count("real") == 20
    a = build_mixture(t, MixSpec(setting="cg-low", test_domain="sketch", n_held_out=3, seed=1))[2]
    b = build_mixture(t, MixSpec(setting="cg-low", test_domain="sketch", n_held_out=3, seed=2))[2]
    assert a["held_out_classes"] != b["held_out_classes"] or a["n_train"] == b["n_train"]
    with pytest.raises(ClipcompError, match="only"):
        build_mixture(t, MixSpec(setting="natural-only", test_domain="sketch", n_held_out=1, size="fixed-total",
                                 n=10_000))


def test_bad_choices_list_what_exists():
    t = manifest()
    with pytest.raises(ClipcompError, match="'photos' is not a domain.*clipart"):
        build_mixture(t, MixSpec(setting="cg-low", test_domain="photos", n_held_out=1))
    with pytest.raises(ClipcompError, match="held-out class.*zebra.*c0"):
        build_mixture(t, MixSpec(setting="cg-low", test_domain="sketch", held_out_classes=["zebra"]))


def test_domainnet_lists(tmp_path):
    (tmp_path / "clipart_train.txt").write_text("clipart/aircraft_carrier/clipart_001_000001.jpg 0\n"
                                                "clipart/zebra/clipart_345_000002.jpg 344\n")
    (tmp_path / "real_test.txt").write_text("real/zebra/real_345_000003.jpg 344\n")
    t = read_domainnet_lists([str(tmp_path / "clipart_train.txt"), str(tmp_path / "real_test.txt")])
    assert t.column("class").to_pylist() == ["aircraft carrier", "zebra", "zebra"]
    assert t.column("domain").to_pylist() == ["clipart", "clipart", "real"]
    assert t.column("split").to_pylist() == ["train", "train", "test"]


def test_cli_on_generated_domains(tmp_path, capsys):
    code, _, err = run_cli(["synth", "domains", "-o", str(tmp_path / "dom"), "--per-cell", "5", "--classes",
                            "circle,square,triangle,star", "--domains", "natural,sketch,quickdraw"], capsys)
    assert code == 0, err
    code, out, err = run_cli(["mix", "build", str(tmp_path / "dom" / "manifest.parquet"), "-o", str(tmp_path / "m"),
                              "--setting", "leave-out-domain", "--test-domain", "quickdraw", "--natural-domain",
                              "natural", "--held-out-classes", "star"], capsys)
    assert code == 0, err
    train = pq.read_table(tmp_path / "m" / "train.parquet")
    assert "quickdraw" not in set(train.column("domain").to_pylist())
    meta = json.loads((tmp_path / "m" / "meta.json").read_text())
    assert meta["held_out_classes"] == ["star"] and (tmp_path / "m" / "test_quickdraw_unseen.parquet").exists()
    img = train.column("image").to_pylist()[0]
    from PIL import Image

    assert np.asarray(Image.open(img)).shape == (64, 64, 3)
    (tmp_path / "nocol.csv").write_text("image,label\na.jpg,x\n")
    code, _, err = run_cli(["mix", "build", str(tmp_path / "nocol.csv"), "-o", str(tmp_path / "m2"), "--setting",
                            "cg-low", "--test-domain", "sketch", "--n-held-out", "1"], capsys)
    assert code == 2 and "nocol.csv" in err and "columns: image, label" in err
