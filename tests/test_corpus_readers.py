"""Every reader yields the same captions: Parquet, JSONL, CSV/TSV, TXT, COCO JSON, directories and globs."""

from __future__ import annotations

import gzip
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from clipcomp.cooccur import BuildOptions, build_stats
from clipcomp.corpus import ReadTally, iter_texts, plan_tasks, read_range
from clipcomp.errors import ClipcompError


def _read_all(inputs, **kw):
    plan = plan_tasks([str(p) for p in inputs], **kw)
    tally = ReadTally()
    out = []
    for t in plan.tasks:
        for arr in iter_texts(t, tally):
            out.extend(arr.to_pylist())
    return out, tally, plan


@pytest.fixture(scope="module")
def sample(cc3m_lines):
    return cc3m_lines[:3000]


def test_parquet_laion_and_hf_column_names(tmp_path, sample):
    pq.write_table(pa.table({"URL": ["u"] * len(sample), "TEXT": sample}), tmp_path / "laion.parquet",
                   row_group_size=700)
    pq.write_table(pa.table({"caption": sample, "key": list(range(len(sample)))}), tmp_path / "hf.parquet")
    got, tally, plan = _read_all([tmp_path / "laion.parquet"], target_rows=1000)
    assert got == sample and tally.n_rows == len(sample)
    assert len(plan.tasks) == 3  # row groups grouped into tasks of ≥ 1000 rows
    got, _, _ = _read_all([tmp_path / "hf.parquet"])
    assert got == sample
    got, _, _ = _read_all([tmp_path / "laion.parquet"], text_column="URL")
    assert set(got) == {"u"}


def test_jsonl_csv_tsv_txt_and_gzip(tmp_path, sample):
    (tmp_path / "a.jsonl").write_text("".join(json.dumps({"id": i, "caption": c}) + "\n"
                                              for i, c in enumerate(sample)))
    csv_rows = ['id,text'] + [f'{i},"{c.replace(chr(34), chr(34) * 2)}"' for i, c in enumerate(sample)]
    (tmp_path / "b.csv").write_text("\n".join(csv_rows) + "\n")
    (tmp_path / "c.tsv").write_text("".join(f"{c}\thttp://x/{i}\n" for i, c in enumerate(sample)))
    (tmp_path / "d.txt").write_text("\n".join(sample) + "\n")
    with gzip.open(tmp_path / "e.txt.gz", "wt") as f:
        f.write("\n".join(sample))
    for name in ("a.jsonl", "b.csv", "c.tsv", "d.txt", "e.txt.gz"):
        got, tally, _ = _read_all([tmp_path / name], target_bytes=20_000)
        assert got == sample, name
        assert tally.n_rows == len(sample)


def test_headerless_tsv_by_index_and_header_by_name(tmp_path, sample):
    (tmp_path / "c.tsv").write_text("".join(f"http://x/{i}\t{c}\n" for i, c in enumerate(sample)))
    got, _, _ = _read_all([tmp_path / "c.tsv"], text_column="1")
    assert got == sample
    (tmp_path / "h.tsv").write_text("url\tmy_caption\n" + "".join(f"u{i}\t{c}\n" for i, c in enumerate(sample)))
    got, _, _ = _read_all([tmp_path / "h.tsv"], text_column="my_caption", target_bytes=5000)
    assert got == sample


def test_coco_captions_json(tmp_path, sample):
    coco = {"images": [{"id": i} for i in range(10)],
            "annotations": [{"id": i, "image_id": i % 10, "caption": c} for i, c in enumerate(sample[:50])]}
    (tmp_path / "captions_val.json").write_text(json.dumps(coco))
    got, _, plan = _read_all([tmp_path / "captions_val.json"])
    assert plan.tasks[0].fmt == "coco" and got == sample[:50]


def test_real_coco_captions(tmp_path):
    path = __import__("conftest").shared_path("coco_mini", "annotations", "captions_val2017.json")
    anns = json.loads(path.read_text())["annotations"]
    got, _, _ = _read_all([path])
    assert got == [a["caption"] for a in anns]


def test_directories_and_globs(tmp_path, sample):
    d = tmp_path / "shards"
    d.mkdir()
    for i in range(3):
        pq.write_table(pa.table({"caption": sample[i * 1000:(i + 1) * 1000]}), d / f"part-{i:03d}.parquet")
    (d / "_SUCCESS").write_text("")
    got, _, plan = _read_all([d])
    assert got == sample and len(plan.files) == 3
    got, _, _ = _read_all([str(d / "part-00[01].parquet")])
    assert got == sample[:2000]


def test_byte_ranges_cover_every_line_once(tmp_path, sample):
    path = tmp_path / "d.txt"
    path.write_text("\n".join(sample) + "\n")
    size = path.stat().st_size
    for step in (1, 7, 100, 4096):
        bounds = list(range(0, min(size, 2000) if step == 1 else size, step)) + [size]
        pieces = b"".join(read_range(str(path), a, b) for a, b in zip(bounds[:-1], bounds[1:], strict=True))
        assert pieces == path.read_bytes()


def test_null_empty_and_invalid_utf8_are_counted_not_errors(tmp_path, sample):
    pq.write_table(pa.table({"caption": ["a red car", None, "", "   ", "a blue car"]}), tmp_path / "n.parquet")
    raw = b"a red car\n" + b"caf\xe9 in paris\n" + b"\n" + b"a blue car\n"
    (tmp_path / "bad.txt").write_bytes(raw)
    out = tmp_path / "stats"
    res = build_stats([str(tmp_path / "n.parquet"), str(tmp_path / "bad.txt")], str(out),
                      BuildOptions(min_count=1, stopwords="none", lemmatizer="none"))
    assert res.n_captions == 9
    assert res.tally == {"n_rows": 9, "n_null": 1, "n_empty": 3, "n_invalid_utf8": 1}
    meta = json.loads((out / "meta.json").read_text())
    assert meta["tally"]["n_invalid_utf8"] == 1
    from clipcomp.stats import ConceptStats

    stats = ConceptStats.load(out)
    assert stats.count("car") == 4 and stats.count("red", "car") == 2
    assert "paris" in stats  # the line with a bad byte still counts, with U+FFFD in place of the byte


def test_unicode_tokens(tmp_path):
    (tmp_path / "u.txt").write_text("Café au lait in Zürich\nthe CAFÉ in Zürich\nnaïve café\n")
    out = tmp_path / "s"
    build_stats([str(tmp_path / "u.txt")], str(out), BuildOptions(min_count=1, lemmatizer="none"))
    from clipcomp.stats import ConceptStats

    s = ConceptStats.load(out)
    assert s.count("café") == 3 and s.count("zürich") == 2 and s.count("café", "zürich") == 2


def test_unknown_extension_is_a_clear_error(tmp_path):
    (tmp_path / "x.bin").write_bytes(b"abc")
    with pytest.raises(ClipcompError, match=r"x\.bin: unknown file type"):
        plan_tasks([str(tmp_path / "x.bin")])
