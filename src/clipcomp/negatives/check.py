"""`negatives check` as a library call: read a negatives table (and optional stats / corpus), run the check."""

from __future__ import annotations

import os

from clipcomp.errors import ClipcompError


def _settings(path: str) -> dict:
    """The generating run's settings (meta.json beside negatives.parquet), when there is one."""
    import json

    meta = os.path.join(os.path.dirname(path), "meta.json")
    if not os.path.isfile(meta):
        return {}
    try:
        with open(meta, encoding="utf-8") as f:
            return json.load(f).get("settings", {}) or {}
    except (OSError, ValueError):
        return {}


def run_check(negatives: str, stats: str | None = None, corpus: str | None = None, out: str | None = None,
              lexicon: str | None = None, frame_words: list[str] | None = None) -> dict:
    """Validity (frame / type / synonym / articles, per type) and the blind-text check of a negatives table.
    The lexicon and frame words default to those the negatives were generated with (their meta.json)."""
    import pyarrow.parquet as pq

    from clipcomp.io import atomic_write_json, check_input_file, guard_output
    from clipcomp.negatives.blind import blind_check
    from clipcomp.negatives.generate import FRAME_WORDS, load_lexicon
    from clipcomp.negatives.types import TypedLexicon
    from clipcomp.negatives.validity import validity_report

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
    settings = _settings(path)
    if lexicon is not None:
        lex = load_lexicon(lexicon)
    elif isinstance(settings.get("lexicon"), dict):
        lex = TypedLexicon(settings["lexicon"]["types"], source=settings["lexicon"].get("source", "meta.json"))
    else:
        lex = None
    frames = frame_words if frame_words is not None else settings.get("frame_words", list(FRAME_WORDS))
    report = blind_check(table, st, texts)
    if {"start", "original", "replacement"} <= set(table.column_names):
        report["validity"] = validity_report(table, lex, frames, settings.get("frame_share", 0.5),
                                             lexicon_only=bool(settings.get("lexicon_only")) and lex is not None)
    if out:
        atomic_write_json(out, report)
    return report
