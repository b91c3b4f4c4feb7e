"""Every sub-command × every class of bad input: exit code 2 (130 for an interrupt), one line, no traceback, the
path named, and nothing already written lost. A new command is covered by adding one `Cmd` line below."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import run_cli

pytest.importorskip("torch")

SAMPLE = Path(__file__).parent / "data" / "coco_sample"
KINDS = ("missing", "directory", "empty", "garbage", "truncated", "non_utf8", "wrong_columns")


@dataclass
class Cmd:
    """A command line with `{IN}` for the bad input and `{OUT}` for the output; `kinds` are the bad-input classes
    that apply to its input; `numeric` is one out-of-range option; `writes` whether `{OUT}` is an output to test
    against an existing file; `ext` the input's extension."""

    name: str
    argv: list[str]
    ext: str = ".json"
    kinds: tuple[str, ...] = KINDS
    numeric: tuple[str, ...] = ()
    writes: bool = True
    dir_input: bool = False  # the input is a directory (a file is the wrong kind)


SC = str(SAMPLE / "sugarcrepe")
IMG = str(SAMPLE / "images")
FILE_KINDS = ("missing", "directory", "empty", "garbage", "truncated", "non_utf8")
DIR_KINDS = ("missing", "file", "empty_dir")
COMMANDS = [
    Cmd("stats build", ["stats", "build", "{IN}", "-o", "{OUT}", "-q"], ".parquet",
        ("missing", "empty", "garbage", "truncated", "wrong_columns"), ("--min-count", "-5")),
    Cmd("stats build csv", ["stats", "build", "{IN}", "-o", "{OUT}", "-q"], ".csv", ("wrong_columns",),
        ("--workers", "0")),
    Cmd("stats pmi", ["stats", "pmi", "{IN}", "dog", "cat"], "", DIR_KINDS, writes=False, dir_input=True),
    Cmd("stats top", ["stats", "top", "{IN}"], "", DIR_KINDS, ("-k", "0"), writes=False, dir_input=True),
    Cmd("stats score", ["stats", "score", "{IN}", "a dog"], "", DIR_KINDS, writes=False, dir_input=True),
    Cmd("stats info", ["stats", "info", "{IN}"], "", DIR_KINDS, writes=False, dir_input=True),
    Cmd("eval zeroshot", ["eval", "zeroshot", "{IN}", "-o", "{OUT}", "--cache-dir", "none"], ".csv",
        ("missing", "empty", "garbage", "non_utf8", "wrong_columns"), ("--batch-size", "0")),
    Cmd("eval retrieval", ["eval", "retrieval", "{IN}", "--images", IMG, "-o", "{OUT}", "--cache-dir", "none"],
        ".json", FILE_KINDS + ("wrong_columns",), ("--batch-size", "0")),
    Cmd("eval select", ["eval", "select", "{IN}", "--images", IMG, "-o", "{OUT}", "--cache-dir", "none"], ".json",
        ("missing", "empty", "garbage", "truncated", "non_utf8", "wrong_columns"), ("--loader-workers", "-1")),
    Cmd("eval binding", ["eval", "binding", "{IN}", "-o", "{OUT}"], "", DIR_KINDS, ("--scenes", "0"),
        dir_input=True),
    Cmd("eval gather", ["eval", "gather", "{IN}", "-o", "{OUT}.csv"], ".json",
        ("missing", "empty", "garbage", "truncated", "non_utf8", "wrong_columns"), writes=False),
    Cmd("analyze pmi", ["analyze", "pmi", "{IN}", "--stats", "{STATS}", "-o", "{OUT}"], ".parquet",
        ("missing", "empty", "garbage", "truncated", "wrong_columns"), ("--bins", "0")),
    Cmd("analyze pmi tail", ["analyze", "pmi", "{IN}", "--stats", "{STATS}", "-o", "{OUT}"], ".parquet", (),
        ("--tail", "-0.1")),
    Cmd("analyze vqa", ["analyze", "vqa", "{IN}", "--stats", "{STATS}", "-o", "{OUT}"], ".json",
        FILE_KINDS + ("wrong_columns",), ("--boot", "-1")),
    Cmd("synth generate", ["synth", "generate", "{IN}", "-o", "{OUT}"], ".yaml",
        ("missing", "directory", "empty", "garbage", "non_utf8", "wrong_columns"), ("--n-train", "-1")),
    Cmd("train", ["train", "--data", "{IN}", "-o", "{OUT}", "--model", "clipcomp-micro", "--steps", "1",
                  "--batch-size", "2", "--workers", "0", "-q"], ".csv",
        ("missing", "empty", "garbage", "non_utf8", "wrong_columns"), ("--steps", "0")),
    Cmd("train json", ["train", "--data", "{IN}", "--images", IMG, "-o", "{OUT}", "--model", "clipcomp-micro",
                       "--steps", "1", "--batch-size", "2", "--workers", "0", "-q"], ".json",
        ("empty", "garbage", "truncated", "non_utf8", "wrong_columns"), ("--lr", "-1")),
    Cmd("train config", ["train", "{IN}", "-o", "{OUT}"], ".yaml", ("missing", "directory", "garbage", "non_utf8",
                                                                    "wrong_columns"), writes=False),
    Cmd("lab sweep", ["lab", "sweep", "{IN}", "-q"], ".yaml",
        ("missing", "directory", "empty", "garbage", "non_utf8", "wrong_columns"), writes=False),
    Cmd("bench genpairs", ["bench", "genpairs", "{IN}", "-o", "{OUT}", "--classes", "dog,cat"], "", DIR_KINDS,
        ("--quantiles", "0"), dir_input=True),
    Cmd("bench paste", ["bench", "paste", str(SAMPLE / "labels.csv"), "-o", "{OUT}", "--coco", "{IN}",
                        "--coco-images", IMG, "--min-area", "400"], ".json", FILE_KINDS + ("wrong_columns",),
        ("--area-fraction", "2")),
    Cmd("quickstart", ["quickstart", "-o", "{OUT}", "-q", "--steps", "1", "--n-train", "64", "--per-pair", "1",
                       "--no-control", "--no-finetune-paste"], "", (), ("--per-pair", "0")),
    Cmd("base", ["base", "-o", "{OUT}", "-q", "--steps", "1", "--n-train", "24", "--n-test", "12", "--min-items", "1",
                 "--min-accuracy", "0"], "", (), ("--min-accuracy", "1.5")),
    Cmd("mix build", ["mix", "build", "{IN}", "-o", "{OUT}", "--setting", "cg-low", "--test-domain", "sketch",
                      "--n-held-out", "1"], ".parquet", ("missing", "empty", "garbage", "truncated", "wrong_columns"),
        ("--overlap", "2")),
    Cmd("synth domains", ["synth", "domains", "-o", "{OUT}", "--per-cell", "2"], "", (), ("--per-cell", "1")),
    Cmd("mech report", ["mech", "report", "{IN}", "-o", "{OUT}", "--model", "clipcomp-micro"], ".parquet",
        ("missing", "empty", "garbage", "truncated", "wrong_columns"), ("--top", "1.5")),
    Cmd("embed", ["embed", "{IN}", "-o", "{OUT}", "--model", "clipcomp-micro"], ".csv",
        ("missing", "empty", "garbage", "non_utf8", "wrong_columns"), ("--shard-size", "0")),
    Cmd("similarity knn", ["similarity", "knn", "{IN}", "{IN}", "-o", "{OUT}"], "", DIR_KINDS, ("-k", "0"),
        dir_input=True),
    Cmd("similarity prune", ["similarity", "prune", "{IN}", "--test", "{IN}", "--reference", "{IN}", "-o", "{OUT}"],
        "", DIR_KINDS, dir_input=True),
    Cmd("similarity dedup", ["similarity", "dedup", "{IN}", "-o", "{OUT}"], "", DIR_KINDS, ("--clusters", "0"),
        dir_input=True),
    Cmd("similarity analyze", ["similarity", "analyze", "{IN}", "--test", "{STATS}", "--train", "{STATS}", "-o",
                               "{OUT}"], ".parquet", ("missing", "empty", "garbage", "truncated"), ("--bins", "0"),
        writes=False),
    Cmd("domains fit", ["domains", "fit", "{IN}", "--labels", "{IN}", "-o", "{OUT}"], "", DIR_KINDS,
        ("--target-precision", "2"), dir_input=True),
    Cmd("domains apply", ["domains", "apply", "{IN}", "{IN}", "-o", "{OUT}"], "", DIR_KINDS, dir_input=True),
    Cmd("models", ["models"], "", (), writes=False),
    Cmd("negatives generate", ["negatives", "generate", "{IN}", "-o", "{OUT}"], ".json",
        ("missing", "directory", "empty", "garbage", "truncated", "wrong_columns"), ("--per-caption", "0")),
    Cmd("negatives check", ["negatives", "check", "{IN}"], ".parquet",
        ("missing", "empty", "garbage", "truncated", "wrong_columns"), writes=False),
    Cmd("eval suite", ["eval", "suite", "sugarcrepe++", "{IN}", "--images", IMG, "-o", "{OUT}", "--cache-dir",
                       "none"], ".json", FILE_KINDS + ("wrong_columns",), ("--batch-size", "0")),
    Cmd("eval suites", ["eval", "suites", "{IN}", "-o", "{OUT}", "-q"], ".yaml",
        ("missing", "directory", "empty", "garbage", "non_utf8", "wrong_columns")),
    Cmd("slipform", ["slipform", "{IN}", "-o", "{OUT}", "-q"], ".yaml",
        ("missing", "directory", "empty", "garbage", "non_utf8", "wrong_columns")),
]

