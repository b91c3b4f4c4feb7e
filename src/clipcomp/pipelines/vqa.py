"""`clipcomp vqa run`: answers from a local LMM for the questions `analyze vqa` relates to PMI (Qu & Xie's LMM
half: LLaVA-1.5 accuracy vs PMI and its yes-bias).

Questions: a VQAv2 questions JSON ({"questions": [{question_id, image_id, question}]}, images found in `images`
as COCO names them — COCO_<subtype>_<id:012d>.jpg — or <id:012d>.jpg / <id>.jpg), a TextVQA JSON ({"data": [...]},
<image_id>.jpg), or a table (.jsonl/.csv/.parquet: question, image [, question_id, answer, answers]).

Writes, in OUT: answers.jsonl (one line per answered question, appended batch by batch — an interrupted run
resumes where it stopped), then predictions.json ([{question_id, answer}], the VQAv2 results format that
`analyze vqa --predictions` reads) and answers.parquet (question_id, question, image, prediction, raw [, answer,
answers]; `analyze vqa OUT/answers.parquet --stats DIR` when the questions came with answers).

Answers are normalized as the yes/no analysis needs: lower case, surrounding punctuation stripped, and an answer
that begins with "yes" or "no" ("Yes, there is.") counted as that word; the raw text is kept beside it.
"""

from __future__ import annotations

import json
import os
import re

from clipcomp.errors import ClipcompError

_EDGE = re.compile(r"^[\s\"'.,;:!?()]+|[\s\"'.,;:!?()]+$")


def normalize_answer(raw: str) -> str:
    """Lower case, punctuation at the ends stripped; "yes…"/"no…" → "yes"/"no"."""
    a = _EDGE.sub("", (raw or "").strip().lower())
    first = re.split(r"[\s,.;:!?]+", a, maxsplit=1)[0] if a else ""
    return first if first in ("yes", "no") else a


def _image_index(root: str) -> dict[str, str]:
    try:
        names = os.listdir(root)
    except OSError:
        raise ClipcompError(f"--images {root}: not a readable folder") from None
    return {n: os.path.join(root, n) for n in names}


def _coco_image(image_id, index: dict[str, str], subtype: str | None) -> str | None:
    try:
        i = int(image_id)
    except (TypeError, ValueError):
        return index.get(f"{image_id}.jpg") or index.get(str(image_id))
    for name in ([f"COCO_{subtype}_{i:012d}.jpg"] if subtype else []) + [f"{i:012d}.jpg", f"{i}.jpg"]:
        if name in index:
            return index[name]
    suffix = f"{i:012d}.jpg"
    return next((p for n, p in index.items() if n.endswith(suffix)), None)


def load_questions(path: str, images: str | None) -> list[dict]:
    """[{question_id, question, image[, answer, answers]}] from any supported questions file."""
    from clipcomp.io import read_json, read_table

    if path.lower().endswith(".json"):
        obj = read_json(path)
        qs = obj.get("questions") if isinstance(obj, dict) else None
        textvqa = qs is None and isinstance(obj, dict) and isinstance(obj.get("data"), list)
        if textvqa:
            qs = obj["data"]
        if not isinstance(qs, list):
            raise ClipcompError(f"{path}: expected a VQAv2 questions JSON {{'questions': [...]}}, a TextVQA JSON "
                                "{'data': [...]}, or a table with question, image")
        if images is None:
            raise ClipcompError(f"{path}: VQAv2/TextVQA questions name images by id; give --images DIR")
        index = _image_index(images)
        subtype = obj.get("data_subtype") if not textvqa else None
        out = []
        for i, q in enumerate(qs):
            if not isinstance(q, dict) or "question" not in q or "image_id" not in q:
                raise ClipcompError(f"{path}: question {i} lacks question or image_id")
            img = _coco_image(q["image_id"], index, subtype)
            if img is None:
                raise ClipcompError(f"{path}: no image for image_id {q['image_id']} in {images}")
            row = {"question_id": q.get("question_id", i), "question": str(q["question"]), "image": img}
            if textvqa and q.get("answers"):
                row["answers"] = [str(a) for a in q["answers"]]
                row["answer"] = max(row["answers"], key=row["answers"].count)
            out.append(row)
        return out
    t = read_table(path)
    missing = [c for c in ("question", "image") if c not in t.column_names]
    if missing:
        raise ClipcompError(f"{path}: lacks column(s) {', '.join(missing)} (a questions table needs question, "
                            "image [, question_id, answer, answers])")
    from clipcomp.datasets.common import resolve

    root = images or os.path.dirname(os.path.abspath(path))
    rows = t.to_pylist()
    return [{"question_id": r.get("question_id", i), "question": str(r["question"]),
             "image": resolve(str(r["image"]), root),
             **({"answer": r["answer"]} if r.get("answer") is not None else {}),
             **({"answers": list(r["answers"])} if r.get("answers") else {})} for i, r in enumerate(rows)]


