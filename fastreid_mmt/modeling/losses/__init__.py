"""MMT losses as plain functions (no device code), like fast-reid's ``triplet_loss``, and the
registry of the loss names this plugin adds to ``MODEL.LOSSES.NAME`` (:mod:`.registry`)."""

from fastreid.modeling.losses import cross_entropy_loss

from .registry import FASTREID_LOSSES, LOSS_REGISTRY, build_added_losses
from .soft_entropy import soft_cross_entropy
from .softmax_triplet import euclidean_dist, soft_softmax_triplet_loss, softmax_triplet_loss

__all__ = [
    "FASTREID_LOSSES",
    "LOSS_REGISTRY",
    "build_added_losses",
    "cross_entropy_loss",
    "euclidean_dist",
    "soft_cross_entropy",
    "soft_softmax_triplet_loss",
    "softmax_triplet_loss",
]
