"""ARO (Yuksekgonul et al. 2023, "When and why vision-language models behave like bags-of-words") in its
official files: VG-Relation (`visual_genome_relation.json`) and VG-Attribution
(`visual_genome_attribution.json`) — lists of {image_path | image_id, bbox_x, bbox_y, bbox_w, bbox_h,
true_caption, false_caption, relation_name | attributes} whose images are cropped to the box, as ARO does —
and COCO-Order / Flickr30k-Order from ARO's own coco_karpathy_test.json / flickr30k_test.json, which ARO turns
into one item per caption with four word-order perturbations (nouns among nouns and adjectives among adjectives;
everything but nouns and adjectives; words within trigrams; trigrams): the image must prefer its caption.
Every rule — the crop, the subsets, the tie rule, the macro accuracies, the perturbations and their seed — is
ARO's code's, cited where it is implemented.
"""

from __future__ import annotations

import os

import numpy as np

from clipcomp.datasets.common import crop_box, resolve
from clipcomp.datasets.selection import SelectionData
from clipcomp.errors import ClipcompError
from clipcomp.io import read_json


def _crop(path: str, box: tuple[float, float, float, float], crop_dir: str) -> str:
    """ARO: image.crop((x, y, x + w, y + h)) on the RGB image, PIL's own rounding (aro_datasets.py l. 55-57)."""
    return crop_box(path, box, crop_dir, "ARO")


# ARO's notebook "Replicate ARO! VG-Relation, VG-Attribution.ipynb" (cell 5) drops these relations from the
# VG-Relation macro accuracy: swapping their arguments does not make a false caption.
SYMMETRIC_RELATIONS = (
    'adjusting', 'attached to', 'between', 'bigger than', 'biting', 'boarding', 'brushing', 'chewing', 'cleaning',
    'climbing', 'close to', 'coming from', 'coming out of', 'contain', 'crossing', 'dragging', 'draped over',
    'drinking', 'drinking from', 'driving', 'driving down', 'driving on', 'eating from', 'eating in', 'enclosing',
    'exiting', 'facing', 'filled with', 'floating in', 'floating on', 'flying', 'flying above', 'flying in',
    'flying over', 'flying through', 'full of', 'going down', 'going into', 'going through', 'grazing in',
    'growing in', 'growing on', 'guiding', 'hanging from', 'hanging in', 'hanging off', 'hanging over',
    'higher than', 'holding onto', 'hugging', 'in between', 'jumping off', 'jumping on', 'jumping over', 'kept in',
    'larger than', 'leading', 'leaning over', 'leaving', 'licking', 'longer than', 'looking in', 'looking into',
    'looking out', 'looking over', 'looking through', 'lying next to', 'lying on top of', 'making', 'mixed with',
    'mounted on', 'moving', 'on the back of', 'on the edge of', 'on the front of', 'on the other side of',
    'opening', 'painted on', 'parked at', 'parked beside', 'parked by', 'parked in', 'parked in front of',
    'parked near', 'parked next to', 'perched on', 'petting', 'piled on', 'playing', 'playing in', 'playing on',
    'playing with', 'pouring', 'reaching for', 'reading', 'reflected on', 'riding on', 'running in', 'running on',
    'running through', 'seen through', 'sitting behind', 'sitting beside', 'sitting by', 'sitting in front of',
    'sitting near', 'sitting next to', 'sitting under', 'skiing down', 'skiing on', 'sleeping in', 'sleeping on',
    'smiling at', 'sniffing', 'splashing', 'sprinkled on', 'stacked on', 'standing against', 'standing around',
    'standing behind', 'standing beside', 'standing in front of', 'standing near', 'standing next to',
    'staring at', 'stuck in', 'surrounding', 'swimming in', 'swinging', 'talking to', 'topped with', 'touching',
    'traveling down', 'traveling on', 'tying', 'typing on', 'underneath', 'wading in', 'waiting for',
    'walking across', 'walking by', 'walking down', 'walking next to', 'walking through', 'working in',
    'working on', 'worn on', 'wrapped around', 'wrapped in', 'by', 'of', 'near', 'next to', 'with', 'beside',
    'on the side of', 'around')
# dataset_zoo/aro_datasets.py VG_Attribution.evaluate_scores (l. 181-184): pairs with fewer items are not reported
MIN_ATTRIBUTION_ITEMS = 25


