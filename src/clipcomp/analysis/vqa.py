"""VQA / LMM analysis: accuracy and the "yes" bias as functions of the PMI of question + answer concepts.

Inputs: VQAv2-style JSON (questions, annotations, predictions) or one table with `question`, `answer`,
`prediction` (and optionally `answers`, the list of human answers). Answers are compared after a light
normalization (lower case, punctuation and articles removed); with ≥ 3 human answers an item scores the VQA
accuracy min(1, #humans who gave the prediction / 3), else exact match.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from clipcomp.analysis.pmi import PMIAnalysis, analyze, attach_pmi
from clipcomp.errors import ClipcompError
from clipcomp.stats import ConceptStats
from clipcomp.tasks.common import read_json, read_table, require_columns

_PUNCT = re.compile(r"[^\w\s]")
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalize_answer(text: str | None) -> str:
    t = (text or "").lower().strip()
    t = _PUNCT.sub(" ", t)
    t = _ARTICLES.sub(" ", t)
    return " ".join(t.split())


def load_vqa(questions: str, annotations: str | None = None, predictions: str | None = None) -> pa.Table:
    """A table with question_id, question, answer, answers, prediction."""
    if annotations is None and predictions is None:
        if questions.lower().endswith(".json"):
            raise ClipcompError(f"{questions}: a VQAv2 questions JSON needs --annotations and --predictions (or give "
                                "a table .parquet/.csv/.tsv/.jsonl with question, answer, prediction)")
        table = read_table(questions)
        require_columns(table, ["question", "answer", "prediction"], questions, "for VQA analysis")
        if "answers" not in table.column_names:
            table = table.append_column("answers", pa.array([None] * table.num_rows, pa.list_(pa.string())))
        if "question_id" not in table.column_names:
            table = table.append_column("question_id", pa.array(range(table.num_rows), pa.int64()))
        return table
    if annotations is None or predictions is None:
        raise ClipcompError("VQAv2 JSON input needs --questions, --annotations and --predictions together")
    q = read_json(questions)
    a = read_json(annotations)
    p = read_json(predictions)
    qs = q.get("questions") if isinstance(q, dict) else q
    anns = a.get("annotations") if isinstance(a, dict) else a
    if not isinstance(qs, list) or not isinstance(anns, list) or not isinstance(p, list):
        raise ClipcompError("expected VQAv2 JSON: {'questions': [...]}, {'annotations': [...]}, "
                            "[{'question_id', 'answer'}]")
    ann_by = {x["question_id"]: x for x in anns}
    pred_by = {}
    for i, x in enumerate(p):
        if "question_id" not in x or "answer" not in x:
            raise ClipcompError(f"{predictions}: item {i} lacks 'question_id' or 'answer'")
        pred_by[x["question_id"]] = x["answer"]
    rows = {"question_id": [], "question": [], "answer": [], "answers": [], "prediction": []}
    missing_pred = 0
    for x in qs:
        qid = x["question_id"]
        if qid not in ann_by:
            raise ClipcompError(f"{annotations}: no annotation for question_id {qid}")
        if qid not in pred_by:
            missing_pred += 1
            continue
        ann = ann_by[qid]
        rows["question_id"].append(qid)
        rows["question"].append(x["question"])
        rows["answer"].append(ann.get("multiple_choice_answer") or (ann.get("answers") or [{}])[0].get("answer"))
        rows["answers"].append([y.get("answer") for y in ann.get("answers", [])] or None)
        rows["prediction"].append(pred_by[qid])
    if not rows["question"]:
        raise ClipcompError(f"{predictions}: no prediction matches a question ({missing_pred} questions lack one)")
    return pa.table(rows)


def score(table: pa.Table) -> np.ndarray:
    out = np.zeros(table.num_rows)
    for i, (ans, answers, pred) in enumerate(zip(table.column("answer").to_pylist(),
                                                  table.column("answers").to_pylist(),
                                                  table.column("prediction").to_pylist(), strict=True)):
        p = normalize_answer(pred)
        if answers and len(answers) >= 3:
            out[i] = min(1.0, sum(normalize_answer(a) == p for a in answers) / 3.0)
        else:
            out[i] = float(normalize_answer(ans) == p)
    return out


@dataclass
class VQAAnalysis:
    accuracy: PMIAnalysis
    yes_given_yes: PMIAnalysis | None
    yes_given_no: PMIAnalysis | None
    n_yes: int
    n_no: int


def analyze_vqa(table: pa.Table, stats: ConceptStats, n_bins: int = 10, tail: float = 0.05, n_boot: int = 1000,
                seed: int = 0) -> tuple[pa.Table, VQAAnalysis]:
    qa = [f"{q or ''} {a or ''}" for q, a in zip(table.column("question").to_pylist(),
                                                 table.column("answer").to_pylist(), strict=True)]
    t = table.append_column("qa_text", pa.array(qa, pa.string()))
    acc = score(t)
    t = t.append_column("vqa_accuracy", pa.array(acc))
    pred_yes = np.array([normalize_answer(p) == "yes" for p in t.column("prediction").to_pylist()], dtype=float)
    gt = [normalize_answer(a) for a in t.column("answer").to_pylist()]
    t = t.append_column("predicted_yes", pa.array(pred_yes.astype(bool)))
    joined = attach_pmi(t, stats, text_column="qa_text")
    pmi = joined.column("pmi").to_numpy()
    status = joined.column("pmi_status").to_pylist()
    freq = np.column_stack([joined.column("log_freq_a").to_numpy(), joined.column("log_freq_b").to_numpy()])
    main = analyze(pmi, acc, freq, status, None, n_bins, tail, n_boot, seed)

    def subset(label: str, offset: int) -> tuple[PMIAnalysis | None, int]:
        m = np.array([g == label for g in gt])
        if int(np.isfinite(pmi[m]).sum()) < 3:
            return None, int(m.sum())
        return analyze(pmi[m], pred_yes[m], freq[m], [s for s, k in zip(status, m, strict=True) if k], None,
                       n_bins, tail, n_boot, seed + offset), int(m.sum())

    yy, n_yes = subset("yes", 10)
    yn, n_no = subset("no", 20)
    return joined, VQAAnalysis(main, yy, yn, n_yes, n_no)
