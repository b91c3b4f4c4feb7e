"""Every suite's numbers equal its authors' scoring, item for item, on fixtures in the official file layouts
(built from the repository's real COCO sample images and captions). Each `official_*` function below is a
transcription of the official code (file and lines named), run on the same image/text embeddings."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")

from clipcomp.models import ModelSpec  # noqa: E402
from clipcomp.models.embed import make_embedder  # noqa: E402
from clipcomp.pipelines.suites import eval_suite, summary_columns  # noqa: E402

SAMPLE = Path(__file__).parent / "data" / "coco_sample"
IMAGES = SAMPLE / "images"
SPEC = ModelSpec(model="clipcomp-micro", cache_dir=None, seed=3)


@pytest.fixture(scope="module")
def embedder():
    emb, _ = make_embedder(SPEC, progress=False)
    return emb


def _coco():
    d = json.loads((SAMPLE / "captions_val2017.json").read_text())
    files = {im["id"]: im["file_name"] for im in d["images"]}
    out: dict[str, list[str]] = {}
    for a in sorted(d["annotations"], key=lambda a: a["id"]):
        out.setdefault(files[a["image_id"]], []).append(a["caption"])
    return sorted(out.items())


def _items(path):
    import pyarrow.parquet as pq

    return pq.read_table(Path(path) / "items.parquet").to_pylist()


def _img(emb, paths):
    return emb.images([str(p) for p in paths]).embeddings


# ---------------------------------------------------------------------------------------------------- ARO VG

SYMMETRIC_SAMPLE = ["next to", "near", "with"]  # in ARO's notebook list (left out of the macro)
ASYMMETRIC = ["on", "wearing", "holding", "under"]


def official_vg_relation(scores: np.ndarray, relations: list[str], symmetric: list[str]) -> tuple[float, dict]:
    """ARO dataset_zoo/aro_datasets.py VG_Relation.evaluate_scores (l. 75-105) + the notebook's macro (cell 5)."""
    preds = np.argmax(np.squeeze(scores, axis=1), axis=-1)
    correct_mask = preds == 1
    all_relations = np.array(relations)
    records = []
    for relation in np.unique(all_relations):
        relation_mask = all_relations == relation
        if relation_mask.sum() == 0:
            continue
        records.append({"Relation": relation, "Accuracy": correct_mask[relation_mask].mean(),
                        "Count": relation_mask.sum()})
    kept = [r["Accuracy"] for r in records if r["Relation"] not in symmetric]
    return float(np.mean(kept)), {r["Relation"]: float(r["Accuracy"]) for r in records}


def official_vg_attribution(scores: np.ndarray, attributes: list[str]) -> tuple[float, dict]:
    """ARO VG_Attribution.evaluate_scores (l. 166-191) + the notebook's macro (cell 7)."""
    preds = np.argmax(np.squeeze(scores, axis=1), axis=-1)
    correct_mask = preds == 1
    all_attributes = np.array(attributes)
    records = []
    for attr in np.unique(all_attributes):
        attr_mask = all_attributes == attr
        if attr_mask.sum() < 25:
            continue
        records.append({"Attributes": attr, "Accuracy": correct_mask[attr_mask].mean()})
    return float(np.mean([r["Accuracy"] for r in records])), {r["Attributes"]: float(r["Accuracy"]) for r in records}


def _vg_scores(emb, crops, true, false):
    """ARO's scores N x 1 x 2: [false caption, true caption] per image (model_zoo/clip_models.py l. 55-90)."""
    im = _img(emb, crops)
    t = emb.texts(list(true))
    f = emb.texts(list(false))
    return np.stack([np.einsum("nd,nd->n", im, f), np.einsum("nd,nd->n", im, t)], axis=1)[:, None, :]


def test_aro_vg_relation_is_aros_macro_without_symmetric_relations(tmp_path, embedder):
    coco = _coco()
    rng = np.random.default_rng(0)
    rels, rows = SYMMETRIC_SAMPLE + ASYMMETRIC, []
    for k in range(70):
        name, caps = coco[k % len(coco)]
        rel = rels[k % len(rels)]
        words = caps[0].lower().rstrip(" .").split()
        x, y = int(rng.integers(0, 60)), int(rng.integers(0, 60))
        rows.append({"image_id": Path(name).stem, "image_path": name, "bbox_x": x, "bbox_y": y,
                     "bbox_w": int(rng.integers(60, 200)), "bbox_h": int(rng.integers(60, 200)),
                     "true_caption": f"the {words[1]} is {rel} the {words[-1]}",
                     "false_caption": f"the {words[-1]} is {rel} the {words[1]}",
                     "relation_name": rel, "subj": words[1], "obj": words[-1]})
    rows[0]["false_caption"] = rows[0]["true_caption"]  # a tie: ARO's argmax picks the false caption → wrong
    path = tmp_path / "visual_genome_relation.json"
    path.write_text(json.dumps(rows))
    summary = eval_suite("aro-vg-relation", str(path), str(tmp_path / "out"), str(IMAGES), SPEC, progress=False)
    items = _items(tmp_path / "out")
    assert [int(r["id"]) for r in items] == list(range(70))
    scores = _vg_scores(embedder, [r["image"] for r in items], [x["true_caption"] for x in rows],
                        [x["false_caption"] for x in rows])
    macro, per = official_vg_relation(scores, [x["relation_name"] for x in rows], _symmetric())
    m = summary["metrics"]
    assert m["acc"] == pytest.approx(macro, abs=1e-12) and m["n_macro_subsets"] == len(ASYMMETRIC)
    details = json.loads((tmp_path / "out" / "details" / "metrics.json").read_text())
    assert details["per_subset_acc"] == pytest.approx(per, abs=1e-12)
    assert not items[0]["correct"]
    assert m["pooled_acc"] == pytest.approx(np.mean([r["correct"] for r in items]))
    # one CLIP_benchmark-style summary per relation, under this suite's own prefix
    sub = json.loads((tmp_path / "out" / "summary_next_to.json").read_text())
    assert sub["dataset"] == "aro/vg_relation/next to" and sub["metrics"]["acc"] == pytest.approx(per["next to"])
    cols = summary_columns("aro-vg-relation", str(tmp_path / "out"))
    assert cols == {"aro-vg-relation": pytest.approx(macro), "aro-vg-relation/pooled": pytest.approx(m["pooled_acc"])}