VALID_JSON_WRONG = {".json": '{"info": {}, "licenses": []}', ".yaml": "unknown_section: {a: 1}\n",
                    ".csv": "foo,bar\n1,2\n", ".parquet": None}


def _make(kind: str, cmd: Cmd, tmp: Path) -> Path | None:
    """The bad input of class `kind` for `cmd`, or None when the class does not apply."""
    path = tmp / f"bad{cmd.ext or '_dir'}"
    if kind == "missing":
        return tmp / f"nope{cmd.ext}"
    if cmd.dir_input:
        if kind == "file":
            path = tmp / "a_file.txt"
            path.write_text("not a directory\n")
            return path
        if kind == "empty_dir":
            path.mkdir()
            return path
        return None
    if kind == "directory":
        path.mkdir()
        return path
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "garbage":
        path.write_bytes(bytes(range(256)) * 8)
    elif kind == "truncated":
        if cmd.ext == ".parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            pq.write_table(pa.table({"caption": ["a dog on a beach"] * 50}), tmp / "full.parquet")
            data = (tmp / "full.parquet").read_bytes()
        else:
            data = (SAMPLE / "captions_val2017.json").read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif kind == "non_utf8":
        path.write_bytes(b"caption\n\xff\xfe a dog \x80\x81 on grass\n")
    elif kind == "wrong_columns":
        if cmd.ext == ".parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            pq.write_table(pa.table({"foo": [1, 2, 3], "bar": [4, 5, 6]}), path)
        else:
            path.write_text(VALID_JSON_WRONG[cmd.ext])
    else:
        return None
    return path


