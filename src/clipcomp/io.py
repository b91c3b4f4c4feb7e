"""Small I/O helpers every stage shares: atomic writes, table/JSON reading with one-line errors, hashing, and
the one reuse rule for output directories (a fingerprint of inputs and settings).

The reuse rule: a stage that writes an output directory records `OUT/.clipcomp/fingerprint.json` = {kind,
fingerprint, settings}. A later run with the same kind and fingerprint reuses (or resumes) what is there; a
different one stops with one line naming what differs, unless `force=True`, which clears the directory first.
The record lives in a sub-folder so that tools reading every `*.json` of a run folder (CLIP_benchmark's
`build`) never see it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
from typing import Any

from clipcomp.errors import ClipcompError, file_sha256

__all__ = ["atomic_output", "atomic_write_json", "write_parquet", "new_figure", "save_figure", "atomic_write_text",
           "check_input_file", "file_sha256", "fingerprint", "prepare_output", "read_json", "read_table",
           "read_text", "OutputState"]

CURRENT_OUTPUTS: list[str] = []  # output directories prepared by this process (the CLI names them on Ctrl-C)
RECORD_DIR = ".clipcomp"
RECORD = "fingerprint.json"


def cache_root() -> str:
    """Where derived files that outlive a run are kept: $CLIPCOMP_DATA_CACHE or ~/.cache/clipcomp."""
    return os.environ.get("CLIPCOMP_DATA_CACHE", os.path.join(os.path.expanduser("~"), ".cache", "clipcomp"))


def package_version() -> str:
    """clipcomp's installed version ("0.0.0+src" when run from a source tree without installation)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("clipcomp")
    except PackageNotFoundError:
        return "0.0.0+src"


@contextlib.contextmanager
def atomic_output(path: str):
    """Write a file atomically: yields a temporary path beside `path` (same extension, so writers that look at
    it — NumPy, PIL, matplotlib — pick the right format); on success it replaces `path` in one rename, on any
    error the temporary file is removed and `path` is untouched. A reader never sees half a file::

        with atomic_output(out / "items.parquet") as tmp:
            pq.write_table(table, tmp)
    """
    path = os.fspath(path)
    root, ext = os.path.splitext(path)
    tmp = f"{root}.tmp{os.getpid()}{ext}"
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise


def write_parquet(table, path: str, **options) -> str:
    """pyarrow.parquet.write_table, atomically (a reader never sees half a file)."""
    import pyarrow.parquet as pq

    with atomic_output(path) as tmp:
        pq.write_table(table, tmp, **options)
    return path


def new_figure(nrows: int = 1, ncols: int = 1, **subplots):
    """(figure, axes) from matplotlib's file-only backend — the one figure set-up every plot uses."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(nrows, ncols, **subplots)


def save_figure(fig, path: str, **savefig) -> str:
    """Write a figure atomically (its format from the suffix) and free it."""
    import matplotlib.pyplot as plt

    try:
        with atomic_output(path) as tmp:
            fig.savefig(tmp, **savefig)
    finally:
        plt.close(fig)
    return path


def atomic_write_text(path: str, text: str) -> None:
    """Write via a temporary file and rename, so a reader never sees half a file."""
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def atomic_write_json(path: str, obj: Any, indent: int | None = 2) -> None:
    atomic_write_text(path, json.dumps(obj, indent=indent, default=_json_default) + "\n")


def _json_default(v):
    import numpy as np

    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.floating):
        return float(v)
    if isinstance(v, np.ndarray):
        return v.tolist()
    return str(v)


def check_input_file(path: str, what: str = "file") -> str:
    """A readable regular file, or a one-line error saying what is wrong with `path`."""
    if not os.path.exists(path):
        raise ClipcompError(f"{path}: {what} not found")
    if os.path.isdir(path):
        raise ClipcompError(f"{path}: is a directory, expected a {what}")
    if not os.access(path, os.R_OK):
        raise ClipcompError(f"{path}: not readable (permission denied)")
    return path


def read_text(path: str, what: str = "text file") -> str:
    """A whole UTF-8 text file, with one-line errors for missing, directory and wrongly encoded files."""
    check_input_file(path, what)
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except UnicodeDecodeError as exc:
        raise ClipcompError(f"{path}: not UTF-8 text (byte {exc.start}); expected a {what}") from None


def read_json(path: str, what: str = "JSON file"):
    """A whole JSON file, with one-line errors for missing, directory, wrongly encoded or invalid files."""
    check_input_file(path, what)
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except UnicodeDecodeError as exc:
        raise ClipcompError(f"{path}: not UTF-8 text (byte {exc.start}); expected a {what}") from None
    except ValueError as exc:
        raise ClipcompError(f"{path}: not valid JSON ({str(exc).splitlines()[0]})") from None


def read_table(path: str):
    """A table as Arrow: Parquet, CSV, TSV or JSON Lines by extension, with one-line errors."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    check_input_file(path, "table")
    low = path.lower()
    try:
        if low.endswith((".parquet", ".pq")):
            return pq.read_table(path)
        if low.endswith(".csv"):
            return pacsv.read_csv(path)
        if low.endswith(".tsv"):
            return pacsv.read_csv(path, parse_options=pacsv.ParseOptions(delimiter="\t"))
        if low.endswith((".jsonl", ".ndjson")):
            import pyarrow.json as pajson

            return pajson.read_json(path)
    except (pa.ArrowInvalid, OSError, UnicodeDecodeError) as exc:
        raise ClipcompError(f"{path}: unreadable ({str(exc).splitlines()[0]})") from None
    raise ClipcompError(f"{path}: unknown table type (expected .parquet, .csv, .tsv or .jsonl)")


