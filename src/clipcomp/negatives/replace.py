"""Replacement words for a span: WordNet co-hyponyms and antonyms of the same part of speech, closed-class
swaps for prepositions and numbers, concepts of a ConceptStats (same part of speech) as a fallback, and the
inflection that keeps the negative grammatical (plural nouns, verb forms, a/an)."""

from __future__ import annotations

import re
from functools import lru_cache

from clipcomp.negatives import wordnet
from clipcomp.negatives.norms import NUMBERS
from clipcomp.negatives.parse import Span
from clipcomp.negatives.types import article_for

PREPOSITION_SWAPS = {
    "on": ["under", "beside", "behind"], "under": ["on", "above", "over"], "above": ["below", "under"],
    "below": ["above", "over"], "over": ["under", "below"], "in": ["outside", "beside", "behind", "near"],
    "inside": ["outside", "behind"], "outside": ["inside"], "into": ["out of", "behind"], "behind": ["in front of",
    "beside"], "beside": ["behind", "under"], "near": ["far from"], "with": ["without"], "without": ["with"],
    "up": ["down"], "down": ["up"], "before": ["after"], "after": ["before"], "toward": ["away from"],
    "towards": ["away from"], "across": ["along"], "along": ["across"], "at": ["behind", "beside"],
    "onto": ["off"], "off": ["onto"], "through": ["around"], "around": ["through"], "between": ["beside"],
    "by": ["behind"], "from": ["to"], "to": ["from"], "against": ["away from"], "atop": ["beneath"],
    "beneath": ["atop", "above"], "underneath": ["on top of", "above"], "of": [], "for": [], "like": [],
}
NUMBER_WORDS = [w for w in NUMBERS[:21]]
ATTRIBUTE_WORDS = [
    "red", "blue", "green", "yellow", "black", "white", "brown", "orange", "pink", "purple", "gray", "small",
    "large", "big", "tiny", "huge", "tall", "short", "long", "old", "young", "wooden", "metal", "plastic",
    "glass", "wet", "dry", "empty", "full", "open", "closed", "striped", "dirty", "clean", "bright", "dark"
]


def _plural(word: str) -> str:
    if word.endswith(("s", "x", "z", "ch", "sh")):
        return word + "es"
    if word.endswith("y") and len(word) > 1 and word[-2] not in "aeiou":
        return word[:-1] + "ies"
    return word + "s"


def _ing(word: str) -> str:
    if word.endswith("ie"):
        return word[:-2] + "ying"
    if word.endswith("e") and not word.endswith(("ee", "ye", "oe")):
        return word[:-1] + "ing"
    return word + "ing"


def _past(word: str) -> str:
    if word.endswith("e"):
        return word + "d"
    if word.endswith("y") and len(word) > 1 and word[-2] not in "aeiou":
        return word[:-1] + "ied"
    return word + "ed"


def inflect(lemma: str, span: Span) -> str:
    """The replacement lemma in the span's form (regular inflection; WordNet's irregular forms are rare here)."""
    tag = span.tag
    if span.pos == "NOUN" and tag in ("NNS", "NNPS"):
        out = _plural(lemma)
    elif span.pos == "VERB" and tag == "VBG":
        out = _ing(lemma)
    elif span.pos == "VERB" and tag == "VBZ":
        out = _plural(lemma)
    elif span.pos == "VERB" and tag in ("VBD", "VBN"):
        out = _past(lemma)
    else:
        out = lemma
    if span.text[:1].isupper():
        out = out[:1].upper() + out[1:]
    return out


@lru_cache(maxsize=100_000)
def wordnet_candidates(lemma: str, pos: str) -> tuple[str, ...]:
    """Single-word replacements of the same part of speech, antonyms first."""
    if pos == "ADP":
        return tuple(PREPOSITION_SWAPS.get(lemma, []))
    if pos == "NUM":
        return tuple(w for w in NUMBER_WORDS if w != lemma) if lemma in NUMBER_WORDS else ()
    wpos = {"NOUN": "noun", "ADJ": "adj", "VERB": "verb"}[pos]
    index = wordnet.index_words(wpos)
    out: list[str] = []
    out += wordnet.antonyms(lemma, wpos)
    if pos == "ADJ":
        # colours, sizes, materials: adjectives whose noun sense has sisters ("red" → "blue", "green")
        out += [w for w in wordnet.co_hyponyms(lemma, "noun") if w in index]
    else:
        out += wordnet.co_hyponyms(lemma, wpos)
    seen, result = {lemma}, []
    for w in out:
        if w not in seen and w.isalpha() and w in index:
            seen.add(w)
            result.append(w)
    return tuple(result)


_ARTICLE = re.compile(r"\b([Aa]n?)( +)([A-Za-z][\w-]*)")


def articles_agree(text: str) -> str:
    """Every a/an inside `text` made to agree with the word after it (a swap moves words past articles:
    "an orange cube and a red ball" → "a red cube and an orange ball")."""
    def fix(m: re.Match) -> str:
        want = article_for(m[3])
        return (want.capitalize() if m[1][:1].isupper() else want) + m[2] + m[3]

    return _ARTICLE.sub(fix, text)


def article_fix(caption: str, span: Span, tokens: list[tuple[int, int, str, str, str]], new: str
                ) -> tuple[int, str]:
    """Articles agree in every type: those inside the new text, and — when the word before the span is a/an
    and the new text needs the other one — the change starts at the article. Returns (start, text replacing
    caption[start:span.end])."""
    new = articles_agree(new)
    if span.index == 0:
        return span.start, new
    a_start, a_end, a_text, _, _ = tokens[span.index - 1]
    if a_text.lower() not in ("a", "an") or caption[a_end:span.start] != " ":
        return span.start, new
    want = article_for(new)
    if a_text.lower() == want:
        return span.start, new
    article = want.capitalize() if a_text[:1].isupper() else want
    return a_start, f"{article} {new}"
