"""The averaged feature of two networks, as MMT evaluates ``MMT.TEST_NET mean``."""

import torch.nn.functional as F


def average_normalized(features):
    """Mean of L2-normalised features (not normalised again).

    Args:
        features (Sequence[Tensor]): each ``[B, C]``, one per network.

    Returns:
        Tensor: ``[B, C]``.
    """
    return sum(F.normalize(feature, dim=1) for feature in features) / len(features)