def check_output_path(out: str) -> str:
    """Fail before any work when the output path is an existing file (the output is a directory)."""
    if os.path.exists(out) and not os.path.isdir(out):
        raise ClipcompError(f"{out}: exists and is a file, not an output directory (choose another -o)")
    return out


def _paths_in(value) -> list[str]:
    """Every string in a settings value (nested dicts/lists) that names an existing file or directory."""
    if isinstance(value, str):
        return [value] if value and os.path.exists(value) else []
    if isinstance(value, dict):
        return [p for v in value.values() for p in _paths_in(v)]
    if isinstance(value, (list, tuple)):
        return [p for v in value for p in _paths_in(v)]
    return []


def guard_output(out: str, inputs, option: str = "-o") -> None:
    """Refuse, before any work, an output that is an input, contains one, or lies inside an input directory
    (real paths, symlinks resolved) — so no --force can delete or overwrite what a command reads."""
    o = os.path.realpath(out)
    for p in inputs:
        if not p or not os.path.exists(p):
            continue
        r = os.path.realpath(p)
        if o == r:
            raise ClipcompError(f"{option} {out}: is the input {p}; choose another output")
        if r.startswith(o.rstrip(os.sep) + os.sep):
            raise ClipcompError(f"{option} {out}: contains the input {p}; writing there could replace it — choose "
                                "another output")
        if os.path.isdir(r) and o.startswith(r.rstrip(os.sep) + os.sep):
            raise ClipcompError(f"{option} {out}: lies inside the input directory {p}; choose an output outside it")


def fingerprint(settings: dict) -> str:
    """A short stable hash of JSON-able settings (input identities belong in them)."""
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:16]


class OutputState:
    """What `prepare_output` found: `fresh` (nothing of ours there) or `reuse` (same kind and fingerprint)."""

    def __init__(self, path: str, fresh: bool) -> None:
        self.path, self.fresh = path, fresh

    @property
    def reuse(self) -> bool:
        return not self.fresh


def _differences(old: dict, new: dict, prefix: str = "") -> list[str]:
    keys = sorted(set(old) | set(new))
    out = []
    for k in keys:
        a, b = old.get(k), new.get(k)
        if isinstance(a, dict) and isinstance(b, dict):
            out += _differences(a, b, f"{prefix}{k}.")
        elif a != b:
            out.append(f"{prefix}{k}")
    return out


def prepare_output(out: str, kind: str, settings: dict, force: bool = False,
                   markers: tuple[str, ...] = (), inputs: list[str] | None = None) -> OutputState:
    """Apply the reuse rule to output directory `out` and record the fingerprint; returns what was found.
    Inputs (default: every existing path named in `settings`) are guarded: see `guard_output`.

    `markers` are files that show a directory already holds results of a stage that predates fingerprints
    (or another tool's): such a directory is refused too, never silently overwritten.
    """
    if os.path.exists(out) and not os.path.isdir(out):
        raise ClipcompError(f"{out}: exists and is a file, not an output directory (choose another -o)")
    guard_output(out, _paths_in(settings) if inputs is None else inputs)
    rec_path = os.path.join(out, RECORD_DIR, RECORD)
    CURRENT_OUTPUTS.append(out)
    fp = fingerprint(settings)
    new = {"kind": kind, "fingerprint": fp, "settings": settings}
    if os.path.exists(rec_path):
        try:
            with open(rec_path, encoding="utf-8") as f:
                old = json.load(f)
        except (ValueError, UnicodeDecodeError):
            old = {}
        same = old.get("kind") == kind and old.get("fingerprint") == fp
        if same:
            return OutputState(out, fresh=False)
        if not force:
            if old.get("kind") != kind:
                raise ClipcompError(f"{out}: holds the output of `{old.get('kind', 'another command')}`, not of "
                                    f"`{kind}`; use another -o, or --force to replace it")
            diff = _differences(old.get("settings", {}), settings)
            raise ClipcompError(f"{out}: holds a `{kind}` run with other settings (differs in: "
                                f"{', '.join(diff[:8]) or 'inputs'}); use another -o, or --force to replace it")
        _clear(out)
    elif os.path.isdir(out) and any(os.path.exists(os.path.join(out, m)) for m in markers):
        if not force:
            found = next(m for m in markers if os.path.exists(os.path.join(out, m)))
            raise ClipcompError(f"{out}: already holds results ({found}) from an unrecorded run; use another -o, "
                                "or --force to replace them")
        _clear(out)
    try:
        os.makedirs(os.path.join(out, RECORD_DIR), exist_ok=True)
    except OSError as exc:
        raise ClipcompError(f"{out}: cannot create the output directory ({exc.strerror})") from None
    atomic_write_json(rec_path, new)
    return OutputState(out, fresh=True)


def recorded_kind(out: str) -> str | None:
    """The kind of output recorded in `out` (None when nothing is recorded)."""
    try:
        with open(os.path.join(out, RECORD_DIR, RECORD), encoding="utf-8") as f:
            return json.load(f).get("kind")
    except (OSError, ValueError, UnicodeDecodeError):
        return None


def record_output(out: str, kind: str, settings: dict) -> None:
    """Write the record for a stage that checks its own reuse (the statistics engine's resumable work folder)."""
    os.makedirs(os.path.join(out, RECORD_DIR), exist_ok=True)
    CURRENT_OUTPUTS.append(out)
    atomic_write_json(os.path.join(out, RECORD_DIR, RECORD),
                      {"kind": kind, "fingerprint": fingerprint(settings), "settings": settings})


def _clear(out: str) -> None:
    for name in os.listdir(out):
        p = os.path.join(out, name)
        if os.path.isdir(p) and not os.path.islink(p):
            shutil.rmtree(p)
        else:
            os.remove(p)