@pytest.fixture(scope="module")
def stats_dir(tmp_path_factory, cc3m_path):
    from clipcomp.cooccur import BuildOptions, build_stats

    out = tmp_path_factory.mktemp("stats") / "s"
    build_stats([cc3m_path], str(out), BuildOptions(min_count=5))
    return out


def _fill(argv: list[str], inp: str, out: str, stats: Path) -> list[str]:
    return [a.replace("{IN}", inp).replace("{OUT}", out).replace("{STATS}", str(stats)) for a in argv]


def _check_one_line(err: str, must_name: str | None = None) -> str:
    assert "Traceback" not in err, err
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, err
    if must_name is not None:
        assert must_name in lines[0], (must_name, lines[0])
    return lines[0]


CASES = [(c, k) for c in COMMANDS for k in c.kinds]


@pytest.mark.parametrize(("cmd", "kind"), CASES, ids=[f"{c.name}-{k}" for c, k in CASES])
def test_bad_input(cmd: Cmd, kind: str, tmp_path, capsys, stats_dir, monkeypatch):
    monkeypatch.chdir(tmp_path)
    bad = _make(kind, cmd, tmp_path)
    assert bad is not None
    code, _, err = run_cli(_fill(cmd.argv, str(bad), str(tmp_path / "out"), stats_dir), capsys)
    assert code == 2, err
    line = _check_one_line(err)
    assert bad.name in line, line


NUMERIC = [c for c in COMMANDS if c.numeric]