def _symmetric():
    from clipcomp.datasets.aro import SYMMETRIC_RELATIONS

    assert len(SYMMETRIC_RELATIONS) == len(set(SYMMETRIC_RELATIONS)) == 157  # the notebook's list, as it is
    assert {"next to", "near", "with", "around", "adjusting"} <= set(SYMMETRIC_RELATIONS)
    return list(SYMMETRIC_RELATIONS)


def test_aro_vg_attribution_reports_pairs_of_at_least_25_items(tmp_path, embedder):
    coco = _coco()
    pairs = [("white", "black")] * 30 + [("red", "blue")] * 26 + [("small", "large")] * 10
    rows = []
    for k, (a, b) in enumerate(pairs):
        name, caps = coco[k % len(coco)]
        words = caps[0].lower().rstrip(" .").split()
        rows.append({"image_id": Path(name).stem, "image_path": name, "bbox_x": 10 + k % 7, "bbox_y": 5,
                     "bbox_w": 150, "bbox_h": 120, "attributes": [a, b],
                     "true_caption": f"the {a} {words[1]} and the {b} {words[-1]}",
                     "false_caption": f"the {b} {words[1]} and the {a} {words[-1]}"})
    path = tmp_path / "visual_genome_attribution.json"
    path.write_text(json.dumps(rows))
    summary = eval_suite("aro-vg-attribution", str(path), str(tmp_path / "out"), str(IMAGES), SPEC, progress=False)
    items = _items(tmp_path / "out")
    scores = _vg_scores(embedder, [r["image"] for r in items], [x["true_caption"] for x in rows],
                        [x["false_caption"] for x in rows])
    macro, per = official_vg_attribution(scores, [f"{x['attributes'][0]}_{x['attributes'][1]}" for x in rows])
    m = summary["metrics"]
    assert set(per) == {"white_black", "red_blue"}
    assert m["acc"] == pytest.approx(macro, abs=1e-12)
    details = json.loads((tmp_path / "out" / "details" / "metrics.json").read_text())
    assert details["per_subset_acc"] == pytest.approx(per, abs=1e-12)


# ------------------------------------------------------------------------------------------------ ARO Order

class OfficialTextShuffler:
    """ARO dataset_zoo/perturbations.py TextShuffler (l. 44-117), with nltk.word_tokenize on one line (its
    Punkt sentence model is a download; the sample captions are one sentence each)."""

    def __init__(self):
        from clipcomp.nlp import nlp

        self.nlp = nlp()

    def shuffle_nouns_and_adj(self, ex):
        doc = self.nlp(ex)
        tokens = [token.text for token in doc]
        text = np.array(tokens)
        noun_idx = [i for i, token in enumerate(doc) if token.tag_ in ["NN", "NNS", "NNP", "NNPS"]]
        adjective_idx = [i for i, token in enumerate(doc) if token.tag_ in ["JJ", "JJR", "JJS"]]
        text[noun_idx] = np.random.permutation(text[noun_idx])
        text[adjective_idx] = np.random.permutation(text[adjective_idx])
        return " ".join(text)

    def shuffle_allbut_nouns_and_adj(self, ex):
        doc = self.nlp(ex)
        tokens = [token.text for token in doc]
        text = np.array(tokens)
        noun_adj_idx = [i for i, token in enumerate(doc)
                        if token.tag_ in ["NN", "NNS", "NNP", "NNPS", "JJ", "JJR", "JJS"]]
        else_idx = np.ones(text.shape[0])
        else_idx[noun_adj_idx] = 0
        else_idx = else_idx.astype(bool)
        text[else_idx] = np.random.permutation(text[else_idx])
        return " ".join(text)

    def get_trigrams(self, sentence):
        trigrams, trigram = [], []
        for i in range(len(sentence)):
            trigram.append(sentence[i])
            if i % 3 == 2:
                trigrams.append(trigram[:])
                trigram = []
        if trigram:
            trigrams.append(trigram)
        return trigrams

    def shuffle_within_trigrams(self, ex):
        import nltk

        tokens = nltk.word_tokenize(ex, preserve_line=True)
        trigrams = self.get_trigrams(tokens)
        for trigram in trigrams:
            random.shuffle(trigram)
        return " ".join([" ".join(trigram) for trigram in trigrams])

    def shuffle_trigrams(self, ex):
        import nltk

        tokens = nltk.word_tokenize(ex, preserve_line=True)
        trigrams = self.get_trigrams(tokens)
        random.shuffle(trigrams)
        return " ".join([" ".join(trigram) for trigram in trigrams])


def official_pre_caption(caption, max_words=50):
    """ARO dataset_zoo/retrieval.py pre_caption (l. 15-34)."""
    import re

    caption = re.sub(r"([.!\"()*#:;~])", " ", caption.lower())
    caption = re.sub(r"\s{2,}", " ", caption)
    caption = caption.rstrip("\n")
    caption = caption.strip(" ")
    caption_words = caption.split(" ")
    if len(caption_words) > max_words:
        caption = " ".join(caption_words[:max_words])
    return caption


def official_order_cases(annotation: list[dict], seed: int = 1) -> list[dict]:
    """ARO COCO_Order.__init__ (l. 208-240) after main_aro.py's seed_all(1)."""
    random.seed(seed)
    np.random.seed(seed)
    shuffler = OfficialTextShuffler()
    perturb_functions = [shuffler.shuffle_nouns_and_adj, shuffler.shuffle_allbut_nouns_and_adj,
                         shuffler.shuffle_within_trigrams, shuffler.shuffle_trigrams]
    cases = []
    for ann in annotation:
        for caption in ann["caption"]:
            case = {"image": ann["image"], "caption_options": [official_pre_caption(caption, 30)]}
            for perturb_fn in perturb_functions:
                case["caption_options"].append(official_pre_caption(perturb_fn(caption), 30))
            cases.append(case)
    return cases


