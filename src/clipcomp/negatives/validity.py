"""Is a negative a valid negative? Four checks, re-derived from the text of each row (not from what the generator
believes it did), so a bug in span offsets, inflection or article handling shows up here:

* **frame**: no caption-frame word ("picture", "image", "background", … and words in most captions) is changed or
  brought in — "a hexagon of a large purple picture" says nothing false about the image;
* **type**: the changed words keep their semantic type (`types.WordTypes`: shape↔shape, colour↔colour, object
  ↔object of the same WordNet class, preposition↔preposition); a swap exchanges two words of one type (attributes)
  or two typed nouns; an added word is typed;
* **synonym**: the new word is not a synonym of the old one (a shared WordNet synset: "image" ↔ "picture",
  "big" ↔ "large" is a paraphrase, not a negative);
* **articles**: every a/an at the change agrees with the word after it ("an circle" fails).

`validity_report(table, …)` gives, per negative type and overall, the share passing each check and all four,
with Wilson intervals and a few failing examples.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable

import numpy as np

from clipcomp.negatives.types import TypedLexicon, WordTypes, article_for, synonyms

CHECKS = ("frame", "type", "synonym", "articles")
_WORD = re.compile(r"[A-Za-z][A-Za-z'-]*|\d+")
_ARTICLES = frozenset({"a", "an", "the"})
_WN = {"NOUN": "n", "VERB": "v", "ADJ": "a"}


def _words(text: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(text or "")]


def _lemma(word: str, pos: str) -> str:
    from clipcomp.negatives.wordnet import reader

    wpos = _WN.get(pos)
    if wpos is None:
        return word
    return reader().morphy(word, wpos) or word


def _lemmas(word: str, pos: str) -> set[str]:
    """Every base form WordNet allows ("glasses" → glasses, glass)."""
    from clipcomp.negatives.wordnet import reader

    wpos = _WN.get(pos)
    return {word} | (set(reader()._morphy(word, wpos)) if wpos else set())


def _changed(old: list[str], new: list[str], positional: bool = False) -> tuple[list[str], list[str]]:
    """Words of `old` and `new` outside their longest common alignment (articles aside); `positional`: words that
    differ position by position (a swap of equally long texts)."""
    if positional and len(old) == len(new):
        pairs = [(o, n) for o, n in zip(old, new, strict=True) if o != n]
        return ([o for o, _ in pairs if o not in _ARTICLES], [n for _, n in pairs if n not in _ARTICLES])
    a, b = [], []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(a=old, b=new, autojunk=False).get_opcodes():
        if tag != "equal":
            a += old[i1:i2]
            b += new[j1:j2]
    return [w for w in a if w not in _ARTICLES], [w for w in b if w not in _ARTICLES]


def frame_set(captions: Iterable[str], frame_words: Iterable[str], frame_share: float = 0.5,
              min_captions: int = 20) -> frozenset[str]:
    """The listed frame words plus words (as noun lemmas) in more than `frame_share` of the distinct captions."""
    caps = sorted(set(captions))
    out = {w.lower() for w in frame_words}
    if len(caps) >= min_captions:
        df: dict[str, int] = {}
        for c in caps:
            for w in {_lemma(w, "NOUN") for w in _words(c)}:
                df[w] = df.get(w, 0) + 1
        out |= {w for w, n in df.items() if n / len(caps) > frame_share and w not in _ARTICLES
                and w not in ("and", "of", "with", "on", "in", "a", "is", "are")}
    return frozenset(out)


def _articles_ok(negative: str, start: int, stop: int) -> bool:
    """Each a/an whose own span or next word touches [start, stop) agrees with that next word."""
    for m in re.finditer(r"\b([Aa]n?) +([A-Za-z][\w-]*)", negative):
        if m.end() < start or m.start() > stop:
            continue
        if m[1].lower() != article_for(m[2]):
            return False
    return True


def _is_relation(words: list[str]) -> bool:
    from clipcomp.negatives.norms import PREPOSITIONS
    from clipcomp.negatives.replace import PREPOSITION_SWAPS

    preps = set(PREPOSITIONS) | set(PREPOSITION_SWAPS)
    fillers = {"front", "top", "far", "away", "of", "the", "back", "side", "to"}
    return bool(words) and any(w in preps for w in words) and all(w in preps or w in fillers for w in words)


def check_row(row: dict, types: WordTypes, frame: frozenset[str]) -> dict[str, bool]:
    """The four checks of one negatives row (caption, negative, type, start, end, original, replacement, pos)."""
    kind = row["type"]
    pos = row.get("pos") or ("NOUN" if kind.endswith("obj") else "ADJ")
    old, new = _words(row["original"]), _words(row["replacement"])
    gone, came = _changed(old, new, positional=kind.startswith("swap-"))
    lem = [_lemma(w, pos) for w in gone] + [_lemma(w, "NOUN" if kind == "add-obj" else pos) for w in came]
    ok_frame = not any(w in frame or _lemma(w, "NOUN") in frame for w in gone + came + lem)
    ok_type = ok_syn = False
    if kind.startswith("replace-"):
        if pos == "ADP":
            ok_type = _is_relation(gone) and _is_relation(came)
            ok_syn = gone != came
        elif len(gone) == 1 and len(came) == 1:
            a, b = _lemma(gone[0], pos), _lemma(came[0], pos)
            if pos == "NUM":
                ok_type, ok_syn = True, a != b
            else:
                ok_type = any(types.same(types.of(x, pos), types.of(y, pos))
                              for x in _lemmas(gone[0], pos) for y in _lemmas(came[0], pos))
                ok_syn = not synonyms(a, b, pos)
    elif kind.startswith("swap-"):
        if sorted(gone) == sorted(came) and len(set(gone)) == 2:
            a, b = (_lemma(w, pos) for w in sorted(set(gone)))
            ta, tb = types.of(a, pos), types.of(b, pos)
            ok_type = types.same(ta, tb) if pos == "ADJ" else (ta is not None and tb is not None
                                                                and not types.declared_apart(ta, tb))
            ok_syn = not synonyms(a, b, pos)
    elif kind in ("add-obj", "add-att"):
        added = [w for w in came if w != "and"]
        if not gone and len(added) == 1:
            wpos = "NOUN" if kind == "add-obj" else "ADJ"
            w = _lemma(added[0], wpos)
            ok_type = types.of(w, wpos) is not None
            ok_syn = not any(synonyms(w, _lemma(o, wpos), wpos) for o in old)
    start = int(row["start"])
    stop = start + len(row["replacement"])
    ok_art = _articles_ok(row["negative"], start, stop)
    return {"frame": ok_frame, "type": ok_type, "synonym": ok_syn, "articles": ok_art}


def _share(flags: np.ndarray) -> dict:
    from scipy.stats import binomtest

    n, k = int(flags.size), int(flags.sum())
    ci = binomtest(k, n).proportion_ci(method="wilson") if n else None
    return {"n": n, "share": k / n if n else float("nan"), "ci95": [float(ci.low), float(ci.high)] if ci else None}


def validity_report(table, lexicon: TypedLexicon | None = None, frame_words: Iterable[str] | None = None,
                    frame_share: float = 0.5, examples: int = 3, lexicon_only: bool = False) -> dict:
    """Per type and overall: the share of negatives passing each check and all of them (`valid`)."""
    from clipcomp.negatives.generate import FRAME_WORDS

    rows = table.to_pylist() if hasattr(table, "to_pylist") else list(table)
    frame = frame_set((r["caption"] for r in rows), FRAME_WORDS if frame_words is None else frame_words,
                      frame_share)
    types = WordTypes(lexicon, closed=lexicon_only)
    results = [check_row(r, types, frame) for r in rows]
    kinds = np.array([r["type"] for r in rows])
    flags = {c: np.array([res[c] for res in results], bool) for c in CHECKS}
    flags["valid"] = np.logical_and.reduce([flags[c] for c in CHECKS]) if rows else np.zeros(0, bool)

    def block(mask: np.ndarray) -> dict:
        out = {c: _share(flags[c][mask]) for c in (*CHECKS, "valid")}
        bad = np.flatnonzero(mask & ~flags["valid"])[:examples]
        out["failing"] = [{"caption": rows[i]["caption"], "negative": rows[i]["negative"],
                           "failed": [c for c in CHECKS if not results[i][c]]} for i in bad]
        return out

    report = {"all": block(np.ones(len(rows), bool)),
              "by_type": {t: block(kinds == t) for t in sorted(set(kinds.tolist()))},
              "frame_words": sorted(frame), "lexicon": None if lexicon is None else lexicon.source}
    return report
