"""`negatives check` as a library call: read a negatives table (and optional stats / corpus), run the check."""

from __future__ import annotations

import os

from clipcomp.errors import ClipcompError


def run_check(negatives: str, stats: str | None = None, corpus: str | None = None, out: str | None = None) -> dict:
    import pyarrow.parquet as pq

    from clipcomp.io import atomic_write_json, check_input_file, guard_output
    from clipcomp.negatives.blind import blind_check

    path = os.path.join(negatives, "negatives.parquet") if os.path.isdir(negatives) else negatives
    check_input_file(path, "negatives table")
    if out:
        if os.path.isdir(out):
            raise ClipcompError(f"-o {out}: is a directory; the report is a JSON file (e.g. {out}/check.json)")
        guard_output(out, [negatives, path, stats, corpus])
    try:
        table = pq.read_table(path)
    except Exception as exc:  # noqa: BLE001 - a bad file is a one-line error
        raise ClipcompError(f"{path}: not a readable negatives Parquet file ({exc})") from None
    missing = {"caption", "negative", "type"} - set(table.column_names)
    if missing:
        raise ClipcompError(f"{path}: not a negatives table (missing columns {', '.join(sorted(missing))})")
    st = None
    if stats:
        from clipcomp.stats import ConceptStats

        st = ConceptStats.load(stats)
    texts = None
    if corpus:
        from clipcomp.corpus import ReadTally, iter_texts, plan_tasks

        texts = []
        for task in plan_tasks([corpus]).tasks:
            for arr in iter_texts(task, ReadTally()):
                texts.extend(t for t in arr.to_pylist() if t)
    report = blind_check(table, st, texts)
    if out:
        atomic_write_json(out, report)
    return report