@pytest.mark.parametrize("suite,file", [("coco-order", "coco_karpathy_test.json"),
                                        ("flickr-order", "flickr30k_test.json")])
def test_order_suites_read_aros_own_files_and_score_as_aro(tmp_path, embedder, suite, file):
    coco = _coco()
    annotation = [{"image": f"val2014/{name}", "caption": caps, "image_id": k} for k, (name, caps) in
                  enumerate(coco)]
    annotation[0]["caption"] = annotation[0]["caption"] + ["dog", "A dog. "]  # identical perturbations: ties
    root = tmp_path / "data"
    (root / "val2014").mkdir(parents=True)
    for name, _ in coco:
        (root / "val2014" / name).symlink_to((IMAGES / name).resolve())
    (root / file).write_text(json.dumps(annotation))
    summary = eval_suite(suite, str(root / file), str(tmp_path / "out"), str(root), SPEC, progress=False)
    cases = official_order_cases(annotation)
    items = _items(tmp_path / "out")
    assert len(items) == len(cases) == sum(len(a["caption"]) for a in annotation)
    for it, case in zip(items, cases, strict=True):
        assert [it["caption"]] + it["negatives"] == case["caption_options"]
    # official scores: N x 1 x 5, argmax == 0 is correct (evaluate_scores l. 269-281)
    im = _img(embedder, [root / c["image"] for c in cases])
    scores = np.stack([np.einsum("d,kd->k", im[i], embedder.texts(c["caption_options"]))
                       for i, c in enumerate(cases)])[:, None, :]
    correct = np.argmax(np.squeeze(scores, axis=1), axis=-1) == 0
    assert [r["correct"] for r in items] == correct.tolist()
    assert summary["metrics"]["acc"] == pytest.approx(float(np.mean(correct)), abs=1e-12)
    same = [k for k, c in enumerate(cases) if set(c["caption_options"]) == {c["caption_options"][0]}]
    assert same and all(items[k]["correct"] for k in same)  # all four perturbations tie: correct, as ARO's argmax


def test_order_rejects_a_file_in_another_format(tmp_path):
    from clipcomp.datasets.aro import coco_order
    from clipcomp.errors import ClipcompError

    (tmp_path / "x.json").write_text(json.dumps([{"img": "a.jpg"}]))
    with pytest.raises(ClipcompError, match="lacks image or caption"):
        coco_order(str(tmp_path / "x.json"), str(tmp_path))


# ------------------------------------------------------------------------------------------------------ VALSE

def official_valse(foils_data: dict, score) -> tuple[int, float]:
    """Heidelberg-NLP/VALSE lxmert_valse_eval.py (l. 30-95): valid items only, pairwise accuracy acc_r."""
    count, pairwise_acc = 0, 0
    for _foil_id, foil in foils_data.items():
        caption_fits = foil["mturk"]["caption"]
        if caption_fits >= 2:
            s_caption, s_foil = score(foil["image_file"], foil["caption"]), score(foil["image_file"], foil["foil"])
            if s_caption > s_foil:
                pairwise_acc += 1
            count += 1
    return count, pairwise_acc / count * 100


def test_valse_filters_valid_items_and_reports_per_piece(tmp_path, embedder):
    coco = _coco()
    pieces = {}
    for p, piece in enumerate(["existence", "counting-hard"]):
        obj = {}
        for k, (name, caps) in enumerate(coco):
            obj[f"{piece}-{k}"] = {"dataset": "coco2017", "image_file": name, "caption": caps[p],
                                   "foil": caps[p].replace("a ", "two ", 1) if k % 3 else caps[(p + 1) % 5],
                                   "mturk": {"foil": 0, "caption": (k + p) % 4, "other": 0},
                                   "linguistic_phenomena": piece}
        pieces[piece] = obj
        (tmp_path / "pieces").mkdir(exist_ok=True)
        (tmp_path / "pieces" / f"{piece}.json").write_text(json.dumps(obj))
    summary = eval_suite("valse", str(tmp_path / "pieces"), str(tmp_path / "out"), str(IMAGES), SPEC, progress=False)

    def score(image, text):
        return float(_img(embedder, [IMAGES / image])[0] @ embedder.texts([text])[0])

    per = {piece: official_valse(obj, score) for piece, obj in pieces.items()}
    details = json.loads((tmp_path / "out" / "details" / "metrics.json").read_text())
    for piece, (count, acc_r) in per.items():
        assert details["per_subset_n"][piece] == count
        assert 100 * details["per_subset_acc"][piece] == pytest.approx(acc_r, abs=1e-9)
    assert summary["metrics"]["acc"] == pytest.approx(np.mean([a for _, a in per.values()]) / 100)
    cols = summary_columns("valse", str(tmp_path / "out"))
    assert {"valse", "valse/pooled", "valse/existence", "valse/counting-hard"} <= set(cols)


# --------------------------------------------------------------------------------------------- SugarCrepe++

def official_scpp(data: list[dict], emb) -> dict:
    """Sri-Harsha/scpp VLMs/test_Variants_CLIP.py (l. 46-98) for one subset file."""
    total = correct_full = correct_img_p1 = correct_img_p2 = correct_text = 0
    for line in data:
        img = _img(emb, [IMAGES / line["filename"]])[0]
        p1, p2, neg = emb.texts([line["caption"], line["caption2"], line["negative_caption"]])
        cos_p1, cos_p2, cos_neg = img @ p1, img @ p2, img @ neg
        cos_p1p2, cos_p1_neg, cos_p2_neg = p1 @ p2, p1 @ neg, p2 @ neg
        total += 1
        correct_full += int(cos_p1 > cos_neg and cos_p2 > cos_neg)
        correct_img_p1 += int(cos_p1 > cos_neg)
        correct_img_p2 += int(cos_p2 > cos_neg)
        correct_text += int(cos_p1p2 > cos_p1_neg and cos_p1p2 > cos_p2_neg)
    return {"itt_acc": correct_full / total, "img_p1_acc": correct_img_p1 / total,
            "img_p2_acc": correct_img_p2 / total, "tot_acc": correct_text / total}