@pytest.mark.parametrize("cmd", NUMERIC, ids=[c.name for c in NUMERIC])
def test_out_of_range_number_is_a_usage_error(cmd: Cmd, tmp_path, capsys, stats_dir, monkeypatch):
    monkeypatch.chdir(tmp_path)
    valid = {"stats build": str(SAMPLE / "captions_val2017.json"), "stats build csv": str(SAMPLE / "labels.csv")}
    inp = valid.get(cmd.name, str(stats_dir) if cmd.dir_input else str(SAMPLE / "captions_val2017.json"))
    code, _, err = run_cli(_fill(cmd.argv, inp, str(tmp_path / "out"), stats_dir) + list(cmd.numeric), capsys)
    assert code == 2, err
    assert "Traceback" not in err and cmd.numeric[0] in err, err
    assert not (tmp_path / "out").exists()  # refused before anything is written


WRITERS = [c for c in COMMANDS if c.writes]


@pytest.mark.parametrize("cmd", WRITERS, ids=[c.name for c in WRITERS])
def test_output_that_is_a_file_is_refused_and_kept(cmd: Cmd, tmp_path, capsys, stats_dir, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "precious.txt"
    out.write_text("keep me\n")
    coco = str(SAMPLE / "captions_val2017.json")
    inputs = {"stats build": coco, "stats build csv": coco, "eval zeroshot": str(SAMPLE / "labels.csv"),
              "eval retrieval": coco, "eval select": SC, "train": coco, "train json": coco,
              "bench paste": str(SAMPLE / "instances_val2017.json")}
    if cmd.name in ("analyze pmi", "analyze pmi tail"):
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.table({"caption": ["a dog on a beach", "a cat on a sofa", "a dog and a cat"] * 3,
                                 "correct": [True, False, True] * 3}), tmp_path / "r.parquet")
        inputs[cmd.name] = str(tmp_path / "r.parquet")
    if cmd.name == "analyze vqa":
        (tmp_path / "q.jsonl").write_text("".join(json.dumps({"question": "is the dog on the beach?", "answer": "yes",
                                                              "prediction": "yes"}) + "\n" for _ in range(5)))
        inputs[cmd.name] = str(tmp_path / "q.jsonl")
    if cmd.name == "synth generate":
        (tmp_path / "c.yaml").write_text("dataset: {n_train: 4, n_test: 1}\n")
        inputs[cmd.name] = str(tmp_path / "c.yaml")
    if cmd.name in ("mix build", "mech report"):
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.table({"image": ["a.png"] * 8, "caption": ["x"] * 8, "class": ["a", "b", "c", "d"] * 2,
                                 "domain": ["real"] * 4 + ["sketch"] * 4}), tmp_path / "m.parquet")
        inputs[cmd.name] = str(tmp_path / "m.parquet")
    if cmd.name == "negatives generate":
        inputs[cmd.name] = coco
    if cmd.name == "eval suite":
        item = {"filename": "000000000139.jpg", "caption": "a room", "caption2": "a living room",
                "negative_caption": "a cat"}
        (tmp_path / "scpp.json").write_text(json.dumps({"0": item}))
        inputs[cmd.name] = str(tmp_path / "scpp.json")
    if cmd.name in ("eval suites", "slipform"):
        (tmp_path / "s.yaml").write_text(f"data: {coco}\nimages: {IMG}\nmodels: [{{model: clipcomp-micro}}]\n"
                                         f"suites: [{{suite: coco-order, path: {coco}}}]\n")
        inputs[cmd.name] = str(tmp_path / "s.yaml")
    if cmd.name == "eval binding":
        pytest.skip("needs a synthetic dataset; covered by the synth generate and train rows")
    inp = inputs.get(cmd.name, str(stats_dir))
    argv = _fill(cmd.argv, inp, str(out), stats_dir)
    code, _, err = run_cli(argv, capsys)
    assert code == 2, err
    _check_one_line(err, "precious.txt")
    assert out.read_text() == "keep me\n"


