"""Caption sources: find shards, cut them into parallel tasks, and stream one text column as Arrow arrays.

A corpus is one or more files (or directories / glob patterns of them) in Parquet, JSON Lines, CSV, TSV,
plain text (one caption per line) or COCO captions JSON. Nothing here loads a whole corpus: Parquet is read
row group by row group, and large text files are split into byte ranges aligned on line starts (a line
belongs to the range in which it starts), so a single big file is as parallel as many small ones.
"""

from __future__ import annotations

import glob
import gzip
import io
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.json as pajson
import pyarrow.parquet as pq

from clipcomp import remote
from clipcomp.errors import ClipcompError

FORMATS = ("parquet", "jsonl", "csv", "tsv", "text", "coco")
_EXTENSIONS = {
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",  # JSON Lines or COCO captions JSON, decided by content
    ".csv": "csv",
    ".tsv": "tsv",
    ".txt": "text",
}
# Column names tried, in order and case-insensitively, when --text-column is not given.
KNOWN_TEXT_COLUMNS = ("caption", "text", "captions", "sentence", "alt_text", "alt", "title", "raw")

BATCH_ROWS = 65_536
MAX_SLICES = 4  # row slices a single Parquet row group may be cut into
MIN_GROUPS = 4  # files with fewer row groups than this are cut into row slices (else: groups of row groups)


@dataclass(frozen=True)
class Task:
    """One unit of parallel work: a byte range of a text file, some row groups of a Parquet file, or a file."""

    tid: int
    path: str
    fmt: str
    column: str | int | None = None
    start: int = 0
    end: int = -1
    row_groups: tuple[int, ...] = ()
    header: bool = False
    column_names: tuple[str, ...] = ()
    compressed: bool = False

    @property
    def label(self) -> str:
        if self.fmt == "parquet" and self.row_groups and self.end >= 0:
            return f"{self.path} (row group {self.row_groups[0]}, rows {self.start}-{self.end})"
        if self.fmt == "parquet" and self.row_groups:
            return f"{self.path} (row groups {self.row_groups[0]}-{self.row_groups[-1]})"
        if self.end >= 0:
            return f"{self.path} (bytes {self.start}-{self.end})"
        return self.path


@dataclass
class ReadTally:
    """What a reader saw besides captions: kept per task and summed into meta.json."""

    n_rows: int = 0
    n_null: int = 0
    n_empty: int = 0
    n_invalid_utf8: int = 0

    def add(self, other: ReadTally) -> None:
        self.n_rows += other.n_rows
        self.n_null += other.n_null
        self.n_empty += other.n_empty
        self.n_invalid_utf8 += other.n_invalid_utf8

    def as_dict(self) -> dict[str, int]:
        return {
            "n_rows": self.n_rows,
            "n_null": self.n_null,
            "n_empty": self.n_empty,
            "n_invalid_utf8": self.n_invalid_utf8,
        }


@dataclass
class CorpusPlan:
    tasks: list[Task]
    files: list[dict] = field(default_factory=list)
    skipped: list[dict] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------- discovery


def expand_inputs(inputs: list[str], input_format: str = "auto") -> list[str]:
    """Turn files, directories and glob patterns into a sorted, de-duplicated list of files."""
    files: list[str] = []
    for spec in inputs:
        if remote.is_remote(spec):
            files.extend(remote.expand(spec))
        elif os.path.isdir(spec):
            found = []
            for root, dirs, names in os.walk(spec):
                dirs[:] = sorted(d for d in dirs if not d.startswith((".", "_")))
                for name in sorted(names):
                    if name.startswith((".", "_")):
                        continue
                    path = os.path.join(root, name)
                    if input_format != "auto" or _detect_by_extension(path) is not None:
                        found.append(path)
            if not found:
                raise ClipcompError(f"{spec}: directory holds no caption files (.parquet, .jsonl, .csv, ...)")
            files.extend(found)
        elif any(ch in spec for ch in "*?["):
            matched = sorted(p for p in glob.glob(spec, recursive=True) if os.path.isfile(p))
            if not matched:
                raise ClipcompError(f"{spec}: no files match this pattern")
            files.extend(matched)
        elif os.path.isfile(spec):
            files.append(spec)
        else:
            raise ClipcompError(f"{spec}: input not found")
    seen: set[str] = set()
    unique = []
    for f in files:
        key = f if remote.is_remote(f) else os.path.abspath(f)
        if key not in seen:
            seen.add(key)
            unique.append(f)
    return unique


