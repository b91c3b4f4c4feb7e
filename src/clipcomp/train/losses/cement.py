"""Cement (Im, Madhwal & Gupta 2026): InfoNCE with hard negatives plus a per-pair margin calibrated by the
concreteness of what the negative changed and by how hard the pair is.

For image i with caption t_i and hard negative n_i (cosines s⁺ᵢ = ⟨vᵢ, tᵢ⟩, s⁻ᵢ = ⟨vᵢ, nᵢ⟩):

    L = L_NegCLIP + λ · mean_i max(0, mᵢ − (s⁺ᵢ − s⁻ᵢ))
    mᵢ = m₀ + α · cᵢ + β · dᵢ,    dᵢ = sigmoid(γ · (s⁻ᵢ − s⁺ᵢ))   (no gradient through the margin)

cᵢ is the normalized concreteness (0–1) of the span the negative changed (`concreteness` batch field; a
missing value counts as 0.5): negatives that change concrete words must be separated by more. dᵢ grows as
the negative approaches or overtakes the caption, so hard pairs get a larger margin. L_NegCLIP is the
symmetric InfoNCE whose image→text side also contrasts against every hard negative. Defaults: λ = 1,
m₀ = 0.05, α = 0.15, β = 0.1, γ = 10 (cosine units); each is an option (`--loss-option margin=0.1`, …).
"""

from __future__ import annotations

import torch

from clipcomp.errors import ClipcompError
from clipcomp.train.losses.base import TrainingLoss, register_loss
from clipcomp.train.losses.negclip import negclip_loss

DEFAULTS = {"weight": 1.0, "margin": 0.05, "alpha": 0.15, "beta": 0.1, "gamma": 10.0}


def cement_loss(image_features, text_features, negative_features, logit_scale, concreteness=None,
                weight=1.0, margin=0.05, alpha=0.15, beta=0.1, gamma=10.0, return_parts=False):
    """The Cement loss for one negative per image (features L2-normalized)."""
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
        return loss, {"contrastive": contrastive, "hinge": hinge, "margins": m, "sims": sims}
    return loss


@register_loss
class CementLoss(TrainingLoss):
    name = "cement"
    text_fields = ("hard_negatives",)
    fields = ("concreteness",)

    defaults = DEFAULTS

    def forward(self, image_features, text_features, logit_scale, hard_negatives_features=None,
                concreteness=None, **_):
        if hard_negatives_features is None:
            raise ClipcompError("loss 'cement' needs a hard_negatives field (one negative caption per item)")
        image_features, text_features, neg = self.gather(image_features, text_features, hard_negatives_features)
        if concreteness is not None:
            (concreteness,) = self.gather(concreteness)
        if neg.shape[0] != image_features.shape[0]:
            raise ClipcompError("loss 'cement' takes exactly one hard negative per item")
        loss, parts = cement_loss(image_features, text_features, neg, logit_scale, concreteness,
                                  return_parts=True, **self.options)
        self.measure_gradient_shares(loss, parts["sims"], image_features.shape[0])
        if self.log_step:
            self._diagnostics.update({"hinge": float(parts["hinge"].detach()),
                                      "margin_mean": float(parts["margins"].mean())})
        return loss
