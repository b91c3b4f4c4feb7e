"""Semantic types of replaceable words, so a negative changes a shape into a shape and a colour into a colour.

A word's type comes from, in order:

1. a **typed lexicon** the user passes (``--lexicon FILE``: JSON/YAML ``{type: [words]}`` or a two-column TSV
   ``word<TAB>type``; a synthetic world passes its own vocabularies) — a word may belong to one type only;
2. clipcomp's built-in attribute lexicon (colours, sizes, materials, … — the adjective dimensions WordNet does
   not separate: "red" and "wooden" are both plain ``adj.all`` there);
3. WordNet: a noun's lexicographer file (``noun.animal``, ``noun.food``; of its first physical sense among the
   first three, else of its first sense), a verb's (``verb.motion``, first sense), an adjective's attribute noun
   (``large`` → ``size.n.01``, via its head cluster for satellites), prepositions one ``relation`` type, number
   words one ``number`` type.

A word with no type gets no replacement (it is reported as unperturbable rather than guessed). Synonyms are
words sharing a WordNet synset of the part of speech ("big"/"large", "image"/"picture").
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass, field
from functools import lru_cache

from clipcomp.errors import ClipcompError

BUILTIN_ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "colour": ("red", "blue", "green", "yellow", "black", "white", "brown", "orange", "pink", "purple", "gray",
               "grey", "silver", "golden", "tan", "beige", "cyan", "violet", "maroon", "teal", "magenta"),
    "size": ("small", "large", "big", "tiny", "huge", "little", "giant", "enormous", "massive", "miniature"),
    "height": ("tall", "short"),
    "length": ("long",),
    "age": ("old", "young", "new", "ancient"),
    # adjectives WordNet lists as such (a noun used attributively, "brick", is not an adjective replacement)
    "material": ("wooden", "metal", "metallic", "plastic", "stone", "ceramic", "iron", "concrete", "cardboard"),
    "fullness": ("empty", "full"),
    "openness": ("open", "closed"),
    "wetness": ("wet", "dry"),
    "cleanliness": ("dirty", "clean"),
    "brightness": ("bright", "dark"),
    "pattern": ("striped", "spotted", "checkered", "floral"),
    "temperature": ("hot", "cold", "warm"),
    "speed": ("fast", "slow"),
}
_WN_POS = {"NOUN": "n", "VERB": "v", "ADJ": "a"}
Type = frozenset  # a word's type tags; two words share a type when their tags intersect


@dataclass
class TypedLexicon:
    """type → words, with each word in exactly one type (what a user or a synthetic world declares)."""

    types: dict[str, tuple[str, ...]]
    source: str = "(in memory)"
    word_type: dict[str, str] = field(init=False)

    def __post_init__(self) -> None:
        self.word_type = {}
        for typ, words in self.types.items():
            if not isinstance(words, (list, tuple)) or not words:
                raise ClipcompError(f"{self.source}: type {typ!r} needs a non-empty list of words")
            for w in words:
                key = " ".join(str(w).lower().split())
                if key in self.word_type and self.word_type[key] != typ:
                    raise ClipcompError(f"{self.source}: {key!r} is in two types ({self.word_type[key]!r} and "
                                        f"{typ!r}); a word belongs to one type")
                self.word_type[key] = typ
        self.types = {t: tuple(" ".join(str(w).lower().split()) for w in ws) for t, ws in self.types.items()}

    @classmethod
    def load(cls, path: str) -> TypedLexicon:
        """JSON or YAML mapping type → [words], or a TSV/CSV of word, type rows."""
        if not os.path.isfile(path):
            raise ClipcompError(f"{path}: lexicon file not found")
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except (OSError, UnicodeDecodeError) as exc:
            raise ClipcompError(f"{path}: unreadable lexicon ({exc})") from None
        lower = path.lower()
        try:
            if lower.endswith(".json"):
                data = json.loads(text)
            elif lower.endswith((".yaml", ".yml")):
                import yaml

                data = yaml.safe_load(text)
            else:
                data = {}
                delim = "\t" if lower.endswith((".tsv", ".txt")) else ","
                for n, row in enumerate(csv.reader(text.splitlines(), delimiter=delim), 1):
                    if not row or not "".join(row).strip() or row[0].startswith("#"):
                        continue
                    if len(row) != 2:
                        raise ClipcompError(f"{path}: line {n}: expected two columns (word, type), got {len(row)}")
                    data.setdefault(row[1].strip(), []).append(row[0].strip())
        except (json.JSONDecodeError, ValueError) as exc:
            raise ClipcompError(f"{path}: not a lexicon ({exc})") from None
        except ImportError:
            raise ClipcompError(f"{path}: YAML lexicons need pyyaml (pip install pyyaml)") from None
        except Exception as exc:  # noqa: BLE001 - yaml's errors: one line naming the file
            if isinstance(exc, ClipcompError):
                raise
            raise ClipcompError(f"{path}: not a lexicon ({type(exc).__name__}: {exc})") from None
        if not isinstance(data, dict) or not data:
            raise ClipcompError(f"{path}: a lexicon is a non-empty mapping of type → list of words")
        return cls({str(k): v for k, v in data.items()}, source=path)

    def fingerprint(self) -> dict[str, list[str]]:
        return {t: sorted(ws) for t, ws in sorted(self.types.items())}


BUILTIN = TypedLexicon(dict(BUILTIN_ATTRIBUTES), source="clipcomp's attribute lexicon")


# what a caption's objects are: a noun's type is the lexicographer file of its first sense among these (a
# "table" in a caption is furniture, noun.artifact, though WordNet's first sense is a data table), else of its
# first sense
PHYSICAL = ("noun.animal", "noun.artifact", "noun.body", "noun.food", "noun.object", "noun.person", "noun.plant",
            "noun.shape", "noun.substance")


@lru_cache(maxsize=200_000)
def _lexnames(word: str, pos: str) -> frozenset[str]:
    from clipcomp.negatives.wordnet import reader

    senses = reader().synsets(word, _WN_POS[pos])
    if not senses:
        return frozenset()
    if pos == "NOUN":
        for s in senses[:3]:
            if s.lexname() in PHYSICAL:
                return frozenset({s.lexname()})
    return frozenset({senses[0].lexname()})


@lru_cache(maxsize=200_000)
def _adj_attribute(word: str) -> frozenset[str]:
    from clipcomp.negatives.wordnet import reader

    out = set()
    for s in reader().synsets(word, "a")[:2]:
        heads = [s] + (list(s.similar_tos()) if s.pos() == "s" else [])
        for h in heads:
            out.update(f"attr:{a.name()}" for a in h.attributes())
    return frozenset(out)


@lru_cache(maxsize=200_000)
def synsets(word: str, pos: str) -> frozenset[str]:
    from clipcomp.negatives.wordnet import reader

    wpos = _WN_POS.get(pos)
    if wpos is None:
        return frozenset()
    names = {s.name() for s in reader().synsets(word, wpos)}
    if wpos == "a":  # satellites ("s") live under the same lookup
        names |= {s.name() for s in reader().synsets(word, "s")}
    return frozenset(names)


def synonyms(a: str, b: str, pos: str) -> bool:
    """Do the two words share a WordNet synset of the part of speech (or are they the same word)?"""
    return a == b or bool(synsets(a, pos) & synsets(b, pos))


class WordTypes:
    """The semantic type of a (lemma, part of speech), from the user's lexicon, the built-in one, or WordNet."""

    def __init__(self, lexicon: TypedLexicon | None = None, closed: bool = False) -> None:
        self.lexicon = lexicon
        self.closed = closed and lexicon is not None  # closed: a word outside the lexicon has no type

    def of(self, lemma: str, pos: str) -> Type | None:
        lemma = lemma.lower()
        if self.lexicon is not None and lemma in self.lexicon.word_type:
            return Type({f"lex:{self.lexicon.word_type[lemma]}"})
        if self.closed:
            return None
        if pos == "ADJ" and lemma in BUILTIN.word_type:
            return Type({f"builtin:{BUILTIN.word_type[lemma]}"})
        if pos == "ADP":
            return Type({"relation"})
        if pos == "NUM":
            return Type({"number"})
        if pos in ("NOUN", "VERB"):
            names = _lexnames(lemma, pos)
            return Type(names) if names else None
        if pos == "ADJ":
            attrs = _adj_attribute(lemma)
            return Type(attrs) if attrs else None
        return None

    def lexicon_words(self, typ: Type) -> tuple[str, ...] | None:
        """The declared words of a lexicon type (user's or built-in), or None for a WordNet-derived type."""
        (tag,) = typ if len(typ) == 1 else (None,)
        if tag is None:
            return None
        if tag.startswith("lex:") and self.lexicon is not None:
            return self.lexicon.types[tag[4:]]
        if tag.startswith("builtin:"):
            return BUILTIN.types[tag[8:]]
        return None

    @staticmethod
    def declared_apart(a: Type | None, b: Type | None) -> bool:
        """Two words a user lexicon puts in different types (a shape and a direction: "circle" ↔ "left" is no
        object swap)."""
        return (a is not None and b is not None and all(t.startswith("lex:") for t in a | b) and not a & b)

    def same(self, a: Type | None, b: Type | None) -> bool:
        return a is not None and b is not None and bool(a & b)

    @staticmethod
    def label(typ: Type | None) -> str:
        return "untyped" if typ is None else "|".join(sorted(typ))


# ------------------------------------------------------------------------------------------------- articles
_AN_CONSONANT = ("hour", "honest", "honor", "honour", "heir")
_A_VOWEL = ("uni", "use", "usu", "uti", "ute", "ure", "eu", "ewe", "one", "once", "ufo", "uku")


def article_for(word: str) -> str:
    """"a" or "an" before `word` (vowel sound by spelling, with the usual exceptions: an hour, a unicorn)."""
    w = word.lower()
    if w.startswith(_AN_CONSONANT):
        return "an"
    if w.startswith(_A_VOWEL):
        return "a"
    return "an" if w[:1] in "aeiou" else "a"