def load_vg(path: str, image_root: str, crop_dir: str, kind: str = "relation") -> SelectionData:
    """VG-Relation (subset = relation_name) or VG-Attribution (subset = `attr0_attr1`, ARO's
    `f"{item['attributes'][0]}_{item['attributes'][1]}"`), scored as ARO does: correct when the true caption
    scores strictly above the false one (argmax over [false, true]: a tie picks the false caption); the headline
    is ARO's macro accuracy — VG-Relation without SYMMETRIC_RELATIONS, VG-Attribution over pairs with ≥ 25 items."""
    items = read_json(path)
    if not isinstance(items, list) or not items or not isinstance(items[0], dict):
        raise ClipcompError(f"{path}: expected ARO VG JSON (a list of {{image_path, bbox_x, ..., true_caption, "
                            "false_caption}})")
    if kind == "relation":
        data = SelectionData("aro/vg_relation", [], [], [], [], [], headline="macro",
                             macro_exclude=SYMMETRIC_RELATIONS,
                             headline_note="macro accuracy over relations, symmetric relations left out (ARO)")
    else:
        data = SelectionData("aro/vg_attribution", [], [], [], [], [], headline="macro",
                             min_subset_items=MIN_ATTRIBUTION_ITEMS,
                             headline_note="macro accuracy over attribute pairs with ≥ 25 items (ARO)")
    for i, it in enumerate(items):
        missing = [k for k in ("bbox_x", "bbox_y", "bbox_w", "bbox_h", "true_caption", "false_caption") if k not in it]
        if missing or not ("image_path" in it or "image_id" in it):
            raise ClipcompError(f"{path}: item {i} lacks {', '.join(missing) or 'image_path'} (ARO VG format)")
        image = it.get("image_path") or f"{it['image_id']}.jpg"
        src = resolve(str(image), image_root)
        box = (float(it["bbox_x"]), float(it["bbox_y"]), float(it["bbox_w"]), float(it["bbox_h"]))
        if kind == "relation":
            subset = str(it.get("relation_name", "relation"))
        else:
            attrs = it.get("attributes")
            if not isinstance(attrs, list) or len(attrs) < 2:
                raise ClipcompError(f"{path}: item {i} lacks its two attributes (ARO VG-Attribution format)")
            subset = f"{attrs[0]}_{attrs[1]}"
        data.ids.append(str(i))
        data.subsets.append(subset)
        data.paths.append(_crop(src, box, crop_dir) if os.path.exists(src) else src)
        data.positives.append(it["true_caption"])
        data.negatives.append([it["false_caption"]])
    return data


# ------------------------------------------------------------------------------------- order perturbations
#
# ARO's own construction (mertyg/vision-language-models-are-bows): dataset_zoo/aro_datasets.py COCO_Order /
# Flickr30k_Order (l. 196-347) make one test case per caption of every image in coco_karpathy_test.json /
# flickr30k_test.json: caption_options = [pre_caption(caption, 30)] + [pre_caption(f(caption), 30) for f in
# (shuffle_nouns_and_adj, shuffle_allbut_nouns_and_adj, shuffle_within_trigrams, shuffle_trigrams)], scored
# correct when argmax over the options is 0 — a perturbation identical to the caption ties and, argmax taking
# the first maximum, counts as correct. The shufflers (dataset_zoo/perturbations.py, TextShuffler l. 44-117) draw
# from numpy's and Python's global generators, which main_aro.py seeds with --seed 1 (misc.seed_all); here they
# are explicit generators with that seed, drawn in the same order, so the perturbed texts are ARO's.

ARO_SEED = 1  # main_aro.py: parser.add_argument("--seed", default=1)
NOUN_TAGS = ("NN", "NNS", "NNP", "NNPS")
ADJ_TAGS = ("JJ", "JJR", "JJS")


def pre_caption(caption: str, max_words: int = 30) -> str:
    """ARO's caption cleaning (dataset_zoo/retrieval.py l. 15-34): lower-case, `.!"()*#:;~` to spaces, spaces
    collapsed, at most `max_words` words."""
    import re

    caption = re.sub(r"([.!\"()*#:;~])", " ", caption.lower())
    caption = re.sub(r"\s{2,}", " ", caption)
    caption = caption.rstrip("\n").strip(" ")
    words = caption.split(" ")
    return " ".join(words[:max_words]) if len(words) > max_words else caption


