"""The loss registry. A loss is an `nn.Module` subclass of `TrainingLoss` that declares the batch fields it
needs; the trainer encodes the text fields, gathers nothing itself, and passes every field as a keyword
argument. Adding a loss = one module with one class decorated with `@register_loss` (and an import below).
"""

from clipcomp.train.losses.base import LOSSES, TrainingLoss, get_loss_class, make_loss, register_loss
from clipcomp.train.losses.ceclip import CEClipLoss
from clipcomp.train.losses.cement import CementLoss
from clipcomp.train.losses.infonce import InfoNCELoss
from clipcomp.train.losses.negclip import NegClipLoss
from clipcomp.train.losses.unicl import UniCLLoss

__all__ = ["LOSSES", "CEClipLoss", "CementLoss", "InfoNCELoss", "NegClipLoss", "TrainingLoss", "UniCLLoss",
           "get_loss_class", "make_loss", "register_loss"]
