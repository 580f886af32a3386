"""MMT losses as plain functions (no device code), like fast-reid's ``triplet_loss``.

``LOSS_REGISTRY`` maps the names accepted in ``MODEL.LOSSES.NAME`` by this plugin's
meta-architectures to these functions (fast-reid itself has no loss registry).
"""

from fastreid.modeling.losses import cross_entropy_loss
from fastreid.utils.registry import Registry

from .soft_entropy import soft_cross_entropy
from .softmax_triplet import euclidean_dist, soft_softmax_triplet_loss, softmax_triplet_loss

LOSS_REGISTRY = Registry("MMT_LOSS")
LOSS_REGISTRY.register(softmax_triplet_loss)
LOSS_REGISTRY.register(soft_softmax_triplet_loss)
LOSS_REGISTRY.register(soft_cross_entropy)

__all__ = [
    "LOSS_REGISTRY",
    "cross_entropy_loss",
    "euclidean_dist",
    "soft_cross_entropy",
    "soft_softmax_triplet_loss",
    "softmax_triplet_loss",
]