def _trigrams(tokens: list[str]) -> list[list[str]]:
    """TextShuffler.get_trigrams: consecutive groups of three, the last one shorter."""
    return [tokens[i:i + 3] for i in range(0, len(tokens), 3)]


class AroShuffler:
    """TextShuffler's four perturbations with its generators made explicit (numpy's for the spaCy-tag
    shuffles, Python's for the trigram ones). Word tokens for the trigram shuffles come from NLTK's word
    tokenizer on the caption as one line (`preserve_line=True`): `nltk.word_tokenize` would first split
    sentences with the Punkt model, which is a download; captions are one sentence, so the tokens agree."""

    def __init__(self, seed: int = ARO_SEED):
        import random

        self.np = np.random.RandomState(seed)
        self.py = random.Random(seed)

    def nouns_and_adj(self, doc) -> str:
        text = np.array([t.text for t in doc])
        noun = [i for i, t in enumerate(doc) if t.tag_ in NOUN_TAGS]
        adj = [i for i, t in enumerate(doc) if t.tag_ in ADJ_TAGS]
        if len(text):
            text[noun] = self.np.permutation(text[noun])
            text[adj] = self.np.permutation(text[adj])
        else:  # the draws happen all the same
            self.np.permutation(0), self.np.permutation(0)
        return " ".join(text)

    def allbut_nouns_and_adj(self, doc) -> str:
        text = np.array([t.text for t in doc])
        keep = np.ones(len(text), bool)
        keep[[i for i, t in enumerate(doc) if t.tag_ in NOUN_TAGS + ADJ_TAGS]] = False
        if len(text):
            text[keep] = self.np.permutation(text[keep])
        else:
            self.np.permutation(0)
        return " ".join(text)

    def within_trigrams(self, tokens: list[str]) -> str:
        trigrams = _trigrams(list(tokens))
        for t in trigrams:
            self.py.shuffle(t)
        return " ".join(" ".join(t) for t in trigrams)

    def trigrams(self, tokens: list[str]) -> str:
        trigrams = _trigrams(list(tokens))
        self.py.shuffle(trigrams)
        return " ".join(" ".join(t) for t in trigrams)


def order_items(captions: list[str], seed: int = ARO_SEED, max_words: int = 30) -> list[list[str]]:
    """ARO's caption options for each caption in order: [caption, 4 perturbations], all through pre_caption."""
    from nltk.tokenize import word_tokenize

    from clipcomp.nlp import nlp

    sh = AroShuffler(seed)
    out = []
    for caption, doc in zip(captions, nlp().pipe(captions, batch_size=256), strict=True):
        tokens = word_tokenize(caption, preserve_line=True)
        options = [sh.nouns_and_adj(doc), sh.allbut_nouns_and_adj(doc), sh.within_trigrams(tokens),
                   sh.trigrams(tokens)]
        out.append([pre_caption(caption, max_words)] + [pre_caption(o, max_words) for o in options])
    return out


def build_order(captions: list[tuple[str, str]], name: str, seed: int = ARO_SEED) -> SelectionData:
    """COCO-Order / Flickr-Order from (image path, caption) pairs in file order: one item per caption, the
    caption against its four perturbations; a tie counts as correct (ARO's argmax), identical perturbations kept."""
    if not captions:
        raise ClipcompError(f"{name}: no captions")
    options = order_items([c for _, c in captions], seed)
    data = SelectionData(name, [], [], [], [], [], ties_correct=True)
    subset = name.split("/")[-1]
    for i, ((image, _), opts) in enumerate(zip(captions, options, strict=True)):
        data.ids.append(str(i))
        data.subsets.append(subset)
        data.paths.append(image)
        data.positives.append(opts[0])
        data.negatives.append(opts[1:])
    return data


def read_karpathy(path: str, image_root: str, name: str) -> list[tuple[str, str]]:
    """ARO's own test files (coco_karpathy_test.json, flickr30k_test.json): a list of {image, caption: [...]};
    every caption of every image, in file order."""
    obj = read_json(path)
    if not isinstance(obj, list) or not obj or not isinstance(obj[0], dict):
        raise ClipcompError(f"{path}: expected ARO's {name} file (a list of {{image, caption: [...]}}, e.g. "
                            "coco_karpathy_test.json / flickr30k_test.json) or a COCO captions JSON")
    pairs = []
    for i, ann in enumerate(obj):
        caps = ann.get("caption") if isinstance(ann, dict) else None
        if not isinstance(ann, dict) or "image" not in ann or caps is None:
            raise ClipcompError(f"{path}: entry {i} lacks image or caption (ARO's {name} format: "
                                "{image, caption: [...]})")
        for c in [caps] if isinstance(caps, str) else caps:
            pairs.append((resolve(str(ann["image"]), image_root), str(c)))
    return pairs


