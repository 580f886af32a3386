"""Soft cross-entropy of MMT (a student's logits against a mean net's)."""

import torch.nn.functional as F


def soft_cross_entropy(logits, teacher_logits):
    """``mean_i sum_k -softmax(teacher)_ik * log_softmax(student)_ik`` (no temperature).

    Args:
        logits (Tensor): ``[B, C]`` student logits.
        teacher_logits (Tensor): ``[B, C]`` teacher logits; detached (no gradient reaches it).

    Returns:
        Tensor: scalar loss.
    """
    target = F.softmax(teacher_logits.detach(), dim=1)
    return -(target * F.log_softmax(logits, dim=1)).sum(dim=1).mean()
