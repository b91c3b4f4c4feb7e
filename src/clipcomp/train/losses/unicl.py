"""UniCL (Yang et al., CVPR 2022, "Unified Contrastive Learning in Image-Text-Label Space"): image–text
contrastive learning in which every pair whose items share a label is a positive.

With few classes per batch (12 shape classes, batch 128: about ten items per class), CLIP's InfoNCE treats the
other same-class pairs as negatives; UniCL's targets are the label-equality matrix instead, row-normalized: for
image i, L_i = −(1/|P(i)|) Σ_{k∈P(i)} log softmax_k(s·⟨x_i, t_k⟩), P(i) = {k : y_k = y_i}; the same for text→image;
the loss is the mean of both directions — the bidirectional loss of the paper's Sec. 3 and of its public code
(microsoft/UniCL: label-equality targets, normalized per row, soft-target cross-entropy). With all labels distinct
it equals InfoNCE exactly (tested).
The label reaches the loss as the batch field `labels` (`--field labels=COLUMN`, a numeric column).
"""

from __future__ import annotations

from clipcomp.train.losses.base import TrainingLoss, register_loss


@register_loss
class UniCLLoss(TrainingLoss):
    name = "unicl"
    fields = ("labels",)

    def forward(self, image_features, text_features, logit_scale, labels=None, **_):
        import torch
        import torch.nn.functional as F

        img, txt, lab = self.gather(image_features, text_features, labels)
        logits = logit_scale * img @ txt.T
        pos = (lab[:, None] == lab[None, :]).to(logits.dtype)
        i2t = -(pos / pos.sum(1, keepdim=True) * F.log_softmax(logits, dim=1)).sum(1).mean()
        t2i = -(pos / pos.sum(0, keepdim=True) * F.log_softmax(logits, dim=0)).sum(0).mean()
        del torch
        return (i2t + t2i) / 2