def _done(path: str) -> dict:
    out = {}
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            for line in f:
                try:
                    r = json.loads(line)
                except ValueError:  # a line cut by an interrupt: its question is asked again
                    continue
                out[str(r["question_id"])] = r
    return out


def run_vqa(questions: str, model: str, out: str, images: str | None = None, batch_size: int = 8,
            max_new_tokens: int = 16, device: str = "auto", force: bool = False, progress: bool = True,
            stop_after: int | None = None) -> dict:
    """Answer every question with the LMM in `model` (a local directory); resumes from OUT/answers.jsonl.
    `stop_after`: stop after that many batches (chunked runs, tests). Returns a summary."""
    import pyarrow as pa
    from PIL import Image

    from clipcomp.io import atomic_write_json, prepare_output, write_parquet
    from clipcomp.models.lmm import check_model_dir, load_lmm
    from clipcomp.progress import progress_bar

    if batch_size < 1 or max_new_tokens < 1:
        raise ClipcompError("--batch-size and --max-new-tokens must be ≥ 1")
    if not os.path.exists(questions):
        raise ClipcompError(f"{questions}: questions file not found")
    check_model_dir(model)
    qs = load_questions(questions, images)
    if not qs:
        raise ClipcompError(f"{questions}: no questions")
    settings = {"questions": os.path.abspath(questions), "model": os.path.abspath(model),
                "max_new_tokens": max_new_tokens, "prompt": "llava-1.5 short answer", "version": 1}
    prepare_output(out, "vqa run", settings, force=force, markers=("answers.jsonl", "predictions.json"))
    log_path = os.path.join(out, "answers.jsonl")
    done = _done(log_path)
    todo = [q for q in qs if str(q["question_id"]) not in done]
    resumed = len(qs) - len(todo)
    batches = 0
    if todo:
        lmm = load_lmm(model, device)
        with open(log_path, "a", encoding="utf-8") as log, \
                progress_bar(len(todo), "questions", enabled=progress, desc="vqa") as bar:
            for start in range(0, len(todo), batch_size):
                if stop_after is not None and batches >= stop_after:
                    break
                chunk = todo[start:start + batch_size]
                ims = []
                for q in chunk:
                    try:
                        with Image.open(q["image"]) as im:
                            ims.append(im.convert("RGB"))
                    except (OSError, ValueError) as exc:
                        raise ClipcompError(f"{q['image']}: unreadable image ({exc})") from None
                raws = lmm.answer(ims, [q["question"] for q in chunk], max_new_tokens)
                for q, raw in zip(chunk, raws, strict=True):
                    rec = {"question_id": q["question_id"], "image": q["image"], "question": q["question"],
                           "raw": raw, "answer": normalize_answer(raw)}
                    log.write(json.dumps(rec) + "\n")
                    done[str(q["question_id"])] = rec
                log.flush()
                batches += 1
                bar.update(len(chunk))
    answered = [done[str(q["question_id"])] for q in qs if str(q["question_id"]) in done]
    finished = len(answered) == len(qs)
    if finished:
        atomic_write_json(os.path.join(out, "predictions.json"),
                          [{"question_id": r["question_id"], "answer": r["answer"]} for r in answered])
        cols = {"question_id": [q["question_id"] for q in qs], "question": [q["question"] for q in qs],
                "image": [q["image"] for q in qs], "prediction": [r["answer"] for r in answered],
                "raw": [r["raw"] for r in answered]}
        if all("answer" in q for q in qs):
            cols["answer"] = [str(q["answer"]) for q in qs]
            cols["answers"] = [q.get("answers") for q in qs]
        write_parquet(pa.table(cols), os.path.join(out, "answers.parquet"))
    yes = sum(r["answer"] == "yes" for r in answered)
    no = sum(r["answer"] == "no" for r in answered)
    return {"questions": len(qs), "answered": len(answered), "resumed": resumed, "finished": finished,
            "yes": yes, "no": no, "out": out}
