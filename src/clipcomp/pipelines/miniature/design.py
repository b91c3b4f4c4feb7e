"""The co-occurrence design: which partner shapes appear with which class shapes, and how often.

Every training scene holds one *class* shape and one *partner* shape. The joint P(class, partner) is a C×P
matrix with uniform marginals (every class and every partner equally frequent), so PMI(c, p) = log(C·P·J[c, p])
varies only through co-occurrence, never through unigram frequency. `graded`: class c's partners, in a seeded
order, get weights 1, d, d², … and the last `never` of them 0 (never seen together); the matrix is then
balanced to uniform marginals (Sinkhorn). `uniform`: every pair equally likely — the control.
"""

from __future__ import annotations

import numpy as np

from clipcomp.errors import ClipcompError
from clipcomp.synth.world import SHAPES_AVAILABLE, WorldConfig

DEFAULT_CLASSES = ("circle", "square", "triangle", "diamond", "star", "hexagon")
DEFAULT_PARTNERS = ("cross", "pentagon", "semicircle", "trapezoid", "arrow", "ring")
STRUCTURES = ("graded", "uniform")


def joint_design(n_classes: int, n_partners: int, structure: str = "graded", decay: float = 0.5, never: int = 1,
                 seed: int = 0) -> np.ndarray:
    """J (C×P, sums to 1, row sums 1/C, column sums 1/P)."""
    if structure not in STRUCTURES:
        raise ClipcompError(f"unknown co-occurrence structure {structure!r} (expected {' or '.join(STRUCTURES)})")
    if n_classes < 2 or n_partners < 2:
        raise ClipcompError("need at least 2 classes and 2 partners")
    if structure == "uniform":
        return np.full((n_classes, n_partners), 1.0 / (n_classes * n_partners))
    if not 0 < decay <= 1:
        raise ClipcompError(f"decay must be in (0, 1] (got {decay})")
    if not 0 <= never < n_partners:
        raise ClipcompError(f"never must be in [0, {n_partners - 1}] (each class needs a partner; got {never})")
    perm = np.random.default_rng([seed, 17]).permutation(n_partners)
    w = np.zeros((n_classes, n_partners))
    for i in range(n_classes):
        for r in range(n_partners - never):
            w[i, perm[(i + r) % n_partners]] = decay ** r
    for _ in range(10_000):  # Sinkhorn: rows to 1/C, columns to 1/P
        w /= w.sum(axis=1, keepdims=True) * n_classes
        w /= w.sum(axis=0, keepdims=True) * n_partners
        if np.abs(w.sum(axis=1) - 1.0 / n_classes).max() < 1e-12:
            return w / w.sum()
    raise ClipcompError(f"cannot balance a graded design with {n_classes} classes, {n_partners} partners and "
                        f"never={never} to uniform marginals; lower never")


def design_pmi(joint: np.ndarray) -> np.ndarray:
    """PMI of the design itself (−inf where J = 0)."""
    with np.errstate(divide="ignore"):
        return np.log(joint / (joint.sum(1, keepdims=True) * joint.sum(0, keepdims=True)))


def world_for(classes: list[str], partners: list[str], joint: np.ndarray, colours: list[str] | None = None,
              sizes: list[str] | None = None, resolution: int = 64) -> WorldConfig:
    """A two-object world (one class + one partner per scene) drawn from the joint design.

    The world picks the first shape uniformly among all C+P shapes and the second ∝ the co-occurrence row, so
    with a balanced J the pair (c, p) comes out with probability exactly J[c, p]."""
    shapes = list(classes) + list(partners)
    unknown = [s for s in shapes if s not in SHAPES_AVAILABLE]
    if unknown:
        raise ClipcompError(f"unknown shape(s) {', '.join(map(repr, unknown))} "
                            f"(available: {', '.join(SHAPES_AVAILABLE)})")
    if len(set(shapes)) != len(shapes):
        raise ClipcompError("classes and partners must be distinct shapes")
    c = len(classes)
    m = np.zeros((len(shapes), len(shapes)))
    m[:c, c:] = joint
    m[c:, :c] = joint.T
    cfg = WorldConfig(shapes=shapes, min_objects=2, max_objects=2, resolution=resolution, cooccurrence=m.tolist())
    if colours is not None:
        cfg.colours = list(colours)
    if sizes is not None:
        cfg.sizes = list(sizes)
    cfg.validate()
    return cfg
