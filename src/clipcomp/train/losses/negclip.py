"""NegCLIP (Yuksekgonul et al., 2023): hard-negative captions join the image→text side of InfoNCE, so each
image must prefer its caption over every caption of the (global) batch and every hard negative."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from clipcomp.train.losses.base import TrainingLoss, register_loss


def negclip_loss(image_features, text_features, negative_features, logit_scale, return_sims: bool = False,
                 negative_mask=None):
    """Mean of CE(image→[texts; negatives]) and CE(text→images); features L2-normalized, global batch.
    With `return_sims`, also the image→text cosine matrix (B × (B + negatives)) the loss was built from.
    `negative_mask` (one 0/1 per negative): 0 marks a placeholder (an item without a negative), left out of the
    softmax — every caption stays in the contrastive term, as NegCLIP keeps it."""
    n = image_features.shape[0]
    labels = torch.arange(n, device=image_features.device)
    texts = torch.cat([text_features, negative_features]) if negative_features is not None else text_features
    sims = image_features @ texts.T
    logits_i2t = logit_scale * sims
    if negative_mask is not None and negative_features is not None:
        keep = torch.cat([torch.ones(n, dtype=torch.bool, device=sims.device), negative_mask.to(sims.device) > 0.5])
        logits_i2t = logits_i2t.masked_fill(~keep[None, :], float("-inf"))
    logits_t2i = logit_scale * sims[:, :n].T
    loss = (F.cross_entropy(logits_i2t, labels) + F.cross_entropy(logits_t2i, labels)) / 2
    return (loss, sims) if return_sims else loss


@register_loss
class NegClipLoss(TrainingLoss):
    name = "negclip"
    text_fields = ("hard_negatives",)
    optional_fields = ("negative_mask",)

    def forward(self, image_features, text_features, logit_scale, hard_negatives_features=None,
                negative_mask=None, **_):
        image_features, text_features = self.gather(image_features, text_features)
        neg = hard_negatives_features
        if neg is not None:
            (neg,) = self.gather(neg)
        if negative_mask is not None:
            (negative_mask,) = self.gather(negative_mask)
        loss, sims = negclip_loss(image_features, text_features, neg, logit_scale, return_sims=True,
                                  negative_mask=negative_mask)
        self.measure_gradient_shares(loss, sims, image_features.shape[0])
        return loss