def _detect_by_extension(path: str) -> str | None:
    name = path.lower().split("?", 1)[0] if remote.is_remote(path) else path.lower()
    if name.endswith(".gz"):
        name = name[:-3]
    return _EXTENSIONS.get(os.path.splitext(name)[1])


def detect_format(path: str, input_format: str = "auto") -> str:
    if input_format != "auto":
        if input_format not in FORMATS:
            raise ClipcompError(f"unknown --input-format {input_format!r} (expected one of {', '.join(FORMATS)})")
        return input_format
    fmt = _detect_by_extension(path)
    if fmt is None:
        raise ClipcompError(
            f"{path}: unknown file type (expected .parquet, .jsonl, .json, .csv, .tsv or .txt; "
            "or pass --input-format)"
        )
    if fmt == "json":
        fmt = _sniff_json(path)
    return fmt


def _open_raw(path: str):
    return remote.open_remote(path) if remote.is_remote(path) else open(path, "rb")  # noqa: SIM115


def _open_bytes(path: str) -> io.BufferedIOBase:
    if path.lower().endswith(".gz"):
        return gzip.open(_open_raw(path), "rb")  # type: ignore[return-value]
    return _open_raw(path)


def parquet_file(path: str) -> pq.ParquetFile:
    """A ParquetFile over a local path or a remote URL (the URL's file is read by range requests)."""
    return pq.ParquetFile(remote.open_remote(path) if remote.is_remote(path) else path)


