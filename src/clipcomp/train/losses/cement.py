"""Cement — **clipcomp's reconstruction** from the abstract of Im, Madhwal & Gupta (2026); the paper's formula and
code are not public. The abstract: InfoNCE suffers a gradient imbalance in which easy pairs overwhelm the
optimization; Cement is margin-based and "dynamically calibrates the penalization of each training pair by
correlating concreteness with sample difficulty". clipcomp reads that as three stated choices:

For image i, its caption t_i, in-batch captions t_j and its K hard negatives n_ik (cosines s):

    logits_i = [ scale·s(v_i, t_i),
                 scale·s(v_i, t_j) + log w          (j ≠ i: easy in-batch negatives, w = `easy_weight` ≤ 1)
                 scale·(s(v_i, n_ik) + m_ik) ]      (hard negatives, raised by a per-pair margin)
    m_ik = margin · c_ik · d_ik,   d_ik = sigmoid(γ · (s(v_i, n_ik) − s(v_i, t_i)))   (no gradient through m)
    L = ½ · [CE(logits_i, i) + CE(scale · s(t_i, ·images), i)]

1. the margin sits inside the softmax (additive-margin softmax), so it shapes the gradient smoothly instead of
   switching a constant hinge gradient on or off;
2. concreteness c (0–1, of the span the negative changed; missing = 0.5) and difficulty d are coupled by their
   product: a concrete change that the model still confuses gets the largest margin, an abstract or already
   separated one almost none;
3. easy in-batch negatives are down-weighted by w in the softmax (their probability, hence their gradient, is
   scaled by w relative to the hard negatives') — the imbalance the abstract names.
Defaults (clipcomp's choices): margin 0.2 (cosine), γ = 10, easy_weight 0.5. The text→image side is NegCLIP's.
Logged per step: active-margin fraction (hard pairs whose shifted negative still outranks the caption), mean
margin, and the easy/hard gradient shares. `cement-hinge` keeps clipcomp's earlier variant (NegCLIP + a cosine
hinge with m = m₀ + α·c + β·d) for comparison.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from clipcomp.errors import ClipcompError
from clipcomp.train.losses.base import TrainingLoss, register_loss
from clipcomp.train.losses.negclip import negclip_loss

DEFAULTS = {"margin": 0.2, "gamma": 10.0, "easy_weight": 0.5}
HINGE_DEFAULTS = {"weight": 1.0, "margin": 0.05, "alpha": 0.15, "beta": 0.1, "gamma": 10.0}


def _per_negative(values, n: int, k: int, like: torch.Tensor) -> torch.Tensor:
    if values is None:
        return torch.full((n, k), 0.5, dtype=like.dtype, device=like.device)
    v = torch.nan_to_num(values.to(like.dtype), nan=0.5)
    if v.numel() == n:
        return v.view(n, 1).expand(n, k)
    if v.numel() == n * k:
        return v.view(n, k)
    raise ClipcompError(f"concreteness: {v.numel()} values for {n} items × {k} negatives")


def cement_loss(image_features, text_features, negative_features, logit_scale, concreteness=None,
                margin=0.2, gamma=10.0, easy_weight=0.5, return_parts=False, negative_mask=None):
    """clipcomp's Cement reconstruction for K ≥ 1 hard negatives per image (item-major, B·K × D; features
    L2-normalized); see the module docstring."""
    if not 0 < easy_weight <= 1:
        raise ClipcompError(f"cement: easy_weight must be in (0, 1] (got {easy_weight})")
    if margin < 0 or not math.isfinite(margin):
        raise ClipcompError(f"cement: margin must be ≥ 0 (got {margin})")
    n, dim = image_features.shape
    if negative_features.shape[0] % n:
        raise ClipcompError(f"cement: {negative_features.shape[0]} negatives for {n} items (K per item)")
    k = negative_features.shape[0] // n
    s_txt = image_features @ text_features.T
    s_neg = torch.einsum("bd,bkd->bk", image_features, negative_features.view(n, k, dim))
    sims = torch.cat([s_txt, s_neg], dim=1)  # B × (B + K): captions, then the row's own hard negatives
    s_pos = torch.diagonal(s_txt)
    c = _per_negative(concreteness, n, k, s_pos)
    with torch.no_grad():
        difficulty = torch.sigmoid(gamma * (s_neg - s_pos[:, None]))
        m = margin * c * difficulty
    offset = torch.zeros_like(sims)
    eye = torch.eye(n, dtype=torch.bool, device=sims.device)
    offset[:, :n] = torch.where(eye, torch.zeros_like(s_txt), torch.full_like(s_txt, math.log(easy_weight)))
    offset[:, n:] = logit_scale.detach() * m if torch.is_tensor(logit_scale) else logit_scale * m
    labels = torch.arange(n, device=sims.device)
    logits_i2t = logit_scale * sims + offset
    valid = torch.ones_like(s_neg, dtype=torch.bool)
    if negative_mask is not None:  # placeholders (items without a negative) leave the softmax, not the batch
        valid = negative_mask.to(sims.device).view(n, k) > 0.5
        logits_i2t = torch.cat([logits_i2t[:, :n], logits_i2t[:, n:].masked_fill(~valid, float("-inf"))], 1)
    loss = (F.cross_entropy(logits_i2t, labels) + F.cross_entropy(logit_scale * sims[:, :n].T, labels)) / 2
    if return_parts:
        hit = (s_pos[:, None] < s_neg + m)[valid]
        active = hit.float().mean() if hit.numel() else torch.tensor(float("nan"))
        return loss, {"sims": sims, "margins": m, "valid": valid, "active": active, "difficulty": difficulty}
    return loss


def cement_hinge_loss(image_features, text_features, negative_features, logit_scale, concreteness=None,
                      weight=1.0, margin=0.05, alpha=0.15, beta=0.1, gamma=10.0, return_parts=False):
    """clipcomp's earlier variant, kept for comparison: NegCLIP + λ · mean max(0, m − (s⁺ − s⁻)) with
    m = m₀ + α·c + β·sigmoid(γ(s⁻ − s⁺)) — concreteness and difficulty added independently; one negative."""
    contrastive, sims = negclip_loss(image_features, text_features, negative_features, logit_scale,
                                     return_sims=True)
    n = image_features.shape[0]
    s_pos = sims[torch.arange(n), torch.arange(n)]
    s_neg = sims[torch.arange(n), n + torch.arange(n)]
    c = torch.full_like(s_pos, 0.5) if concreteness is None else \
        torch.nan_to_num(concreteness.to(s_pos.dtype), nan=0.5)
    difficulty = torch.sigmoid(gamma * (s_neg - s_pos)).detach()
    m = margin + alpha * c + beta * difficulty
    hinge = torch.relu(m - (s_pos - s_neg)).mean()
    loss = contrastive + weight * hinge
    if return_parts:
        active = (m - (s_pos - s_neg) > 0).float().mean()
        return loss, {"contrastive": contrastive, "hinge": hinge, "margins": m, "sims": sims, "active": active}
    return loss


class _CementBase(TrainingLoss):
    text_fields = ("hard_negatives",)
    fields = ("concreteness",)

    def _inputs(self, image_features, text_features, hard_negatives_features, concreteness):
        if hard_negatives_features is None:
            raise ClipcompError(f"loss {self.name!r} needs a hard_negatives field")
        image_features, text_features, neg = self.gather(image_features, text_features, hard_negatives_features)
        if concreteness is not None:
            (concreteness,) = self.gather(concreteness)
        return image_features, text_features, neg, concreteness

    def _log(self, loss, parts, n):
        self.measure_gradient_shares(loss, parts["sims"], n)
        if self.log_step:
            margins = parts["margins"][parts["valid"]] if "valid" in parts else parts["margins"]
            self._diagnostics.update({"active_margin_fraction": float(parts["active"]),
                                      "margin_mean": float(margins.mean()) if margins.numel() else float("nan")})
            if "hinge" in parts:
                self._diagnostics["hinge"] = float(parts["hinge"].detach())


@register_loss
class CementLoss(_CementBase):
    """clipcomp's reconstruction of Cement (see the module docstring)."""

    name = "cement"
    defaults = DEFAULTS
    optional_fields = ("negative_mask",)

    def forward(self, image_features, text_features, logit_scale, hard_negatives_features=None,
                concreteness=None, negative_mask=None, **_):
        img, txt, neg, conc = self._inputs(image_features, text_features, hard_negatives_features, concreteness)
        if negative_mask is not None:
            (negative_mask,) = self.gather(negative_mask)
        loss, parts = cement_loss(img, txt, neg, logit_scale, conc, return_parts=True,
                                  negative_mask=negative_mask, **self.options)
        self._log(loss, parts, img.shape[0])
        return loss


@register_loss
class CementHingeLoss(_CementBase):
    """clipcomp's earlier Cement variant (NegCLIP + a cosine hinge), kept for comparison."""

    name = "cement-hinge"
    defaults = HINGE_DEFAULTS

    def forward(self, image_features, text_features, logit_scale, hard_negatives_features=None,
                concreteness=None, **_):
        img, txt, neg, conc = self._inputs(image_features, text_features, hard_negatives_features, concreteness)
        if neg.shape[0] != img.shape[0]:
            raise ClipcompError("loss 'cement-hinge' takes exactly one hard negative per item")
        loss, parts = cement_hinge_loss(img, txt, neg, logit_scale, conc, return_parts=True, **self.options)
        self._log(loss, parts, img.shape[0])
        return loss
