"""InfoNCE (CLIP's symmetric contrastive loss), delegated to open_clip's ClipLoss."""

from __future__ import annotations

from clipcomp.train.losses.base import TrainingLoss, register_loss


@register_loss
class InfoNCELoss(TrainingLoss):
    name = "infonce"

    def __init__(self, rank: int = 0, world_size: int = 1, **options) -> None:
        super().__init__(rank, world_size, **options)
        from clipcomp.models import import_open_clip

        import_open_clip()
        from open_clip.loss import ClipLoss

        self.clip = ClipLoss(local_loss=False, gather_with_grad=True, cache_labels=True, rank=rank,
                             world_size=world_size)

    def forward(self, image_features, text_features, logit_scale, **_):
        return self.clip(image_features, text_features, logit_scale)
