"""Where a real caption corpus sits on the binding lab's knobs (Gurung et al. 2025; clipcomp.synth.captions):

- attribute density — adjectives (`amod`) per named object (noun-chunk head); the lab world has two attribute
  slots (size, colour), so a lab setting d gives 2·d;
- completeness — the share of an image's annotated object categories the caption names (needs object
  annotations, e.g. COCO instances; a noun names a category by its lemma, an alias, or a WordNet hyponym of the
  category's synset — "man" names person, "puppy" dog);
- saliency bias — for captions that name some but not all annotated categories: is a largest object's category
  among the named ones, beside the chance that a random choice of as many categories would include it;
- word order — for captions naming ≥ 2 categories that each have one instance: are they mentioned left to right.

`measure_knobs(inputs, out, …)` streams captions through the statistics engine's readers (any text corpus) or a
COCO captions JSON with its instances file, parses and measures them with spaCy in `workers` processes, and
writes OUT/captions.parquet (one row per caption), OUT/knobs.json and OUT/knobs.md (corpus means with 95%
intervals). `knobs_of_docs` is the per-caption step, shared with the synthetic captions it is compared with.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np

from clipcomp.errors import ClipcompError

# COCO category names → words captions use for them that WordNet's hyponymy does not reach (head words of
# two-word names, spelling variants). A user matcher takes its own aliases.
COCO_ALIASES = {
    "dining table": ["table"], "wine glass": ["glass"], "cell phone": ["phone", "cellphone", "smartphone"],
    "potted plant": ["plant", "houseplant"], "hair drier": ["hair dryer", "dryer", "blow dryer", "hairdryer"],
    "sports ball": ["ball", "football", "soccer ball", "baseball", "tennis ball"], "teddy bear": ["teddy"],
    "tv": ["television", "tv"], "hot dog": ["hotdog"], "donut": ["doughnut"], "laptop": ["computer", "notebook"],
    "motorcycle": ["motorbike"], "airplane": ["plane", "jet", "aircraft", "airliner"], "couch": ["sofa"],
    "skis": ["ski"], "baseball bat": ["bat"], "baseball glove": ["glove", "mitt"], "tennis racket": ["racket",
                                                                                                  "racquet"],
    "traffic light": ["stoplight"], "fire hydrant": ["hydrant"], "parking meter": ["meter"],
    "refrigerator": ["fridge"], "remote": ["controller", "remote control"], "mouse": ["computer mouse"],
    "bicycle": ["bike"], "person": ["people", "crowd"],
}
# the WordNet sense of an ambiguous category name (otherwise the first noun sense of the name)
COCO_SENSES = {"mouse": "mouse.n.04", "tie": "necktie.n.01", "remote": "remote_control.n.01",
               "tv": "television_receiver.n.01", "keyboard": "computer_keyboard.n.01", "orange": "orange.n.01",
               "bear": "bear.n.01", "kite": "kite.n.03", "bench": "bench.n.01", "bowl": "bowl.n.03",
               "cake": "cake.n.03", "sink": "sink.n.01", "baseball bat": "bat.n.05",
               "person": "person.n.01", "train": "train.n.01", "bus": "bus.n.01", "truck": "truck.n.01",
               "boat": "boat.n.01", "cup": "cup.n.01", "book": "book.n.02", "clock": "clock.n.01",
               "chair": "chair.n.01", "bed": "bed.n.01", "oven": "oven.n.01", "toilet": "toilet.n.02"}


class CategoryMatcher:
    """Which annotated category a noun names: its lemma or compound equals a category name or alias, or (with
    WordNet) one of its first noun senses is a hyponym of the category's synset."""

    def __init__(self, categories: Iterable[str], aliases: dict[str, list[str]] | None = None,
                 senses: dict[str, str] | None = None, wordnet: bool = True):
        self.categories = sorted(set(categories))
        self.names: dict[str, str] = {}
        for c in self.categories:
            self.names[c.lower()] = c
            for a in (aliases or {}).get(c, []):
                self.names.setdefault(a.lower(), c)
        self.synsets: dict[str, str] = {}
        if wordnet:
            from clipcomp.negatives.wordnet import reader

            wn = reader()
            for c in self.categories:
                name = (senses or {}).get(c)
                try:
                    ss = wn.synset(name) if name else (wn.synsets(c.replace(" ", "_"), "n") or [None])[0]
                except Exception:  # noqa: BLE001 - an unknown sense name: the category matches by name only
                    ss = None
                if ss is not None:
                    self.synsets[ss.name()] = c
        self._cache: dict[str, str | None] = {}  # the reader itself is not kept: a matcher travels to workers

    def match(self, lemma: str, compound: str | None = None) -> str | None:
        for key in (compound, lemma):
            if key and key.lower() in self.names:
                return self.names[key.lower()]
        if not self.synsets:
            return None
        key = lemma.lower()
        if key not in self._cache:
            from clipcomp.negatives.wordnet import reader

            found = None
            for s in reader().synsets(key, "n")[:2]:  # the common senses only: "glass" the vessel, not the material
                closure = {s.name()} | {h.name() for h in s.closure(lambda x: x.hypernyms() + x.instance_hypernyms())}
                hit = [self.synsets[n] for n in closure if n in self.synsets]
                if hit:
                    found = hit[0]
                    break
            self._cache[key] = found
        return self._cache[key]