def coco_order(annotations: str, image_root: str, per_image: int | None = None, seed: int = ARO_SEED) -> SelectionData:
    """COCO-Order from ARO's coco_karpathy_test.json (as ARO reads it), or from a COCO captions JSON (images,
    annotations: each image's captions by annotation id; `per_image` keeps only the first few)."""
    obj = read_json(annotations)
    if isinstance(obj, list):
        return build_order(read_karpathy(annotations, image_root, "COCO-Order"), "aro/coco_order", seed)
    if not isinstance(obj, dict) or "annotations" not in obj or "images" not in obj:
        raise ClipcompError(f"{annotations}: expected ARO's coco_karpathy_test.json (a list of {{image, caption}}) "
                            "or a COCO captions JSON (images, annotations)")
    files = {im["id"]: im["file_name"] for im in obj["images"]}
    seen: dict[int, int] = {}
    pairs = []
    for ann in sorted(obj["annotations"], key=lambda a: (a["image_id"], a["id"])):
        k = seen.get(ann["image_id"], 0)
        if (per_image is None or k < per_image) and ann["image_id"] in files:
            seen[ann["image_id"]] = k + 1
            pairs.append((resolve(files[ann["image_id"]], image_root), ann["caption"]))
    return build_order(pairs, "aro/coco_order", seed)


def flickr_order(captions_file: str, image_root: str, per_image: int | None = None,
                 seed: int = ARO_SEED) -> SelectionData:
    """Flickr-Order from ARO's flickr30k_test.json (as ARO reads it), or from Flickr caption lists:
    `image.jpg#k<TAB>caption` lines or a table with image, caption columns."""
    from clipcomp.io import read_table

    if captions_file.endswith(".json"):
        return build_order(read_karpathy(captions_file, image_root, "Flickr30k-Order"), "aro/flickr30k_order", seed)
    pairs: list[tuple[str, str]] = []
    seen: dict[str, int] = {}
    if captions_file.endswith((".csv", ".parquet", ".jsonl")):
        t = read_table(captions_file)
        rows = zip(t.column("image").to_pylist(), t.column("caption").to_pylist(), strict=True)
    else:
        with open(captions_file, encoding="utf-8") as f:
            rows = [(ln.split("\t", 1)[0].split("#")[0], ln.split("\t", 1)[1]) for ln in f.read().splitlines()
                    if "\t" in ln]
    for image, cap in rows:
        k = seen.get(image, 0)
        if per_image is None or k < per_image:
            seen[image] = k + 1
            pairs.append((resolve(image, image_root), cap))
    if not pairs:
        raise ClipcompError(f"{captions_file}: no (image, caption) rows (expected ARO's flickr30k_test.json, "
                            "`image.jpg#0<TAB>caption` lines or an image, caption table)")
    return build_order(pairs, "aro/flickr30k_order", seed)


def open_vg_relation(path: str, images: str | None, options: dict, cache: str) -> SelectionData:
    """ARO VG-Relation; the box crops go to the suite's cache directory (never the output directory)."""
    return load_vg(path, images, os.path.join(cache, "crops"), "relation")


def open_vg_attribution(path: str, images: str | None, options: dict, cache: str) -> SelectionData:
    return load_vg(path, images, os.path.join(cache, "crops"), "attribution")


def open_coco_order(path: str, images: str | None, options: dict, cache: str) -> SelectionData:
    from clipcomp.datasets.coco import default_image_root

    per = options.get("per_image")
    return coco_order(path, images or default_image_root(path), None if per is None else int(per),
                      int(options.get("aro_seed", ARO_SEED)))


def open_flickr_order(path: str, images: str | None, options: dict, cache: str) -> SelectionData:
    per = options.get("per_image")
    return flickr_order(path, images, None if per is None else int(per), int(options.get("aro_seed", ARO_SEED)))
