"""An independent, deliberately plain-Python computation of concept and pair document counts and PMI.

Shares no code with clipcomp's engine: regex tokens, Python sets, Counter over itertools.combinations.
"""

from __future__ import annotations

import itertools
import math
import re
from collections import Counter

TOKEN = re.compile(r"[^\W_]+")


def tokens(text: str) -> list[str]:
    return TOKEN.findall(text.lower())


def discovery_sets(lines, stopwords, lemmatize):
    out = []
    for line in lines:
        s = set()
        for t in tokens(line):
            if len(t) < 2 or t.isnumeric() or t in stopwords:
                continue
            lem = lemmatize(t)
            if len(lem) < 2 or lem.isnumeric() or lem in stopwords:
                continue
            s.add(lem)
        out.append(s)
    return out


def phrase_sets(lines, vocab: dict[tuple[str, ...], str], lemmatize=lambda w: w):
    """Greedy longest-leftmost phrase matching, written as the obvious loop."""
    max_len = max(len(k) for k in vocab)
    out = []
    for line in lines:
        toks = [lemmatize(t) for t in tokens(line)]
        s = set()
        i = 0
        while i < len(toks):
            for n in range(min(max_len, len(toks) - i), 0, -1):
                key = tuple(toks[i:i + n])
                if key in vocab:
                    s.add(vocab[key])
                    i += n
                    break
            else:
                i += 1
        out.append(s)
    return out


def count(sets, vocab=None):
    uni = Counter()
    pairs = Counter()
    for s in sets:
        if vocab is not None:
            s = s & vocab
        uni.update(s)
        pairs.update(itertools.combinations(sorted(s), 2))
    return uni, pairs


def pmi(n_ab, n_a, n_b, n):
    return math.log(n * n_ab / (n_a * n_b))


def npmi(n_ab, n_a, n_b, n):
    p = pmi(n_ab, n_a, n_b, n)
    d = -math.log(n_ab / n)
    return 1.0 if d == 0 else p / d