@dataclass
class ImageObjects:
    """One image's annotated objects: category, area and horizontal centre per instance."""

    categories: list[str] = field(default_factory=list)
    areas: list[float] = field(default_factory=list)
    x_centres: list[float] = field(default_factory=list)


FIELDS = ("n_objects", "n_attributes", "attributes_per_object", "n_annotated", "n_named", "completeness",
          "n_unannotated_named", "largest_named", "largest_chance", "left_to_right")


def caption_knobs(doc, objects: ImageObjects | None = None, matcher: CategoryMatcher | None = None) -> dict:
    """The knob measurements of one parsed caption (None where a measurement does not apply)."""
    chunks = [c for c in doc.noun_chunks if c.root.pos_ in ("NOUN", "PROPN")]
    n_attr = sum(1 for c in chunks for t in c.root.children if t.dep_ == "amod" and t.pos_ == "ADJ")
    row = {k: None for k in FIELDS}
    row.update(n_objects=len(chunks), n_attributes=n_attr,
               attributes_per_object=n_attr / len(chunks) if chunks else None)
    if objects is None or matcher is None or not objects.categories:
        return row
    mentions: dict[str, int] = {}
    named_other = set()
    for c in chunks:
        root = c.root
        comp = " ".join(t.lower_ for t in c if t.i <= root.i and (t.dep_ == "compound" or t.i == root.i))
        cat = matcher.match(root.lemma_, comp if " " in comp else None)
        if cat is None:
            continue
        if cat in objects.categories:
            mentions.setdefault(cat, root.i)
        else:
            named_other.add(cat)
    annotated = set(objects.categories)
    named = set(mentions)
    row.update(n_annotated=len(annotated), n_named=len(named), completeness=len(named) / len(annotated),
               n_unannotated_named=len(named_other))
    if 0 < len(named) < len(annotated):
        top = max(objects.areas)
        largest = {c for c, a in zip(objects.categories, objects.areas, strict=True) if a == top}
        row["largest_named"] = bool(largest & named)
        # a random choice of len(named) of the annotated categories includes one of the largest with this chance
        n, k, m = len(annotated), len(named), len(largest)
        row["largest_chance"] = 1.0 - (math.comb(n - m, k) / math.comb(n, k) if n - m >= k else 0.0)
    single = {c for c in named if objects.categories.count(c) == 1}
    if len(single) >= 2:
        x = {c: xc for c, xc in zip(objects.categories, objects.x_centres, strict=True) if c in single}
        said = sorted(single, key=lambda c: mentions[c])
        row["left_to_right"] = said == sorted(single, key=lambda c: x[c])
    return row


def mean_ci(values: list) -> dict:
    """Mean with a 95% t-interval over the captions where the measurement applies."""
    from scipy import stats

    v = np.asarray([float(x) for x in values if x is not None], dtype=float)
    if v.size == 0:
        return {"mean": None, "ci": [None, None], "n": 0}
    m = float(v.mean())
    if v.size < 2 or v.std() == 0:
        return {"mean": m, "ci": [m, m], "n": int(v.size)}
    h = float(stats.t.ppf(0.975, v.size - 1) * v.std(ddof=1) / math.sqrt(v.size))
    return {"mean": m, "ci": [m - h, m + h], "n": int(v.size)}


def summarize(rows: dict[str, list]) -> dict:
    """Corpus values on the lab's scales (see the module docstring)."""
    out = {k: mean_ci(rows[k]) for k in ("attributes_per_object", "completeness", "largest_named",
                                         "largest_chance", "left_to_right")}
    out["n_captions"] = len(rows["n_objects"])
    out["objects_per_caption"] = mean_ci(rows["n_objects"])
    ln, lc = out["largest_named"]["mean"], out["largest_chance"]["mean"]
    out["saliency_excess"] = None if ln is None else ln - lc
    return out


