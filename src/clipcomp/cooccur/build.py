"""`stats build`: plan tasks → (discover vocabulary) → count → merge → ConceptStats directory.

Resumable: partials live in ``OUT/_work`` keyed by a fingerprint of inputs and settings; a rerun of the
same build skips finished tasks, a different build into the same directory is refused (or --force).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import queue
import resource
import shutil
import threading
import time
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from clipcomp.concepts import LEMMATIZERS, load_stopwords, make_lemmatizer, read_vocab_file
from clipcomp.cooccur.engine import Runner
from clipcomp.cooccur.merge import Compactor, merge_lemma_counts, plan_merge, select_vocabulary, sum_arrays
from clipcomp.cooccur.work import WorkContext, marker, part, warm_up
from clipcomp.corpus import ReadTally, Task, plan_tasks
from clipcomp.errors import ClipcompError, file_sha256
from clipcomp.io import write_parquet
from clipcomp.stats import CONCEPTS_FILE, META_FILE, VOCAB_FILE, PairsWriter, write_concepts

WORK_DIR = "_work"
FORMAT_VERSION = 1


@dataclass
class BuildOptions:
    text_column: str | None = None
    input_format: str = "auto"
    header: bool | None = None
    vocab: str | None = None
    min_count: int = 5
    max_concepts: int | None = None
    lemmatizer: str = "simplemma"
    stopwords: str = "default"
    smoothing: float = 0.0
    workers: int = 1
    engine: str = "local"
    scheduler: str | None = None
    skip_bad: bool = False
    force: bool = False
    keep_work: bool = False
    task_bytes: int | None = None  # None: chosen from the corpus size
    task_rows: int | None = None


@dataclass
class BuildResult:
    out: str
    n_captions: int
    n_concepts: int
    n_pairs: int
    seconds: float
    phase_seconds: dict[str, float] = field(default_factory=dict)
    tally: dict[str, int] = field(default_factory=dict)
    skipped: list[dict] = field(default_factory=list)
    up_to_date: bool = False

    @property
    def captions_per_second(self) -> float:
        return self.n_captions / self.seconds if self.seconds > 0 else float("nan")


class Reporter:
    """Progress hooks; the CLI supplies a Rich implementation, the API a silent one."""

    def phase(self, name: str, total_tasks: int) -> None: ...

    def task_done(self, result: dict) -> None: ...

    def close(self) -> None: ...


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for name in ("clipcomp", "numpy", "pyarrow", "simplemma", "spacy", "spacy-lookups-data"):
        with contextlib.suppress(PackageNotFoundError):
            out[name] = version(name)
    return out


def _task_sizes(files: list[dict]) -> tuple[int, int]:
    """Task size (bytes of text, rows of Parquet) from the corpus size alone — not the worker count, so a
    resumed run plans the same tasks. About 16 tasks for a corpus from ~30 MB / 500k captions on (so one
    60 MB file or one single-row-group Parquet file keeps 2–8 workers busy), ≤ 64 MB / 1M rows each at scale,
    never tiny ones."""
    total_bytes = sum(f["bytes"] for f in files if f["format"] != "parquet")
    total_rows = sum(f.get("rows", 0) for f in files)
    return (int(min(64 << 20, max(2 << 20, total_bytes // 16))),
            int(min(1_000_000, max(31_250, total_rows // 16))))


def _validate(opts: BuildOptions) -> None:
    if opts.lemmatizer not in LEMMATIZERS:
        raise ClipcompError(f"unknown --lemmatizer {opts.lemmatizer!r} (expected {', '.join(LEMMATIZERS)})")
    if opts.min_count < 1:
        raise ClipcompError(f"--min-count must be ≥ 1 (got {opts.min_count})")
    if opts.max_concepts is not None and opts.max_concepts < 1:
        raise ClipcompError(f"--max-concepts must be ≥ 1 (got {opts.max_concepts})")
    if opts.smoothing < 0:
        raise ClipcompError(f"--smoothing must be ≥ 0 (got {opts.smoothing})")


def _prepare_out(out: str, fingerprint: str, force: bool) -> str | None:
    """Returns 'done' when OUT already holds this very build, else sets up OUT/_work for (re)use."""
    work = os.path.join(out, WORK_DIR)
    meta_path = os.path.join(out, META_FILE)
    if os.path.exists(meta_path):
        try:
            with open(meta_path, encoding="utf-8") as f:
                old = json.load(f).get("fingerprint")
        except ValueError:
            old = None
        if old == fingerprint and not force:
            return "done"
        if old != fingerprint and not force:
            raise ClipcompError(f"{out}: holds a different build (other inputs or settings); "
                                "choose another -o directory or pass --force to overwrite it")
    work_fp = os.path.join(work, "fingerprint")
    if os.path.exists(work_fp):
        with open(work_fp, encoding="utf-8") as f:
            old = f.read().strip()
        if old != fingerprint:
            if not force:
                raise ClipcompError(f"{out}: holds an unfinished different build ({work}); "
                                    "choose another -o directory or pass --force")
            shutil.rmtree(work)
        elif force:
            shutil.rmtree(work)
    elif os.path.isdir(out) and set(os.listdir(out)) - {".clipcomp"} and not os.path.exists(meta_path) and not force:
        raise ClipcompError(f"{out}: directory is not empty and holds no clipcomp build; "
                            "choose another -o directory or pass --force")
    os.makedirs(work, exist_ok=True)
    with open(work_fp, "w", encoding="utf-8") as f:
        f.write(fingerprint)
    return None


def build_stats(inputs: list[str], out: str, opts: BuildOptions | None = None,
                reporter: Reporter | None = None) -> BuildResult:
    """Count concepts and concept pairs over a caption corpus and write a ConceptStats directory."""
    opts = opts or BuildOptions()
    reporter = reporter or Reporter()
    _validate(opts)
    t_start = time.perf_counter()
    lemmatize = make_lemmatizer(opts.lemmatizer)
    stop = load_stopwords(opts.stopwords)
    entries = read_vocab_file(opts.vocab, lemmatize) if opts.vocab else None

    probe = plan_tasks(inputs, opts.text_column, opts.input_format, opts.header, skip_bad=opts.skip_bad,
                       target_bytes=1 << 62)
    task_bytes, task_rows = _task_sizes(probe.files)
    task_bytes = opts.task_bytes or task_bytes
    task_rows = opts.task_rows or task_rows
    plan = plan_tasks(inputs, opts.text_column, opts.input_format, opts.header, target_bytes=task_bytes,
                      target_rows=task_rows, skip_bad=opts.skip_bad)
    if not plan.tasks:
        raise ClipcompError(f"no readable caption files in {' '.join(inputs)}")

    settings = {
        "text_column": opts.text_column, "input_format": opts.input_format, "header": opts.header,
        "vocab": os.path.abspath(opts.vocab) if opts.vocab else None,
        "vocab_sha256": file_sha256(opts.vocab) if opts.vocab else None,
        "min_count": None if opts.vocab else opts.min_count,
        "max_concepts": None if opts.vocab else opts.max_concepts,
        "lemmatizer": opts.lemmatizer, "stopwords": opts.stopwords, "smoothing": opts.smoothing,
        "counts": "document", "log": "natural", "task_bytes": task_bytes, "task_rows": task_rows,
        "skip_bad": opts.skip_bad,
        "format_version": FORMAT_VERSION,
    }
    fingerprint = hashlib.sha256(json.dumps(
        {"settings": settings, "stopwords": sorted(stop), "files": plan.files}, sort_keys=True).encode()
    ).hexdigest()[:20]
    from clipcomp.io import guard_output, record_output, recorded_kind

    if os.path.exists(out) and not os.path.isdir(out):
        raise ClipcompError(f"{out}: exists and is a file, not an output directory (choose another -o)")
    guard_output(out, [*inputs, opts.vocab])
    other = recorded_kind(out)
    if other not in (None, "stats build") and not opts.force:
        raise ClipcompError(f"{out}: holds the output of `{other}`, not of `stats build`; use another -o, or "
                            "--force to replace it")
    os.makedirs(out, exist_ok=True)
    state = _prepare_out(out, fingerprint, opts.force)
    record_output(out, "stats build", {"fingerprint": fingerprint})
    if state == "done":
        with open(os.path.join(out, META_FILE), encoding="utf-8") as f:
            meta = json.load(f)
        return BuildResult(out, meta["n_captions"], meta["n_concepts"], meta["n_pairs"],
                           time.perf_counter() - t_start, tally=meta.get("tally", {}),
                           skipped=meta.get("skipped", []), up_to_date=True)
    work = os.path.join(out, WORK_DIR)
    ctx = WorkContext(work, opts.lemmatizer, tuple(sorted(stop)))
    skipped = list(plan.skipped)
    phase_seconds: dict[str, float] = {}

    phase_cpu: dict[str, float] = {}

    def run_phase(runner: Runner, phase: str, tasks: list, c: WorkContext, on_done=None) -> list[tuple[Task, dict]]:
        t0 = time.perf_counter()
        reporter.phase(phase, len(tasks))
        ok: list[tuple[Task, dict]] = []
        for task, res in runner.map(phase, tasks, c):
            if isinstance(res, ClipcompError):
                if not opts.skip_bad or phase == "merge":
                    raise ClipcompError(f"{res} (finished tasks are kept in {work}; rerun to resume, "
                                        "or pass --skip-bad)")
                skipped.append({"file": task.label, "reason": str(res)})
                continue
            ok.append((task, res))
            phase_cpu[phase] = phase_cpu.get(phase, 0.0) + res.get("cpu_seconds", 0.0)
            if on_done is not None:
                on_done(task, res)
            reporter.task_done(res)
        phase_seconds[phase] = time.perf_counter() - t0
        return sorted(ok, key=lambda tr: tr[0].tid)

    if opts.engine == "local" and entries is None:
        warm_up(ctx)  # before the workers start, so a forked worker inherits the loaded dictionary
    cpu_parent0 = time.process_time()
    try:
        with Runner(opts.engine, opts.workers, opts.scheduler) as runner:
            if entries is not None:
                entries = sorted(entries, key=lambda e: e.concept)
                vocab_path = os.path.join(work, VOCAB_FILE)
                _write_vocab(vocab_path, entries)
                vctx = WorkContext(work, opts.lemmatizer, ctx.stopwords, vocab_file=vocab_path)
                compactor = Compactor(work, "vocab", len(entries))
                try:
                    done = run_phase(runner, "vocab", plan.tasks, vctx, on_done=lambda t, _: compactor.add(
                        (part(work, "vocab", t.tid, "codes.npy"), part(work, "vocab", t.tid, "counts.npy"))))
                except BaseException:
                    compactor.stop()  # a running compaction completes; nothing is left half-replaced
                    raise
                concepts = pa.array([e.concept for e in entries], pa.string())
                counts = sum_arrays([part(work, "vocab", t.tid, "unigram.npy") for t, _ in done], len(entries))
                pair_parts = compactor.finish(
                    [(part(work, "vocab", t.tid, "codes.npy"), part(work, "vocab", t.tid, "counts.npy"))
                     for t, _ in done])
                extract_results = done
            else:
                done1 = run_phase(runner, "discover", plan.tasks, ctx)
                t0 = time.perf_counter()
                lemma_counts = merge_lemma_counts([part(work, "discover", t.tid, "lemmas.arrow") for t, _ in done1])
                vocab_table = select_vocabulary(lemma_counts, opts.min_count, opts.max_concepts)
                vocab_path = os.path.join(work, "vocabulary.parquet")
                write_parquet(vocab_table, vocab_path)
                phase_seconds["select"] = time.perf_counter() - t0
                vctx = WorkContext(work, opts.lemmatizer, ctx.stopwords, vocab_file=vocab_path)
                compactor = Compactor(work, "pairs", vocab_table.num_rows)
                try:
                    done = run_phase(runner, "pairs", [t for t, _ in done1], vctx, on_done=lambda t, _: compactor.add(
                        (part(work, "pairs", t.tid, "codes.npy"), part(work, "pairs", t.tid, "counts.npy"))))
                except BaseException:
                    compactor.stop()
                    raise
                concepts = vocab_table.column("concept").combine_chunks()
                counts = vocab_table.column("count").to_numpy()
                pair_parts = compactor.finish(
                    [(part(work, "pairs", t.tid, "codes.npy"), part(work, "pairs", t.tid, "counts.npy"))
                     for t, _ in done])
                extract_results = done1

            tally = ReadTally()
            for _, res in done:
                tally.add(ReadTally(**{k: res[k] for k in ("n_rows", "n_null", "n_empty", "n_invalid_utf8")}))
            n_captions = tally.n_rows
            if n_captions == 0:
                raise ClipcompError(f"empty corpus: no captions in {' '.join(inputs)}")

            # reduce: key ranges merged in parallel; pairs.parquet streamed in key order by a writer thread
            t0 = time.perf_counter()
            concepts_path = os.path.join(work, "final_concepts.parquet")
            write_parquet(pa.table({"concept": concepts, "count": pa.array(counts, pa.int64())}), concepts_path)
            mctx = WorkContext(work, opts.lemmatizer, ctx.stopwords, concepts_file=concepts_path,
                               n_captions=n_captions, smoothing=opts.smoothing)
            merge_tasks = plan_merge(pair_parts, len(concepts), n_ranges=8 * opts.workers)
            writer = OrderedPairsWriter(out, work, len(merge_tasks))
            try:
                run_phase(runner, "merge", merge_tasks, mctx, on_done=lambda t, _: writer.ready(t.tid))
                n_pairs = writer.close(len(concepts))
            except BaseException:
                writer.abort()
                raise
    finally:
        reporter.close()
    write_concepts(os.path.join(out, CONCEPTS_FILE), concepts, counts)
    if entries is not None:
        _write_vocab(os.path.join(out, VOCAB_FILE), entries)
    phase_seconds["merge"] = time.perf_counter() - t0
    cpu_parent = time.process_time() - cpu_parent0
    usage_self = resource.getrusage(resource.RUSAGE_SELF)
    usage_children = resource.getrusage(resource.RUSAGE_CHILDREN)  # pool workers, reaped when the pool closed
    extract_wall = sum(r.get("extract_seconds", 0.0) for _, r in extract_results)
    extract_cpu = sum(r.get("extract_cpu_seconds", 0.0) for _, r in extract_results)

    meta = {
        "fingerprint": fingerprint,
        "n_captions": n_captions,
        "n_concepts": len(concepts),
        "n_pairs": n_pairs,
        "tally": tally.as_dict(),
        "settings": settings,
        "inputs": [{k: f[k] for k in ("path", "format", "bytes")} for f in plan.files],
        "n_tasks": len(plan.tasks),
        "skipped": skipped,
        "stopword_list": sorted(stop),
        "versions": _versions(),
        "pmi": "ln(N*(n_ab+k)/((n_a+k)*(n_b+k))), npmi = pmi/-ln((n_ab+k)/N); k = settings.smoothing",
    }
    _write_json(os.path.join(out, META_FILE), meta)
    seconds = time.perf_counter() - t_start
    run = {"engine": opts.engine, "workers": opts.workers, "scheduler": opts.scheduler,
           "seconds": seconds, "phase_seconds": phase_seconds,
           # CPU seconds from the OS: per phase, the tasks' process CPU time (wherever they ran); the
           # coordinating process's own share (planning, selection, writing pairs.parquet); and the totals
           # of this process and its reaped local workers (getrusage) -- 0 children with Dask workers
           "phase_cpu_seconds": phase_cpu, "coordinator_cpu_seconds": cpu_parent,
           "process_cpu_seconds": usage_self.ru_utime + usage_self.ru_stime,
           "children_cpu_seconds": usage_children.ru_utime + usage_children.ru_stime,
           "extract_seconds": extract_wall, "extract_cpu_seconds": extract_cpu,
           "n_tasks": len(plan.tasks), "n_merge_tasks": len(merge_tasks),
           "captions_per_second": n_captions / seconds if seconds else None,
           "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    _write_json(os.path.join(out, "run.json"), run)
    if not opts.keep_work:
        shutil.rmtree(work, ignore_errors=True)
    return BuildResult(out, n_captions, len(concepts), n_pairs, seconds, phase_seconds, tally.as_dict(), skipped)


class OrderedPairsWriter:
    """Writes finished merge ranges into pairs.parquet (+ index/) in key order, on a thread of its own, so the
    coordinating process keeps merging while Parquet is encoded; each range's files are deleted once written."""

    def __init__(self, out: str, work: str, n_ranges: int) -> None:
        self.work = work
        self.writer = PairsWriter(out)
        self.n_ranges = n_ranges
        self._finished: set[int] = set()
        self._next = 0
        self._queue: queue.Queue = queue.Queue()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="pairs-writer", daemon=True)
        self._thread.start()

    def ready(self, tid: int) -> None:
        self._finished.add(tid)
        while self._next in self._finished:
            self._queue.put(self._next)
            self._next += 1

    def _run(self) -> None:
        while (tid := self._queue.get()) is not None:
            if self._error is not None:
                continue
            try:
                arrow = part(self.work, "merge", tid, "arrow")
                with pa.memory_map(arrow) as source:
                    table = pa.ipc.open_file(source).read_all()
                    codes = np.load(part(self.work, "merge", tid, "codes.npy"), mmap_mode="r")
                    counts = np.load(part(self.work, "merge", tid, "counts.npy"), mmap_mode="r")
                    self.writer.write(table, codes, counts)
                    del table, codes, counts
                # the range is in pairs.parquet now: forget it (marker first), so its disk is freed at once and
                # a resumed build (which rewrites pairs.parquet) recomputes it from the partials
                os.remove(marker(self.work, "merge", tid))
                for name in ("arrow", "codes.npy", "counts.npy"):
                    os.remove(part(self.work, "merge", tid, name))
            except BaseException as exc:  # reported by close()
                self._error = exc

    def close(self, n_concepts: int) -> int:
        self._queue.put(None)
        self._thread.join()
        if self._error is not None:
            raise self._error
        if self._next != self.n_ranges:
            raise ClipcompError(f"internal error: {self.n_ranges - self._next} pair ranges were not written")
        return self.writer.close(n_concepts)

    def abort(self) -> None:
        self._queue.put(None)
        self._thread.join()
        self.writer.abort()


def _write_vocab(path: str, entries) -> None:
    write_parquet(pa.table({"concept": pa.array([e.concept for e in entries], pa.string()),
                             "key": pa.array([list(e.key) for e in entries], pa.list_(pa.string()))}), path)


def _write_json(path: str, obj: dict) -> None:
    from clipcomp.io import atomic_output

    with atomic_output(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2, sort_keys=False)
        f.write("\n")


__all__ = ["BuildOptions", "BuildResult", "Reporter", "build_stats"]