def test_eval_refuses_to_overwrite_another_runs_results(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("CLIPCOMP_CACHE", str(tmp_path / "cache"))
    code, _, err = run_cli(["eval", "retrieval", str(SAMPLE / "captions_val2017.json"), "--images", IMG, "-o",
                            str(tmp_path / "run"), "--loader-workers", "0", "-q"], capsys)
    assert code == 0, err
    before = (tmp_path / "run" / "summary.json").read_text()
    code, _, err = run_cli(["eval", "zeroshot", str(SAMPLE / "labels.csv"), "-o", str(tmp_path / "run"),
                            "--loader-workers", "0", "-q"], capsys)
    assert code == 2 and "eval retrieval" in _check_one_line(err, str(tmp_path / "run"))
    assert (tmp_path / "run" / "summary.json").read_text() == before
    code, _, err = run_cli(["eval", "zeroshot", str(SAMPLE / "labels.csv"), "-o", str(tmp_path / "run"),
                            "--loader-workers", "0", "-q", "--force"], capsys)
    assert code == 0 and json.loads((tmp_path / "run" / "summary.json").read_text())["task"] == \
        "zeroshot_classification"


def test_usage_errors_exit_2_with_usage_text(capsys):
    for argv in (["stats", "top", "--bogus", "x"], ["stats", "topp"], ["stats", "top"], ["nosuchcommand"]):
        code, _, err = run_cli(argv, capsys)
        assert code == 2 and "Usage:" in err and "CLIPCOMP_DEBUG" not in err and "Traceback" not in err, err


@pytest.mark.parametrize("cmd", [c for c in COMMANDS if c.name in ("stats build", "eval zeroshot", "train",
                                                                   "quickstart", "analyze pmi", "bench paste",
                                                                   "negatives generate", "eval suite")],
                         ids=lambda c: c.name)
def test_interrupt_inside_a_command_exits_130_and_says_what_was_kept(cmd, tmp_path, capsys, monkeypatch, stats_dir):
    """KeyboardInterrupt raised inside the command's own work (the first output directory it prepares)."""
    import clipcomp.cooccur.build as build
    import clipcomp.io as cio

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(cio, "prepare_output", interrupted)
    monkeypatch.setattr(build, "build_stats", interrupted, raising=False)
    import clipcomp.cooccur as cooccur

    monkeypatch.setattr(cooccur, "build_stats", interrupted)
    inputs = {"stats build": str(SAMPLE / "captions_val2017.json"), "eval zeroshot": str(SAMPLE / "labels.csv"),
              "train": str(SAMPLE / "captions_val2017.json"), "analyze pmi": str(tmp_path / "r.parquet"),
              "bench paste": str(SAMPLE / "instances_val2017.json"), "quickstart": "",
              "negatives generate": str(SAMPLE / "captions_val2017.json"), "eval suite": str(tmp_path / "s.json")}
    (tmp_path / "s.json").write_text(json.dumps({"0": {"filename": "000000000139.jpg", "caption": "a room",
                                                       "caption2": "a living room", "negative_caption": "a cat"}}))
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"caption": ["a dog on a beach"] * 3, "correct": [True, False, True]}),
                   tmp_path / "r.parquet")
    argv = _fill(cmd.argv, inputs[cmd.name], str(tmp_path / "out"), stats_dir)
    if cmd.name == "train":
        argv += ["--images", IMG]
    code, _, err = run_cli(argv, capsys)
    assert code == 130, err
    assert "interrupted" in _check_one_line(err) and "rerun" in err


def _children(pid: int) -> list[int]:
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                fields = (d / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                out.append(int(d.name))
    return out


def _alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.fixture(scope="module")
def big_corpus(tmp_path_factory, cc3m_lines):
    path = tmp_path_factory.mktemp("big") / "captions.txt"
    with open(path, "w", encoding="utf-8") as f:
        for i in range(60):
            f.write("\n".join(f"{c} {i}" for c in cc3m_lines) + "\n")
    return path


def _start(args: list[str], cwd: Path):
    import os
    import subprocess
    import sys

    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "clipcomp.cli", *args], cwd=cwd, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)


def _wait_for(cond, timeout: float = 60.0) -> bool:
    import time

    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.05)
    return False


@pytest.mark.slow
def test_ctrl_c_on_a_parallel_build_exits_130_and_leaves_no_worker(tmp_path, big_corpus):
    """Ctrl-C reaches the whole process group, as in a terminal: exit 130, one line, workers gone, resumable."""
    import os
    import signal

    proc = _start(["stats", "build", str(big_corpus), "-o", str(tmp_path / "o"), "--workers", "2", "-q"], tmp_path)
    assert _wait_for(lambda: len(_children(proc.pid)) >= 1 and (tmp_path / "o" / "_work").exists())
    kids = _children(proc.pid)
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted (Ctrl-C)" in err and "Traceback" not in err and "rerun" in err
    assert _wait_for(lambda: not any(_alive(k) for k in kids), 10)
    proc = _start(["stats", "build", str(big_corpus), "-o", str(tmp_path / "o"), "--workers", "2", "-q"], tmp_path)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert json.loads((tmp_path / "o" / "meta.json").read_text())["n_captions"] == 60 * 15_833