# ------------------------------------------------------------------------------------------------ inputs


def read_coco(captions: str, instances: str) -> tuple[list[str], list[str], dict[str, ImageObjects], list[str]]:
    """(caption ids, captions, image objects by caption id, category names) from a COCO captions JSON and its
    instances JSON (areas and boxes of every annotated object)."""
    from clipcomp.io import read_json

    cj, ij = read_json(captions), read_json(instances)
    if not isinstance(cj, dict) or "annotations" not in cj:
        raise ClipcompError(f"{captions}: expected a COCO captions JSON (images, annotations with caption)")
    if not isinstance(ij, dict) or "categories" not in ij or "annotations" not in ij:
        raise ClipcompError(f"{instances}: expected a COCO instances JSON (categories, annotations with "
                            "category_id, area, bbox) — completeness needs object annotations")
    names = {c["id"]: c["name"] for c in ij["categories"]}
    per_image: dict[int, ImageObjects] = {}
    for a in ij["annotations"]:
        o = per_image.setdefault(a["image_id"], ImageObjects())
        x, _y, w, _h = a["bbox"]
        o.categories.append(names[a["category_id"]])
        o.areas.append(float(a.get("area", w * _h)))
        o.x_centres.append(float(x + w / 2))
    ids, texts, objs = [], [], {}
    for a in sorted(cj["annotations"], key=lambda a: (a["image_id"], a["id"])):
        ids.append(str(a["id"]))
        texts.append(str(a["caption"]).strip())
        objs[str(a["id"])] = per_image.get(a["image_id"], ImageObjects())
    return ids, texts, objs, sorted(names.values())


def _corpus_texts(inputs: list[str], text_column: str | None) -> Iterator[str]:
    from clipcomp.corpus import ReadTally, iter_texts, plan_tasks

    tally = ReadTally()
    for task in plan_tasks(inputs, text_column=text_column).tasks:
        for arr in iter_texts(task, tally):
            yield from (t if t is not None else "" for t in arr.to_pylist())


CHUNK = 4000  # captions per worker task: large enough to amortize the hand-off, small enough to stream


def _rows_of_chunk(chunk: list[tuple[str, ImageObjects | None]], matcher: CategoryMatcher | None,
                   batch_size: int) -> list[dict]:
    """One worker task: parse a chunk and measure it there, so only small rows travel back (not spaCy Docs)."""
    from clipcomp.nlp import nlp

    return [{"caption": doc.text, **caption_knobs(doc, objs, matcher)}
            for doc, objs in nlp().pipe(chunk, as_tuples=True, batch_size=batch_size)]


def _chunks(pairs: Iterable, size: int) -> Iterator[list]:
    buf: list = []
    for p in pairs:
        buf.append(p)
        if len(buf) >= size:
            yield buf
            buf = []
    if buf:
        yield buf


def knobs_of_docs(texts: Iterable[str], objects: Iterable[ImageObjects | None] | None = None,
                  matcher: CategoryMatcher | None = None, workers: int = 1,
                  batch_size: int = 1000) -> Iterator[dict]:
    """Per-caption knob rows (with the caption) for a stream of captions, in order. With `workers` > 1, chunks of
    CHUNK captions are parsed and measured in worker processes (at most 2 × workers chunks in flight)."""
    pairs = zip(texts, objects, strict=True) if objects is not None else ((t, None) for t in texts)
    if workers <= 1:
        for chunk in _chunks(pairs, CHUNK):
            yield from _rows_of_chunk(chunk, matcher, batch_size)
        return
    from collections import deque
    from concurrent.futures import ProcessPoolExecutor

    from clipcomp.cooccur.engine import _mp_context
    from clipcomp.procs import die_with_parent, terminate_pool

    pool = ProcessPoolExecutor(max_workers=workers, mp_context=_mp_context(), initializer=die_with_parent,
                               initargs=(os.getpid(),))
    pending: deque = deque()
    try:
        for chunk in _chunks(pairs, CHUNK):
            pending.append(pool.submit(_rows_of_chunk, chunk, matcher, batch_size))
            if len(pending) >= 2 * workers:
                yield from pending.popleft().result()
        while pending:
            yield from pending.popleft().result()
    except BaseException:
        terminate_pool(pool)
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


