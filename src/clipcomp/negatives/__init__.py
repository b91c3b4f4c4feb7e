"""Hard-negative captions chosen by concreteness (ConcretePlant), with the data they need: norms, WordNet, spaCy."""

from clipcomp.negatives.generate import NEG_TYPES, RANKS, NegativeOptions, generate_negatives, negatives_for

__all__ = ["NEG_TYPES", "RANKS", "NegativeOptions", "generate_negatives", "negatives_for"]