def file_info(path: str) -> dict:
    """Size and version of an input (mtime locally; ETag or the store's version token remotely)."""
    if remote.is_remote(path):
        got = remote.info(path)
        return {"path": path, "bytes": got["size"], "version": got["version"]}
    stat = os.stat(path)
    return {"path": os.path.abspath(path), "bytes": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def _sniff_json(path: str) -> str:
    """A .json file is JSON Lines when its first line is a whole JSON object, else COCO captions JSON."""
    with _open_bytes(path) as f:
        head = f.read(1 << 20)
    first = head.split(b"\n", 1)[0].strip()
    if not first:
        return "jsonl"
    try:
        obj = json.loads(first)
    except ValueError:
        return "coco"
    if isinstance(obj, dict) and "annotations" in obj and "images" in obj:
        return "coco"
    return "jsonl"


# -------------------------------------------------------------------------------------------- planning


def plan_tasks(
    inputs: list[str],
    text_column: str | None = None,
    input_format: str = "auto",
    header: bool | None = None,
    target_bytes: int = 32 << 20,
    target_rows: int = 500_000,
    skip_bad: bool = False,
) -> CorpusPlan:
    """Resolve inputs into tasks; with skip_bad, files that cannot be opened are recorded instead of fatal."""
    plan = CorpusPlan(tasks=[])
    for path in expand_inputs(inputs, input_format):
        try:
            fmt = detect_format(path, input_format)
            file_tasks = _plan_file(path, fmt, text_column, header, target_bytes, target_rows)
        except ClipcompError as exc:
            if not skip_bad:
                raise
            plan.skipped.append({"file": path, "reason": str(exc)})
            continue
        info = file_info(path)
        info["format"] = fmt
        if fmt == "parquet":
            info["rows"] = parquet_file(path).metadata.num_rows
        plan.files.append(info)
        for t in file_tasks:
            plan.tasks.append(_with_tid(t, len(plan.tasks)))
    return plan


def _with_tid(task: Task, tid: int) -> Task:
    return Task(tid, task.path, task.fmt, task.column, task.start, task.end, task.row_groups, task.header,
                task.column_names, task.compressed)


def _parse_column(text_column: str | None) -> str | int | None:
    if text_column is None:
        return None
    return int(text_column) if text_column.strip().isdigit() else text_column


def _pick_column(names: list[str], text_column: str | int | None, path: str, what: str) -> str | int:
    if isinstance(text_column, int):
        if text_column >= len(names):
            raise ClipcompError(f"{path}: column index {text_column} out of range ({len(names)} {what})")
        return names[text_column]
    if text_column is not None:
        if text_column not in names:
            raise ClipcompError(f"{path}: no column {text_column!r} (columns: {', '.join(names) or 'none'})")
        return text_column
    lower = {n.lower(): n for n in names}
    for cand in KNOWN_TEXT_COLUMNS:
        if cand in lower:
            return lower[cand]
    raise ClipcompError(
        f"{path}: no text column found (columns: {', '.join(names) or 'none'}); pass --text-column"
    )


def _plan_file(path, fmt, text_column, header, target_bytes, target_rows) -> list[Task]:
    col = _parse_column(text_column)
    compressed = path.lower().endswith(".gz")
    if fmt == "parquet":
        return _plan_parquet(path, col, target_rows)
    if fmt == "coco":
        return [Task(0, path, fmt, compressed=compressed)]
    if fmt in ("csv", "tsv"):
        first = _first_line(path)
        delim = "\t" if fmt == "tsv" else ","
        fields = _split_header(first, delim, fmt)
        if header is None:
            if isinstance(col, str):
                header = col in fields
            elif col is None:
                header = any(f.lower() in KNOWN_TEXT_COLUMNS for f in fields)
                if not header and len(fields) > 1 and all(_HEADER_NAME.match(f.strip()) for f in fields):
                    # a first row of bare names (`path,label`) is a header without a text column: never count it
                    # as a caption nor guess a column; data rows (captions with spaces, URLs) fall through
                    raise ClipcompError(
                        f"{path}: no text column (first row: {', '.join(fields)[:200]}); name it with "
                        "--text-column NAME, or give --no-header --text-column INDEX for a file without a header")
            else:
                header = False
        if header:
            names = fields
            column = _pick_column(names, col, path, "columns in header")
        else:
            names = [f"f{i}" for i in range(len(fields))]
            if isinstance(col, str):
                raise ClipcompError(f"{path}: no header row holds column {col!r} (first row: {first[:80]!r})")
            index = 0 if col is None else col
            if index >= len(names):
                raise ClipcompError(f"{path}: column index {index} out of range (first row has {len(names)})")
            column = names[index]
        return _byte_ranges(path, fmt, column, target_bytes, compressed, header=header, names=tuple(names))
    if fmt == "jsonl":
        column = col
        if not isinstance(col, str):
            first = _first_line(path)
            try:
                keys = list(json.loads(first).keys()) if first.strip() else []
            except (ValueError, AttributeError) as exc:
                raise ClipcompError(f"{path}: line 1 is not a JSON object ({exc})") from None
            column = _pick_column(keys, col, path, "fields")
        return _byte_ranges(path, fmt, column, target_bytes, compressed)
    if fmt == "text":
        return _byte_ranges(path, fmt, None, target_bytes, compressed)
    raise ClipcompError(f"{path}: unsupported format {fmt!r}")


_HEADER_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]{0,63}$")


def _split_header(line: str, delim: str, fmt: str) -> list[str]:
    if not line:
        return []
    if fmt == "tsv":
        return line.split(delim)
    table = pacsv.read_csv(io.BytesIO(line.encode() + b"\n"),
                           read_options=pacsv.ReadOptions(autogenerate_column_names=True),
                           parse_options=pacsv.ParseOptions(delimiter=delim))
    return [str(table.column(i)[0].as_py()) for i in range(table.num_columns)]