@pytest.mark.slow
def test_sigkilled_build_leaves_no_process_behind(tmp_path, big_corpus):
    import os
    import signal

    proc = _start(["stats", "build", str(big_corpus), "-o", str(tmp_path / "o"), "--workers", "2", "-q"], tmp_path)
    assert _wait_for(lambda: len(_children(proc.pid)) >= 1)
    kids = _children(proc.pid)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)
    assert _wait_for(lambda: not any(_alive(k) for k in kids), 5), [k for k in kids if _alive(k)]


@pytest.mark.slow
def test_sigterm_during_training_exits_143_and_keeps_the_checkpoint(tmp_path):
    import os
    import signal

    out = tmp_path / "t"
    proc = _start(["train", "--data", str(SAMPLE / "captions_val2017.json"), "--images", IMG, "-o", str(out),
                   "--model", "clipcomp-micro", "--steps", "100000", "--batch-size", "8", "--checkpoint-every", "5",
                   "--workers", "0", "-q"], tmp_path)
    assert _wait_for(lambda: (out / "checkpoint.pt").exists(), 120)
    os.kill(proc.pid, signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert "interrupted (SIGTERM)" in err and str(out) in err and "Traceback" not in err
    assert json.loads((out / "run.json").read_text())["status"] == "interrupted"


def test_non_utf8_command_argument_is_one_line(capsys, stats_dir):
    bad = b"a dog \xff".decode("utf-8", "surrogateescape")  # what Python makes of such a command-line argument
    code, _, err = run_cli(["stats", "score", str(stats_dir), bad], capsys)
    assert code == 2 and "not valid UTF-8" in _check_one_line(err)


def test_quickstart_refuses_another_commands_output(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("CLIPCOMP_CACHE", str(tmp_path / "cache"))
    code, _, err = run_cli(["eval", "zeroshot", str(SAMPLE / "labels.csv"), "-o", str(tmp_path / "zs"),
                            "--loader-workers", "0", "-q"], capsys)
    assert code == 0, err
    before = (tmp_path / "zs" / "summary.json").read_text()
    code, _, err = run_cli(["quickstart", "-o", str(tmp_path / "zs"), "-q"], capsys)
    assert code == 2 and "eval zeroshot" in _check_one_line(err)
    assert (tmp_path / "zs" / "summary.json").read_text() == before


def _arrow_error():
    import pyarrow as pa

    return pa.lib.ArrowInvalid("Parquet magic bytes not found in footer")


def _faiss_error():
    return RuntimeError("Error in void faiss::Clustering::train(...) at /project/faiss/Clustering.cpp:281: Error: "
                        "'n >= k' failed: Number of training points should be at least as large as number of "
                        "clusters")


def _pil_error():
    from PIL import UnidentifiedImageError

    return UnidentifiedImageError("cannot identify image file x.jpg")


@pytest.mark.parametrize("make, dep", [(_arrow_error, "Arrow"), (_faiss_error, "faiss"), (_pil_error, "PIL")])
def test_dependency_errors_are_one_line_exit_2(tmp_path, capsys, monkeypatch, make, dep):
    """An exception a library raises on bad input (Arrow, faiss's C++ text, PIL, ...) reaches the user as one line
    naming the input and the library, exit 2 — not a class name with exit 1."""
    import clipcomp.similarity.prune as prune_mod

    def boom(*a, **k):
        raise make()

    monkeypatch.setattr(prune_mod, "dedup", boom)
    (tmp_path / "emb").mkdir()
    code, _, err = run_cli(["similarity", "dedup", str(tmp_path / "emb"), "-o", str(tmp_path / "o")], capsys)
    line = _check_one_line(err, str(tmp_path / "emb"))
    assert code == 2 and f"{dep} could not read the input" in line and "CLIPCOMP_DEBUG" not in line
    assert "Clustering.cpp" not in line