def measure_knobs(inputs: list[str] | str, out: str, instances: str | None = None, text_column: str | None = None,
                  workers: int = 1, force: bool = False, progress: bool = True) -> dict:
    """Measure a corpus on the lab's knobs; writes OUT/captions.parquet, knobs.json, knobs.md; returns the
    summary. `instances`: a COCO instances JSON, with `inputs` its COCO captions JSON (completeness, saliency,
    word order need object annotations; without them only attribute density and objects per caption)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from clipcomp.io import atomic_output, atomic_write_json, atomic_write_text, prepare_output

    inputs = [inputs] if isinstance(inputs, str) else list(inputs)
    if not inputs:
        raise ClipcompError("stats knobs: needs at least one input")
    for p in inputs:
        if "://" not in p and not os.path.exists(p):
            raise ClipcompError(f"{p}: caption corpus not found")
    if workers < 1:
        raise ClipcompError(f"--workers must be ≥ 1 (got {workers})")
    if instances is not None and (len(inputs) != 1 or not inputs[0].endswith(".json")):
        raise ClipcompError("--instances: give its COCO captions JSON as the one input (captions and objects are "
                            "joined by image id)")
    settings = {"inputs": [os.path.abspath(p) for p in inputs], "instances": instances and os.path.abspath(instances),
                "text_column": text_column, "version": 1}
    prepare_output(out, "stats knobs", settings, force=force, markers=("knobs.json",))
    ids = None
    if instances is not None:
        ids, texts, objs, cats = read_coco(inputs[0], instances)
        matcher = CategoryMatcher(cats, COCO_ALIASES, COCO_SENSES)
        rows_iter = knobs_of_docs(texts, (objs[i] for i in ids), matcher, workers)
    else:
        rows_iter = knobs_of_docs(_corpus_texts(inputs, text_column), workers=workers)
    cols: dict[str, list] = {k: [] for k in ("caption", *FIELDS)}
    from clipcomp.progress import progress_bar

    with progress_bar(None, "captions", enabled=progress, desc="knobs") as bar:
        for row in rows_iter:
            for k in cols:
                cols[k].append(row[k])
            bar.update(1)
    if not cols["caption"]:
        raise ClipcompError(f"{', '.join(inputs)}: no captions")
    table = pa.table({"id": ids or [str(i) for i in range(len(cols["caption"]))], **cols})
    with atomic_output(os.path.join(out, "captions.parquet")) as tmp:
        pq.write_table(table, tmp)
    summary = {"inputs": inputs, "instances": instances, **summarize(cols)}
    atomic_write_json(os.path.join(out, "knobs.json"), summary)
    atomic_write_text(os.path.join(out, "knobs.md"), knobs_table({os.path.basename(inputs[0]): summary}))
    return summary


def knobs_table(corpora: dict[str, dict]) -> str:
    """One Markdown row per corpus: each knob's mean [95% CI] (— where it does not apply)."""

    def cell(d):
        if d is None or d.get("mean") is None:
            return "—"
        lo, hi = d["ci"]
        return f"{d['mean']:.3f} [{lo:.3f}, {hi:.3f}] (n {d['n']:,})"

    lines = ["| corpus | captions | objects / caption | attributes / object | completeness | a largest object "
             "named (incomplete captions) | chance | named left to right |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name, s in corpora.items():
        lines.append(f"| {name} | {s['n_captions']:,} | {cell(s['objects_per_caption'])} | "
                     f"{cell(s['attributes_per_object'])} | {cell(s['completeness'])} | {cell(s['largest_named'])} | "
                     f"{cell(s['largest_chance'])} | {cell(s['left_to_right'])} |")
    return "\n".join(lines) + "\n"


def synthetic_knobs(knobs, n: int = 2000, seed: int = 0, world=None, workers: int = 1) -> dict:
    """The same measurements on the lab's own captions (clipcomp.synth: WorldConfig, CaptionKnobs) — where a
    lab setting lands on the corpus axes (each scene's objects are its annotations, shape names its categories)."""
    from clipcomp.synth.captions import caption_scene
    from clipcomp.synth.world import WorldConfig, sample_scene

    world = world or WorldConfig(min_objects=3, max_objects=4)
    rng = np.random.default_rng(seed)
    texts, objs = [], []
    for _ in range(n):
        scene = sample_scene(world, rng)
        texts.append(caption_scene(scene, knobs, rng).caption)
        # x: the lab's own left-to-right key (the box's left edge, synth.captions.caption_scene)
        objs.append(ImageObjects([o.shape for o in scene.objects], [float(o.extent ** 2) for o in scene.objects],
                                 [float(o.x) + o.y / 1e6 for o in scene.objects]))
    matcher = CategoryMatcher(world.shapes, wordnet=False)
    cols: dict[str, list] = {k: [] for k in FIELDS}
    for row in knobs_of_docs(texts, objs, matcher, workers):
        for k in FIELDS:
            cols[k].append(row[k])
    return summarize(cols)
