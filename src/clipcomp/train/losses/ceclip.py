"""CE-CLIP-style objective (Zhang, Awal & Agrawal 2023, "Contrasting intra-modal and ranking cross-modal hard
negatives"), for a dual encoder:

    L = L_NegCLIP + w_itm · L_ITM + w_rank · L_rank

* L_NegCLIP: symmetric InfoNCE whose image→text side also contrasts against the hard negatives;
* L_ITM (image–text matching): binary cross-entropy of a learned logistic head on the cosine,
  p(match) = sigmoid(a · s + b), positives labelled 1 and hard negatives 0 (a dual encoder has no fusion
  module, so the matching head reads the similarity — the part of CE-CLIP a CLIP model can train);
* L_rank: the cross-modal ranking hinge mean_i max(0, τ − (s⁺ᵢ − s⁻ᵢ)).

Defaults w_itm = 0.5, w_rank = 1, τ = 0.2; options `itm_weight`, `rank_weight`, `rank_margin`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from clipcomp.errors import ClipcompError
from clipcomp.train.losses.base import TrainingLoss, register_loss
from clipcomp.train.losses.negclip import negclip_loss

DEFAULTS = {"itm_weight": 0.5, "rank_weight": 1.0, "rank_margin": 0.2}


@register_loss
class CEClipLoss(TrainingLoss):
    name = "ceclip"
    text_fields = ("hard_negatives",)

    defaults = DEFAULTS

    def __init__(self, rank: int = 0, world_size: int = 1, **options) -> None:
        super().__init__(rank, world_size, **options)
        self.itm_scale = nn.Parameter(torch.tensor(10.0))
        self.itm_bias = nn.Parameter(torch.tensor(-2.5))

    def forward(self, image_features, text_features, logit_scale, hard_negatives_features=None, **_):
        if hard_negatives_features is None:
            raise ClipcompError("loss 'ceclip' needs a hard_negatives field (one negative caption per item)")
        image_features, text_features, neg = self.gather(image_features, text_features, hard_negatives_features)
        if neg.shape[0] != image_features.shape[0]:
            raise ClipcompError("loss 'ceclip' takes exactly one hard negative per item")
        contrastive, sims = negclip_loss(image_features, text_features, neg, logit_scale, return_sims=True)
        n = image_features.shape[0]
        s_pos = sims[torch.arange(n), torch.arange(n)]
        s_neg = sims[torch.arange(n), n + torch.arange(n)]
        itm_logits = self.itm_scale * torch.cat([s_pos, s_neg]) + self.itm_bias
        labels = torch.cat([torch.ones_like(s_pos), torch.zeros_like(s_neg)])
        itm = F.binary_cross_entropy_with_logits(itm_logits, labels)
        rank = torch.relu(self.options["rank_margin"] - (s_pos - s_neg)).mean()
        loss = contrastive + self.options["itm_weight"] * itm + self.options["rank_weight"] * rank
        self.measure_gradient_shares(loss, sims, n)
        if self.log_step:
            self._diagnostics.update({"itm": float(itm.detach()), "rank": float(rank.detach())})
        return loss