def test_sugarcrepe_pp_per_subset_numbers_in_the_summary(tmp_path, embedder):
    coco = _coco()
    suite = tmp_path / "data"
    suite.mkdir()
    files = {}
    for j, sub in enumerate(["swap_obj", "replace_att"]):
        data = [{"id": k, "filename": name, "caption": caps[j], "caption2": caps[j + 1],
                 "negative_caption": caps[j].replace("a ", "two ", 1)} for k, (name, caps) in enumerate(coco)]
        files[sub] = data
        (suite / f"{sub}.json").write_text(json.dumps(data))
    summary = eval_suite("sugarcrepe++", str(suite), str(tmp_path / "out"), str(IMAGES), SPEC, progress=False)
    for sub, data in files.items():
        want = official_scpp(data, embedder)
        sub_summary = json.loads((tmp_path / "out" / f"summary_{sub}.json").read_text())
        for k, v in want.items():
            assert summary["metrics"][f"{sub}/{k}"] == pytest.approx(v, abs=1e-12)
            assert sub_summary["metrics"][k] == pytest.approx(v, abs=1e-12)
    assert "pooled_itt_acc" in summary["metrics"]


# ---------------------------------------------------------------------------------------------- Winoground

def test_winoground_breakdowns_by_main_predicates_and_secondary_tag(tmp_path, embedder):
    coco = _coco()
    lines, meta = [], []
    tags = ["Object", "Relation", "Both"]
    secondary = ["", "Symbolic", "Pragmatics", "Symbolic, Series", ""]
    for k in range(8):
        (a, ca), (b, cb) = coco[(2 * k) % len(coco)], coco[(2 * k + 1) % len(coco)]
        ex = {"id": k, "caption_0": ca[0], "caption_1": cb[0], "image_0": Path(a).stem, "image_1": Path(b).stem,
              "tag": tags[k % 3], "secondary_tag": secondary[k % 5], "num_main_preds": 1 + k % 2,
              "collapsed_tag": tags[k % 3]}
        lines.append(json.dumps(ex))
        meta.append((ex, IMAGES / a, IMAGES / b))
    (tmp_path / "images").mkdir()
    for _, pa_, pb in meta:
        for p in (pa_, pb):
            if not (tmp_path / "images" / f"{p.stem}.png").exists():
                from PIL import Image

                Image.open(p).convert("RGB").save(tmp_path / "images" / f"{p.stem}.png")
    (tmp_path / "examples.jsonl").write_text("\n".join(lines) + "\n")
    summary = eval_suite("winoground", str(tmp_path / "examples.jsonl"), str(tmp_path / "out"), spec=SPEC,
                         progress=False)
    # official: winoground's text/image/group scores per example (Thrush et al. 2022, eq. 1-3)
    rows = []
    for ex, _, _ in meta:
        i0, i1 = _img(embedder, [tmp_path / "images" / f"{ex['image_0']}.png",
                                 tmp_path / "images" / f"{ex['image_1']}.png"])
        c0, c1 = embedder.texts([ex["caption_0"], ex["caption_1"]])
        text = c0 @ i0 > c1 @ i0 and c1 @ i1 > c0 @ i1
        image = c0 @ i0 > c0 @ i1 and c1 @ i1 > c1 @ i0
        rows.append((ex, text, image, text and image))
    m = summary["metrics"]
    for n in (1, 2):
        sub = [r for r in rows if r[0]["num_main_preds"] == n]
        assert m[f"num_main_preds={n}/group_score"] == pytest.approx(np.mean([r[3] for r in sub]))
        assert m[f"num_main_preds={n}/text_score"] == pytest.approx(np.mean([r[1] for r in sub]))
    for tag in ("Symbolic", "Pragmatics", "Series"):
        sub = [r for r in rows if tag in r[0]["secondary_tag"]]
        assert m[f"secondary_tag={tag}/image_score"] == pytest.approx(np.mean([r[2] for r in sub]))
    assert m["group_score"] == pytest.approx(np.mean([r[3] for r in rows]))


# ------------------------------------------------------------------------------- COLA, ColorSwap, MMVP-VLM

def test_cola_multiobject_accuracy_is_colas(tmp_path, embedder):
    coco = _coco()
    rows = []
    for k in range(12):
        (a, ca), (b, cb) = coco[k % len(coco)], coco[(k + 5) % len(coco)]
        rows.append([f"https://cs-people.bu.edu/array/data/vg_gqa_images/{a}", ca[0],
                     f"https://cs-people.bu.edu/array/data/vg_gqa_images/{b}", cb[1]])
    (tmp_path / "data").mkdir()
    path = tmp_path / "data" / "COLA_multiobjects_matching_benchmark.json"
    path.write_text(json.dumps(rows))
    summary = eval_suite("cola", str(path), str(tmp_path / "out"), str(IMAGES), SPEC, progress=False)
    accs = []
    for im1, c1, im2, c2 in rows:  # COLA scripts/eval.py ColaMultiObjAcc on preds[image, caption]
        i = _img(embedder, [IMAGES / im1.rsplit("/", 1)[-1], IMAGES / im2.rsplit("/", 1)[-1]])
        t = embedder.texts([c1, c2])
        preds = i @ t.T
        accs.append(preds[0, 0] > preds[1, 0] and preds[1, 1] > preds[0, 1])
    assert summary["metrics"]["acc"] == pytest.approx(np.mean(accs), abs=1e-12)
    assert summary_columns("cola", str(tmp_path / "out")) == {"cola": pytest.approx(np.mean(accs))}


