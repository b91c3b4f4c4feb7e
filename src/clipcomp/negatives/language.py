"""Is a caption English? The negatives' parser, lexicon and norms are English-only: a Chinese, German or
random-byte caption would get nonsense negatives ("blue 两只猫…"), so such captions are skipped and counted.

A caption is English when (1) at most 10 % of its letters are outside the Latin script and (2) at least
`min_share` (default 0.6) of its word tokens are English words: in Brysbaert et al.'s norms (40k English lemmas),
WordNet's index, or a list of function words — a token counts by its surface form or its spaCy lemma."""

from __future__ import annotations

import unicodedata
from functools import lru_cache

_FUNCTION = (
    "a an the of in on at to with and or for from by is are was were be been being this that these those there "
    "here it its his her their our your my as over under near next into onto up down out off some two three four "
    "five six seven eight nine ten one while who which what where when how not no very has have had do does "
    "did can will would could should may might than then also just about above below behind between through "
    "across along around against during without within upon among")
FUNCTION_WORDS = frozenset(_FUNCTION.split())
MIN_ENGLISH_SHARE = 0.6


@lru_cache(maxsize=1)
def english_words() -> frozenset[str]:
    from clipcomp.negatives.norms import brysbaert
    from clipcomp.negatives.wordnet import index_words

    words = set(brysbaert()) | FUNCTION_WORDS
    for pos in ("noun", "verb", "adj", "adv"):
        words |= {w for w in index_words(pos) if " " not in w}
    return frozenset(words)


def _non_latin_share(text: str) -> float:
    letters = [ch for ch in text if ch.isalpha()]
    if not letters:
        return 1.0
    return sum(1 for ch in letters if "LATIN" not in unicodedata.name(ch, "")) / len(letters)


def english_share(pc) -> float:
    """Share of the parsed caption's word tokens that are English words (surface form or lemma)."""
    lemmas = {s.start: s.lemma for s in pc.spans}
    vocab = english_words()
    words = [(start, text.lower()) for start, _, text, _, _ in pc.tokens if text.isalpha()]
    if not words:
        return 0.0
    return sum(1 for start, w in words if w in vocab or lemmas.get(start, "") in vocab) / len(words)


def is_english(pc, min_share: float = MIN_ENGLISH_SHARE) -> bool:
    if _non_latin_share(pc.text) > 0.1:
        return False
    return english_share(pc) >= min_share
