"""Bad input gives a one-line error naming the file and the problem (exit ≠ 0), and loses nothing computed."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import run_cli

from clipcomp.cooccur import BuildOptions, build_stats
from clipcomp.errors import ClipcompError


def _one_line_error(err: str) -> str:
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


@pytest.fixture()
def shards(tmp_path, cc3m_lines):
    d = tmp_path / "shards"
    d.mkdir()
    for i in range(3):
        pq.write_table(pa.table({"TEXT": cc3m_lines[i * 500:(i + 1) * 500]}), d / f"p{i}.parquet")
    return d


def test_missing_input_file(tmp_path, capsys):
    code, _, err = run_cli(["stats", "build", str(tmp_path / "nope.txt"), "-o", str(tmp_path / "o")], capsys)
    assert code == 2
    assert "nope.txt: input not found" in _one_line_error(err)


def test_missing_text_column(tmp_path, shards, capsys):
    code, _, err = run_cli(["stats", "build", str(shards), "-o", str(tmp_path / "o"), "--text-column", "caption"],
                           capsys)
    line = _one_line_error(err)
    assert code == 2 and "p0.parquet" in line and "no column 'caption'" in line and "TEXT" in line


def test_truncated_shard_errors_then_skip_bad_counts_the_rest(tmp_path, shards, capsys):
    data = (shards / "p1.parquet").read_bytes()
    (shards / "p1.parquet").write_bytes(data[: len(data) // 2])
    code, _, err = run_cli(["stats", "build", str(shards), "-o", str(tmp_path / "o")], capsys)
    line = _one_line_error(err)
    assert code == 2 and "p1.parquet" in line and "Parquet" in line
    code, out, err = run_cli(["stats", "build", str(shards), "-o", str(tmp_path / "o2"), "--skip-bad", "-q"],
                             capsys)
    assert code == 0
    meta = json.loads((tmp_path / "o2" / "meta.json").read_text())
    assert meta["n_captions"] == 1000
    assert [s["file"].endswith("p1.parquet") for s in meta["skipped"]] == [True]


def test_corrupt_text_inside_a_shard(tmp_path, cc3m_lines, capsys):
    good = tmp_path / "good.jsonl"
    good.write_text("".join(json.dumps({"caption": c}) + "\n" for c in cc3m_lines[:200]))
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"caption": "a dog"}) + "\n" + '{"caption": "a cat", \n')
    code, _, err = run_cli(["stats", "build", str(good), str(bad), "-o", str(tmp_path / "o")], capsys)
    line = _one_line_error(err)
    assert code == 2 and "bad.jsonl" in line and "line 2" in line
    # finished tasks were kept for a resume
    assert list((tmp_path / "o" / "_work").glob("discover-*.json"))
    code, _, _ = run_cli(["stats", "build", str(good), str(bad), "-o", str(tmp_path / "o"), "--skip-bad", "-q",
                          "--force"], capsys)
    meta = json.loads((tmp_path / "o" / "meta.json").read_text())
    assert meta["n_captions"] == 200 and meta["skipped"][0]["file"].startswith(str(bad))


def test_empty_corpus(tmp_path, capsys):
    (tmp_path / "empty.txt").write_text("")
    code, _, err = run_cli(["stats", "build", str(tmp_path / "empty.txt"), "-o", str(tmp_path / "o")], capsys)
    assert code == 2 and "empty corpus" in _one_line_error(err)


def test_vocab_duplicates_name_both_lines(tmp_path, cc3m_path, capsys):
    (tmp_path / "v.txt").write_text("dog\ncat\n# comment\nDog\n")
    code, _, err = run_cli(["stats", "build", cc3m_path, "-o", str(tmp_path / "o"), "--vocab",
                            str(tmp_path / "v.txt")], capsys)
    line = _one_line_error(err)
    assert code == 2 and "v.txt: line 4: duplicate concept 'dog' (first on line 1)" in line
    (tmp_path / "v2.txt").write_text("dog\ndogs\n")
    with pytest.raises(ClipcompError, match=r"line 2: 'dogs' is the same concept as 'dog' \(line 1\)"):
        build_stats([cc3m_path], str(tmp_path / "o2"), BuildOptions(vocab=str(tmp_path / "v2.txt")))


def test_output_directory_with_a_different_run(tmp_path, cc3m_path, capsys):
    out = tmp_path / "o"
    build_stats([cc3m_path], str(out), BuildOptions(min_count=20))
    before = (out / "pairs.parquet").read_bytes()
    code, _, err = run_cli(["stats", "build", cc3m_path, "-o", str(out), "--min-count", "30"], capsys)
    assert code == 2 and "holds a different build" in _one_line_error(err)
    assert (out / "pairs.parquet").read_bytes() == before  # nothing lost
    res = build_stats([cc3m_path], str(out), BuildOptions(min_count=20))
    assert res.up_to_date
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(ClipcompError, match="not empty and holds no clipcomp build"):
        build_stats([cc3m_path], str(tmp_path / "other"), BuildOptions())


def test_bad_options(tmp_path, cc3m_path, capsys):
    code, _, err = run_cli(["stats", "build", cc3m_path, "-o", str(tmp_path / "o"), "--lemmatizer", "nltk"], capsys)
    assert code == 2 and "unknown --lemmatizer 'nltk'" in _one_line_error(err)
    code, _, err = run_cli(["stats", "build", cc3m_path, "-o", str(tmp_path / "o"), "--stopwords",
                            str(tmp_path / "missing.txt")], capsys)
    assert code == 2 and "missing.txt: stopwords file not found" in _one_line_error(err)


def test_not_a_stats_directory(tmp_path, capsys):
    code, _, err = run_cli(["stats", "info", str(tmp_path)], capsys)
    assert code == 2 and "not a ConceptStats directory" in _one_line_error(err)