def test_colorswap_scores_are_winogrounds_on_its_own_file(tmp_path, embedder):
    coco = _coco()
    root = tmp_path / "data"
    (root / "images").mkdir(parents=True)
    rows = []
    for k in range(6):
        (a, ca), (b, cb) = coco[2 * k], coco[2 * k + 1]
        for j, src in ((1, a), (2, b)):
            (root / "images" / f"img_{k}_{j}.png").symlink_to((IMAGES / src).resolve())
        rows.append({"id": k, "caption_1": ca[0], "caption_2": cb[0], "image_1": f"images/img_{k}_1.png",
                     "image_2": f"images/img_{k}_2.png", "image_source": ["midjourney", "dalle"][k % 2],
                     "caption_source": "human"})
    (root / "test.json").write_text(json.dumps(rows))
    summary = eval_suite("colorswap", str(root), str(tmp_path / "out"), spec=SPEC, progress=False)
    text, image = [], []
    for r in rows:
        i1, i2 = _img(embedder, [root / r["image_1"], root / r["image_2"]])
        c1, c2 = embedder.texts([r["caption_1"], r["caption_2"]])
        text.append(c1 @ i1 > c2 @ i1 and c2 @ i2 > c1 @ i2)
        image.append(c1 @ i1 > c1 @ i2 and c2 @ i2 > c2 @ i1)
    m = summary["metrics"]
    assert m["text_score"] == pytest.approx(np.mean(text)) and m["image_score"] == pytest.approx(np.mean(image))
    assert m["group_score"] == pytest.approx(np.mean([a and b for a, b in zip(text, image, strict=True)]))
    assert "tag=midjourney/group_score" in m