def _first_line(path: str) -> str:
    with _open_bytes(path) as f:
        line = f.readline(1 << 20)
    return line.decode("utf-8", errors="replace").rstrip("\r\n")


def _plan_parquet(path: str, col: str | int | None, target_rows: int) -> list[Task]:
    try:
        meta = parquet_file(path).metadata
    except (pa.ArrowInvalid, OSError) as exc:
        raise ClipcompError(f"{path}: not a readable Parquet file ({_first_sentence(exc)})") from None
    names = [meta.schema.column(i).name for i in range(meta.num_columns)]
    names = list(dict.fromkeys(n.split(".")[0] for n in names))
    column = _pick_column(names, col, path, "columns")
    arrow_schema = meta.schema.to_arrow_schema()
    col_type = arrow_schema.field(column).type
    if not (pa.types.is_string(col_type) or pa.types.is_large_string(col_type) or pa.types.is_binary(col_type)
            or pa.types.is_large_binary(col_type) or pa.types.is_string_view(col_type)):
        raise ClipcompError(f"{path}: column {column!r} is {col_type}, expected text")
    # Near-equal tasks: ceil(rows / target) groups of consecutive row groups, split at the row quantiles;
    # a file with fewer than MIN_GROUPS row groups has its row groups cut into row slices (≤ 4 per group: a
    # slice decodes its group up to its end, so slicing files that have row groups to share costs more).
    sizes = [meta.row_group(rg).num_rows for rg in range(meta.num_row_groups)]
    total = sum(sizes)
    wanted = max(1, -(-total // max(1, target_rows)))
    if wanted > len(sizes) and len(sizes) < MIN_GROUPS and total:
        tasks = []
        for rg, size in enumerate(sizes):
            k = max(1, min(MAX_SLICES, round(wanted * size / total), size))
            cuts = [size * i // k for i in range(k + 1)]
            for lo, hi in zip(cuts[:-1], cuts[1:], strict=True):
                if hi > lo:
                    tasks.append(Task(0, path, "parquet", column, start=lo, end=hi if k > 1 else -1,
                                      row_groups=(rg,)))
        return tasks
    n_tasks = max(1, min(len(sizes), wanted))
    groups: list[list[int]] = [[] for _ in range(n_tasks)]
    seen = 0
    for rg, size in enumerate(sizes):
        groups[min(n_tasks - 1, (seen + size // 2) * n_tasks // max(1, total))].append(rg)
        seen += size
    return [Task(0, path, "parquet", column, row_groups=tuple(g)) for g in groups if g] or \
        [Task(0, path, "parquet", column, row_groups=())]


def _byte_ranges(path, fmt, column, target_bytes, compressed, header=False, names=()) -> list[Task]:
    if compressed:
        return [Task(0, path, fmt, column, header=header, column_names=names, compressed=True)]
    size = remote.info(path)["size"] if remote.is_remote(path) else os.path.getsize(path)
    bounds = list(range(0, size, max(1, target_bytes))) + [size]
    if len(bounds) == 1:
        bounds = [0, size]
    return [
        Task(0, path, fmt, column, start=a, end=b, header=header, column_names=names)
        for a, b in zip(bounds[:-1], bounds[1:], strict=True)
    ]


def _first_sentence(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


# ---------------------------------------------------------------------------------------------- reading


def read_range(path: str, start: int, end: int) -> bytes:
    """The bytes of all lines that start in [start, end): the first partial line belongs to the range before."""
    with _open_raw(path) as f:
        if start > 0:
            f.seek(start - 1)
            if f.read(1) != b"\n":
                f.readline()  # skip the tail of a line owned by the previous range
        pos = f.tell()
        if pos >= end and start > 0:
            return b""
        data = f.read(max(0, end - pos))
        if data and not data.endswith(b"\n"):
            data += f.readline()
    return data


def _task_bytes(task: Task) -> bytes:
    if task.compressed:
        with _open_bytes(task.path) as f:
            return f.read()
    return read_range(task.path, task.start, task.end)


def iter_texts(task: Task, tally: ReadTally, batch_rows: int = BATCH_ROWS) -> Iterator[pa.Array]:
    """Stream the task's captions as Arrow string arrays (nulls kept), updating the tally as it goes."""
    try:
        if task.fmt == "parquet":
            yield from _iter_parquet(task, tally, batch_rows)
        elif task.fmt == "coco":
            yield from _iter_coco(task, tally, batch_rows)
        else:
            data = _task_bytes(task)
            if task.fmt == "text":
                yield from _iter_lines(data, tally, batch_rows)
            elif task.fmt in ("csv", "tsv"):
                yield from _iter_csv(task, data, tally, batch_rows)
            elif task.fmt == "jsonl":
                yield from _iter_jsonl(task, data, tally, batch_rows)
            else:
                raise ClipcompError(f"{task.path}: unsupported format {task.fmt!r}")
    except ClipcompError:
        raise
    except (pa.ArrowException, OSError, EOFError, ValueError) as exc:
        raise ClipcompError(f"{task.label}: unreadable ({_first_sentence(exc)})") from None


def _finish(arr: pa.Array, tally: ReadTally) -> pa.Array:
    """Normalize to a string array, replacing invalid UTF-8 and tallying nulls/empties."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks() if arr.num_chunks != 1 else arr.chunk(0)
    t = arr.type
    if pa.types.is_binary(t) or pa.types.is_large_binary(t):
        try:
            arr = arr.cast(pa.large_string() if pa.types.is_large_binary(t) else pa.string())
        except pa.ArrowInvalid:
            values = []
            for b in arr.to_pylist():
                if b is None:
                    values.append(None)
                    continue
                try:
                    values.append(b.decode("utf-8"))
                except UnicodeDecodeError:
                    tally.n_invalid_utf8 += 1
                    values.append(b.decode("utf-8", errors="replace"))
            arr = pa.array(values, type=pa.string())
    elif pa.types.is_string_view(t):
        arr = arr.cast(pa.string())
    tally.n_rows += len(arr)
    tally.n_null += arr.null_count
    if len(arr):
        tally.n_empty += int(pc.sum(pc.equal(pc.utf8_length(pc.utf8_trim_whitespace(arr)), 0)).as_py() or 0)
    return arr


def _iter_parquet(task: Task, tally: ReadTally, batch_rows: int) -> Iterator[pa.Array]:
    pf = parquet_file(task.path)
    if not task.row_groups:
        return
    sliced = task.end >= 0  # rows [start, end) of one row group
    pos = 0
    for batch in pf.iter_batches(batch_size=batch_rows, row_groups=list(task.row_groups),
                                 columns=[task.column]):
        col = batch.column(0)
        if sliced:
            lo, hi = max(task.start - pos, 0), min(task.end - pos, len(col))
            pos += len(col)
            if hi <= lo:
                if pos >= task.end:
                    break
                continue
            col = col.slice(lo, hi - lo)
        yield _finish(col, tally)
        if sliced and pos >= task.end:
            break


def _iter_coco(task: Task, tally: ReadTally, batch_rows: int) -> Iterator[pa.Array]:
    with _open_bytes(task.path) as f:
        try:
            obj = json.load(f)
        except ValueError as exc:
            raise ClipcompError(f"{task.path}: not valid JSON ({exc})") from None
    anns = obj.get("annotations") if isinstance(obj, dict) else None
    if not isinstance(anns, list) or (anns and not isinstance(anns[0], dict)):
        raise ClipcompError(f"{task.path}: expected COCO captions JSON with an 'annotations' list")
    caps = []
    for i, a in enumerate(anns):
        if "caption" not in a:
            raise ClipcompError(f"{task.path}: annotations[{i}] has no 'caption' (is this an instances file?)")
        caps.append(a["caption"])
    for i in range(0, len(caps), batch_rows):
        yield _finish(pa.array(caps[i:i + batch_rows], type=pa.string()), tally)


def _decode(data: bytes, tally: ReadTally) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        lines = data.split(b"\n")
        out = []
        for line in lines:
            try:
                out.append(line.decode("utf-8"))
            except UnicodeDecodeError:
                tally.n_invalid_utf8 += 1
                out.append(line.decode("utf-8", errors="replace"))
        return "\n".join(out)


def _iter_lines(data: bytes, tally: ReadTally, batch_rows: int) -> Iterator[pa.Array]:
    if not data:
        return
    text = _decode(data, tally)
    if text.endswith("\n"):
        text = text[:-1]
    lines = text.split("\n")
    for i in range(0, len(lines), batch_rows):
        chunk = lines[i:i + batch_rows]
        arr = pa.array(chunk, type=pa.string())
        arr = pc.utf8_rtrim(arr, characters="\r")
        yield _finish(arr, tally)


def _iter_csv(task: Task, data: bytes, tally: ReadTally, batch_rows: int) -> Iterator[pa.Array]:
    if task.header and task.start == 0:
        nl = data.find(b"\n")
        data = b"" if nl < 0 else data[nl + 1:]
    if not data.strip():
        return
    delim = "\t" if task.fmt == "tsv" else ","
    parse = pacsv.ParseOptions(delimiter=delim, quote_char=False if task.fmt == "tsv" else '"',
                               newlines_in_values=False, ignore_empty_lines=False)
    read = pacsv.ReadOptions(column_names=list(task.column_names), block_size=16 << 20)
    convert = pacsv.ConvertOptions(include_columns=[task.column], column_types={task.column: pa.binary()},
                                   strings_can_be_null=False, quoted_strings_can_be_null=False)
    try:
        reader = pacsv.open_csv(io.BytesIO(data), read_options=read, parse_options=parse,
                                convert_options=convert)
        for batch in reader:
            col = batch.column(0)
            for i in range(0, len(col), batch_rows):
                yield _finish(col.slice(i, batch_rows), tally)
    except pa.ArrowInvalid as exc:
        raise ClipcompError(f"{task.label}: bad {task.fmt.upper()} row ({_first_sentence(exc)})") from None


def _iter_jsonl(task: Task, data: bytes, tally: ReadTally, batch_rows: int) -> Iterator[pa.Array]:
    if not data.strip():
        return
    schema = pa.schema([(task.column, pa.string())])
    parse = pajson.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore",
                                newlines_in_values=False)
    try:
        table = pajson.read_json(io.BytesIO(data), parse_options=parse,
                                 read_options=pajson.ReadOptions(block_size=16 << 20))
    except pa.ArrowInvalid:
        # Slow path, only on trouble: find the offending line, and fix invalid UTF-8 if that was it.
        table = _jsonl_python(task, data, tally)
    col = table.column(0)
    for i in range(0, len(col), batch_rows):
        yield _finish(col.slice(i, batch_rows), tally)


def _jsonl_python(task: Task, data: bytes, tally: ReadTally) -> pa.Table:
    values = []
    first_line = None if task.start else 1
    for n, raw in enumerate(data.split(b"\n"), start=1):
        if not raw.strip():
            continue
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            tally.n_invalid_utf8 += 1
            line = raw.decode("utf-8", errors="replace")
        where = f"line {n}" if first_line else f"line {n} of the range starting at byte {task.start}"
        try:
            obj = json.loads(line)
        except ValueError as exc:
            raise ClipcompError(f"{task.path}: {where} is not valid JSON ({exc})") from None
        if not isinstance(obj, dict):
            raise ClipcompError(f"{task.path}: {where} is not a JSON object")
        value = obj.get(task.column)
        if value is not None and not isinstance(value, str):
            raise ClipcompError(f"{task.path}: {where}: field {task.column!r} is {type(value).__name__}, "
                                "expected a string")
        values.append(value)
    return pa.table({task.column: pa.array(values, type=pa.string())})