def official_mmvp(root: Path, emb) -> dict:
    """tsb0601/MMVP scripts/evaluate_vlm.py benchmark_model (l. 14-90), with the model's cosine similarities in
    place of CLIP's logits (a softmax over two images > 0.5 ⇔ the first image's logit is higher)."""
    import csv

    categories = ["Orientation and Direction", "Presence of Specific Features", "State and Condition",
                  "Quantity and Count", "Positional and Relational Context", "Color and Appearance",
                  "Structural Characteristics", "Texts", "Viewpoint and Perspective"]
    pair_accuracies = {category: 0 for category in categories}
    num_pairs = 0
    with open(root / "Questions.csv") as f:
        reader = csv.reader(f)
        next(reader)
        for row in reader:
            qid1, qtype1, statement1 = row
            row = next(reader, None)
            if not row:
                break
            qid2, qtype2, statement2 = row
            qid1, qid2 = int(qid1), int(qid2)
            imgs = _img(emb, [root / "MLLM_VLM Images" / qtype1 / f"{qid1}.jpg",
                              root / "MLLM_VLM Images" / qtype1 / f"{qid2}.jpg"])
            t1, t2 = emb.texts(["a photo of " + statement1, "a photo of " + statement2])
            pred1 = "img1" if t1 @ imgs[0] > t1 @ imgs[1] else "img2"
            pred2 = "img1" if t2 @ imgs[0] > t2 @ imgs[1] else "img2"
            gt1 = "img1" if qid1 % 2 == 1 else "img2"
            gt2 = "img1" if qid2 % 2 == 1 else "img2"
            current_category = categories[num_pairs // 15]
            if pred1 == gt1 and pred2 == gt2:
                pair_accuracies[current_category] += 1
            num_pairs += 1
    for category in pair_accuracies:
        pair_accuracies[category] = (pair_accuracies[category] / (num_pairs // len(categories))) * 100
    return pair_accuracies


def test_mmvp_vlm_pair_accuracy_per_category_is_the_official(tmp_path, embedder):
    from clipcomp.datasets.mmvp import CATEGORIES

    coco = _coco()
    root = tmp_path / "MMVP_VLM"
    lines = ["Question ID,Type,Statement"]
    for k in range(135):
        cat = CATEGORIES[k // 15]
        (root / "MLLM_VLM Images" / cat).mkdir(parents=True, exist_ok=True)
        for j in (0, 1):
            q = 2 * k + 1 + j
            name, caps = coco[(2 * k + j) % len(coco)]
            (root / "MLLM_VLM Images" / cat / f"{q}.jpg").symlink_to((IMAGES / name).resolve())
            statement = caps[k % 5].strip().rstrip(".").lower().replace(",", "")
            lines.append(f"{q},{cat},{statement}")
    (root / "Questions.csv").write_text("\n".join(lines) + "\n")
    summary = eval_suite("mmvp-vlm", str(root), str(tmp_path / "out"), spec=SPEC, progress=False)
    want = official_mmvp(root, embedder)
    details = json.loads((tmp_path / "out" / "details" / "metrics.json").read_text())
    assert {k: 100 * v for k, v in details["per_subset_acc"].items()} == pytest.approx(want, abs=1e-9)
    assert summary["metrics"]["acc"] == pytest.approx(np.mean(list(want.values())) / 100, abs=1e-12)
    cols = summary_columns("mmvp-vlm", str(tmp_path / "out"))
    assert len([c for c in cols if c.startswith("mmvp-vlm/")]) == 10  # 9 categories + pooled


@pytest.mark.parametrize("suite,content,name,expected", [
    ("mmvp-vlm", None, "folder", "no Questions.csv (MMVP-VLM layout"),
    ("cola", {"a": 1}, "cola.json", "expected COLA multi-object JSON"),
    ("colorswap", [{"id": 0, "caption_1": "x"}], "test.json", "lacks caption_2, image_1, image_2"),
    ("coco-order", {"images": []}, "coco_karpathy_test.json", "expected ARO's coco_karpathy_test.json"),
    ("valse", {"k": {"caption": "c"}}, "existence.json", "lacks image_file, caption or foil"),
])
def test_a_suite_file_in_another_format_is_one_line(tmp_path, capsys, suite, content, name, expected):
    from conftest import run_cli

    path = tmp_path / name
    if content is None:
        path.mkdir()
    else:
        path.write_text(json.dumps(content))
    code, _, err = run_cli(["eval", "suite", suite, str(path), "--images", str(IMAGES), "-o",
                            str(tmp_path / "out"), "--model", "clipcomp-micro"], capsys)
    assert code == 2 and expected in " ".join(err.split()) and len(err.strip().splitlines()) == 1, err


# ---------------------------------------------------------------------------------------------------- CREPE

def official_crepe(rows: list[dict], neg_key: str, emb, image_root: Path, tmp: Path) -> dict:
    """RAIVNLab/CREPE crepe_compo_eval_open_clip.py (CsvDataset l. 40-52, evaluate l. 88-140) with
    crepe_eval_utils.get_one2many_rank / get_one2many_metrics (l. 62-75), batch size 1."""
    import ast

    import torch
    from PIL import Image

    ranks = []
    for k, r in enumerate(rows):
        raw = Image.open(image_root / "VG_100K" / f"{r['image_id']}.jpg").convert("RGB")
        x, y, w, h = r["x"], r["y"], r["width"], r["height"]
        raw = raw.crop((x, y, x + w, y + h))  # TF.crop(raw_image, y, x, h, w) on a PIL image
        p = tmp / f"crop-{neg_key}-{k}.png"
        raw.save(p)
        image_features = torch.tensor(_img(emb, [p]))
        text_features = torch.tensor(emb.texts([str(r["caption"])] + list(ast.literal_eval(r[neg_key]))))
        logits_per_image = image_features @ text_features.t()
        ranking = torch.argsort(logits_per_image, descending=True)
        ranks.append(torch.where(ranking == 0)[1].numpy())
    preds = np.array(ranks)
    return {**{f"image_to_text_R@{k}": float(np.mean(preds < k)) for k in (1, 3, 5, 10)},
            "image_to_text_mean_rank": float(preds.mean() + 1)}


def test_crepe_ranks_as_crepe_on_its_csvs(tmp_path, embedder):
    import csv

    coco = _coco()
    vg = tmp_path / "vg"
    (vg / "VG_100K").mkdir(parents=True)
    for name, _ in coco:
        (vg / "VG_100K" / f"{int(Path(name).stem)}.jpg").symlink_to((IMAGES / name).resolve())
    rows = []
    for k, (name, caps) in enumerate(coco):
        negs = [c for j, (_, cs) in enumerate(coco) if j != k for c in cs[:1]][: 4 + k % 5]
        rows.append({"image_id": int(Path(name).stem), "caption": caps[0], "x": 5 + k, "y": 10, "width": 200,
                     "height": 150, "valid_hard_negs_atom": repr(negs[:3]), "valid_hard_negs_comp": repr(negs),
                     "valid_hard_negs_combined": repr(negs[::-1]), "hard_negs": repr(negs[1:])})
    root = tmp_path / "crepe"
    (root / "syst").mkdir(parents=True)
    (root / "prod" / "atom").mkdir(parents=True)
    syst = root / "syst" / "syst_vg_hard_negs_seen_compounds_in_laion.csv"
    prod = root / "prod" / "atom" / "prod_vg_hard_negs_atom_complexity_4.csv"
    for path, keys in ((syst, ["valid_hard_negs_atom", "valid_hard_negs_comp", "valid_hard_negs_combined"]),
                       (prod, ["hard_negs"])):
        with open(path, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=["image_id", "caption", "x", "y", "width", "height", *keys])
            w.writeheader()
            for r in rows:
                w.writerow({k: r[k] for k in w.fieldnames})
    summary = eval_suite("crepe", str(root), str(tmp_path / "out"), str(vg), SPEC, progress=False)
    details = json.loads((tmp_path / "out" / "details" / "metrics.json").read_text())
    want = {"syst_vg_hard_negs_seen_compounds_in_laion/atom": "valid_hard_negs_atom",
            "syst_vg_hard_negs_seen_compounds_in_laion/comp": "valid_hard_negs_comp",
            "syst_vg_hard_negs_seen_compounds_in_laion/combined": "valid_hard_negs_combined",
            "prod_vg_hard_negs_atom_complexity_4": "hard_negs"}
    assert set(details["per_subset_metrics"]) == set(want)
    for subset, key in want.items():
        official = official_crepe(rows, key, embedder, vg, tmp_path)
        for m, v in official.items():
            assert details["per_subset_metrics"][subset][m] == pytest.approx(v, abs=1e-12), (subset, m)
    assert summary["metrics"]["acc"] == pytest.approx(
        np.mean([details["per_subset_metrics"][s]["image_to_text_R@1"] for s in want]))


# --------------------------------------------------------------------------------------------- VL-CheckList

def official_vl_checklist_itc(root: Path, dataset: Path, type_: str, name: str, emb, max_num: int = 2000) -> float:
    """om-ai-lab/VL-CheckList data_loader.load_itc_samples (l. 41-57) + evaluate.py itc (l. 97-125), with the
    model's similarities as the scores."""
    import yaml

    config = yaml.load((root / "corpus" / "v1" / type_ / f"{name}.yaml").read_text(), Loader=yaml.FullLoader)
    m = json.loads((root / config["ANNO_PATH"]).read_text())
    data = []
    for x in m:
        path, texts_dict = x
        path = os.path.join(dataset, config["IMG_ROOT"], path)
        if os.path.exists(path):
            data.append({"path": path, "texts_pos": texts_dict["POS"], "texts_neg": texts_dict["NEG"]})
    data = data[:int(max_num / 2)]
    num_t = num_f = 0
    for z in data:
        im = _img(emb, [z["path"]])[0]
        pos, neg = emb.texts([z["texts_pos"][0], z["texts_neg"][0]])
        if im @ pos > im @ neg:
            num_t += 1
        else:
            num_f += 1
    return num_t / (num_t + num_f)


def test_vl_checklist_itc_accuracy_per_corpus(tmp_path, embedder):
    coco = _coco()
    root, dataset = tmp_path / "VL-CheckList", tmp_path / "DATASET"
    (dataset / "vg" / "VG_100K").mkdir(parents=True)
    for name, _ in coco:
        (dataset / "vg" / "VG_100K" / name).symlink_to((IMAGES / name).resolve())
    specs = {("Attribute/color", "vg"): "data/Attribute/vg/color.json",
             ("Object/Size/large", "vg_obj"): "data/Object/Size/vg_size/vg_obj_large.json",
             ("Relation", "vg_spatial"): "data/Relation/vg/spatial.json"}
    for (type_, name), anno in specs.items():
        (root / "corpus" / "v1" / type_).mkdir(parents=True, exist_ok=True)
        (root / "corpus" / "v1" / type_ / f"{name}.yaml").write_text(
            f'ANNO_PATH: "{anno}"\nIMG_ROOT: "vg"\nTYPE: "TUPLE_JSON"')
        (root / anno).parent.mkdir(parents=True, exist_ok=True)
        items = [[f"VG_100K/{n}", {"POS": [caps[0]], "NEG": [caps[0].replace("a ", "two ", 1), "x"]}]
                 for n, caps in coco]
        items.append(["VG_100K/missing.jpg", {"POS": ["a"], "NEG": ["b"]}])  # left out, as the official loader does
        (root / anno).write_text(json.dumps(items))
    summary = eval_suite("vl-checklist", str(root), str(tmp_path / "out"), str(dataset), SPEC, progress=False)
    details = json.loads((tmp_path / "out" / "details" / "metrics.json").read_text())
    want = {f"{t}/{n}": official_vl_checklist_itc(root, dataset, t, n, embedder) for (t, n) in specs}
    assert details["per_subset_acc"] == pytest.approx(want, abs=1e-12)
    m = summary["metrics"]
    assert m["n_missing_images"] == 3 and m["Object_acc"] == pytest.approx(want["Object/Size/large/vg_obj"])
    assert m["acc"] == pytest.approx(np.mean(list(want.values())))
    assert set(summary_columns("vl-checklist", str(tmp_path / "out"))) == {
        "vl-checklist", "vl-checklist/Object", "vl-checklist/Attribute", "vl-checklist/Relation"}


# --------------------------------------------------------------------------------------------------- EqBen

def official_eqben(submission_score: np.ndarray, private_idx: list, private_info: list) -> dict:
    """Wangt-CN/EqBen evaluate_eqben_locally.py (l. 24-80), on a score per annotation row."""
    recover_idx = np.argsort(private_idx)
    score_list_recover = submission_score[recover_idx]
    sample_length = len(submission_score) // 4
    score_list_dataset = {"c0i0": np.zeros(sample_length), "c0i1": np.zeros(sample_length),
                          "c1i0": np.zeros(sample_length), "c1i1": np.zeros(sample_length)}
    spans: dict = {}
    for idx, (every_score, every_info) in enumerate(zip(score_list_recover, private_info, strict=True)):
        score_list_dataset[every_info["name"]][every_info["sample_cnt"]] = every_score
        if every_info["dataset"] not in spans:
            spans[every_info["dataset"]] = {"start": idx, "end": idx + 1}
        else:
            spans[every_info["dataset"]]["end"] += 1
    scores = {}
    for dataset, span in spans.items():
        r = {j: k[span["start"] // 4:span["end"] // 4] for j, k in score_list_dataset.items()}
        text = np.logical_and(r["c0i0"] > r["c1i0"], r["c1i1"] > r["c0i1"])
        image = np.logical_and(r["c0i0"] > r["c0i1"], r["c1i1"] > r["c1i0"])
        scores[dataset] = {"text": text.sum() / len(text), "image": image.sum() / len(image),
                           "group": np.logical_and(image, text).sum() / len(text)}
    return scores


def test_eqben_group_scores_per_subset_are_the_official(tmp_path, embedder):
    coco = _coco()
    pairs, info = [], []
    n_samples = 8
    for k in range(n_samples):  # samples 0-4 in one sub-dataset, 5-7 in another, stored in that order
        dataset = "eqbenkubric_attr" if k < 5 else "eqbensd"
        (a, ca), (b, cb) = coco[(2 * k) % len(coco)], coco[(2 * k + 1) % len(coco)]
        for name, (img, cap) in (("c0i0", (a, ca[0])), ("c0i1", (b, ca[0])), ("c1i0", (a, cb[0])),
                                 ("c1i1", (b, cb[0]))):
            pairs.append({"image": f"{dataset}/{img}", "caption": cap})
            info.append({"dataset": dataset, "name": name, "sample_cnt": k})
    rng = np.random.default_rng(0)
    shuffle = rng.permutation(len(pairs))  # the public annotation is shuffled; private_random_idx undoes it
    ann = [pairs[i] for i in shuffle]
    root = tmp_path / "eqben"
    (root / "src_file").mkdir(parents=True)
    (root / "ann_json_finegrained_random.json").write_text(json.dumps(ann))
    (root / "src_file" / "private_random_idx.json").write_text(json.dumps([int(i) for i in shuffle]))
    (root / "src_file" / "private_info.json").write_text(json.dumps(info))
    images = tmp_path / "images"
    for d in ("eqbenkubric_attr", "eqbensd"):
        (images / d).mkdir(parents=True)
        for name, _ in coco:
            (images / d / name).symlink_to((IMAGES / name).resolve())
    summary = eval_suite("eqben", str(root / "ann_json_finegrained_random.json"), str(tmp_path / "out"),
                         str(images), SPEC, progress=False)
    im = _img(embedder, [images / r["image"] for r in ann])
    tx = embedder.texts([r["caption"] for r in ann])
    want = official_eqben(np.einsum("nd,nd->n", im, tx), [int(i) for i in shuffle], info)
    for d, v in want.items():
        for k in ("text", "image", "group"):
            assert summary["metrics"][f"{d}/{k}_score"] == pytest.approx(v[k], abs=1e-12)
    assert summary["metrics"]["acc"] == pytest.approx(np.mean([v["group"] for v in want.values()]))


# ---------------------------------------------------------------------------------------------- SVO-Probes

def official_svo_accuracy(rows: list[dict]) -> tuple[float, float, float]:
    """google-deepmind/svo_probes probing_image_text_models.ipynb `accuracy(frame)`: drop_duplicates on
    (sentence, neg_image_id, neg_scores) and (sentence, pos_image_id, pos_scores); macro of pos and neg."""
    neg, pos = [], []
    for r in rows:
        if (r["sentence"], r["neg_image_id"], r["neg_scores"]) not in [(x["sentence"], x["neg_image_id"],
                                                                       x["neg_scores"]) for x in neg]:
            neg.append(r)
        if (r["sentence"], r["pos_image_id"], r["pos_scores"]) not in [(x["sentence"], x["pos_image_id"],
                                                                       x["pos_scores"]) for x in pos]:
            pos.append(r)
    neg_acc = np.mean([x["neg_scores"] == 0 for x in neg])
    pos_acc = np.mean([x["pos_scores"] == 1 for x in pos])
    return (neg_acc + pos_acc) / 2, pos_acc, neg_acc


def test_svo_probes_pairwise_and_the_notebooks_metrics(tmp_path, embedder):
    import csv

    coco = _coco()
    images = tmp_path / "svo_images"
    images.mkdir()
    ids = []
    for k, (name, _) in enumerate(coco):
        (images / f"{1000 + k}.jpg").symlink_to((IMAGES / name).resolve())
        ids.append(1000 + k)
    rows = []
    for k, (_, caps) in enumerate(coco):
        flags = [(True, False, False), (False, True, False), (False, False, True), (True, True, False)][k % 4]
        for j in (1, 2):  # two negatives per sentence: the positive (sentence, image) pair repeats
            rows.append({"sentence": caps[0], "pos_triplet": "a,b,c", "neg_triplet": "a,d,c",
                         "subj_neg": flags[0], "verb_neg": flags[1], "obj_neg": flags[2],
                         "pos_url": "http://x/p.jpg", "neg_url": "http://x/n.jpg", "pos_image_id": ids[k],
                         "neg_image_id": ids[(k + j) % len(ids)]})
    path = tmp_path / "svo" / "svo_probes.csv"
    path.parent.mkdir()
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    im = {i: _img(embedder, [images / f"{i}.jpg"])[0] for i in ids}

    def score(sentence, image_id):
        return float(embedder.texts([sentence])[0] @ im[image_id])

    scored = [{**r, "pos_s": score(r["sentence"], r["pos_image_id"]), "neg_s": score(r["sentence"], r["neg_image_id"])}
              for r in rows]
    threshold = float(np.median([r["pos_s"] for r in scored] + [r["neg_s"] for r in scored]))  # both outcomes occur
    summary = eval_suite("svo-probes", str(path), str(tmp_path / "out"), str(images),
                         SPEC, options={"threshold": threshold}, progress=False)
    for r in scored:
        r["pos_scores"], r["neg_scores"] = int(r["pos_s"] >= threshold), int(r["neg_s"] >= threshold)
    frames = {"subj": [r for r in scored if r["subj_neg"] and not r["obj_neg"] and not r["verb_neg"]],
              "verb": [r for r in scored if r["verb_neg"] and not r["obj_neg"] and not r["subj_neg"]],
              "obj": [r for r in scored if r["obj_neg"] and not r["verb_neg"] and not r["subj_neg"]]}
    frames["all"] = frames["subj"] + frames["verb"] + frames["obj"]
    m = summary["metrics"]
    for g, fr in frames.items():
        acc, pos_acc, neg_acc = official_svo_accuracy(fr)
        assert m[f"{g}/official_acc"] == pytest.approx(acc) and m[f"{g}/official_pos_acc"] == pytest.approx(pos_acc)
        assert m[f"{g}/pairwise_acc"] == pytest.approx(np.mean([r["pos_s"] > r["neg_s"] for r in fr]))
    assert m["acc"] == pytest.approx(m["all/pairwise_acc"])


def test_new_suites_inside_one_eval_suites_table(tmp_path, capsys):
    """The new suites run inside `eval suites` too: one row per model, their columns in the table."""
    from conftest import run_cli

    coco = _coco()
    cola = tmp_path / "cola.json"
    cola.write_text(json.dumps([[a, ca[0], b, cb[0]] for (a, ca), (b, cb) in zip(coco[::2], coco[1::2], strict=True)]))
    root = tmp_path / "colorswap"
    (root / "images").mkdir(parents=True)
    rows = []
    for k in range(4):
        (a, ca), (b, cb) = coco[2 * k], coco[2 * k + 1]
        (root / "images" / f"img_{k}_1.png").symlink_to((IMAGES / a).resolve())
        (root / "images" / f"img_{k}_2.png").symlink_to((IMAGES / b).resolve())
        rows.append({"id": k, "caption_1": ca[0], "caption_2": cb[0], "image_1": f"images/img_{k}_1.png",
                     "image_2": f"images/img_{k}_2.png", "image_source": "midjourney"})
    (root / "test.json").write_text(json.dumps(rows))
    cfg = tmp_path / "suites.yaml"
    cfg.write_text(f"""
models:
  - {{name: micro-a, model: clipcomp-micro, seed: 0}}
  - {{name: micro-b, model: clipcomp-micro, seed: 1}}
suites:
  - {{suite: cola, path: {cola}, images: {IMAGES}}}
  - {{suite: colorswap, path: {root}}}
settings: {{batch_size: 16, device: cpu}}
""")
    code, _, err = run_cli(["eval", "suites", str(cfg), "-o", str(tmp_path / "out"), "-q"], capsys)
    assert code == 0, err
    import pyarrow.csv as pacsv

    table = pacsv.read_csv(tmp_path / "out" / "table.csv")
    assert table.column("model").to_pylist() == ["micro-a", "micro-b"]
    assert {"cola", "colorswap/text", "colorswap/image", "colorswap/group"} <= set(table.column_names)


def test_eval_suite_takes_suite_options_on_the_command_line(tmp_path, capsys):
    from conftest import run_cli

    coco = _coco()
    obj = {f"v{k}": {"image_file": name, "caption": caps[0], "foil": caps[1], "mturk": {"caption": k % 3}}
           for k, (name, caps) in enumerate(coco)}
    (tmp_path / "existence.json").write_text(json.dumps(obj))
    args = ["eval", "suite", "valse", str(tmp_path / "existence.json"), "--images", str(IMAGES), "--model",
            "clipcomp-micro", "-q"]
    code, _, err = run_cli([*args, "-o", str(tmp_path / "valid")], capsys)
    assert code == 0, err
    code, _, err = run_cli([*args, "-o", str(tmp_path / "all"), "--option", "valid_only=false"], capsys)
    assert code == 0, err
    n_valid = json.loads((tmp_path / "valid" / "summary.json").read_text())["n_items"]
    n_all = json.loads((tmp_path / "all" / "summary.json").read_text())["n_items"]
    assert n_valid == sum(k % 3 >= 2 for k in range(len(coco))) and n_all == len(coco)
    code, _, err = run_cli([*args, "-o", str(tmp_path / "x"), "--option", "nonsense"], capsys)
    assert code == 2 and "expected KEY=VALUE" in err
