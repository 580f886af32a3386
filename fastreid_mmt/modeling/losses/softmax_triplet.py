"""Softmax-triplet losses of MMT: hard-label and soft-label (mean-teacher) versions.

Both mine pairs batch-hard on the **student's** Euclidean distances of un-normalised
features: for anchor ``i``, ``ap(i)`` is its farthest same-label sample (itself included)
and ``an(i)`` its nearest other-label sample. Anchors without any other-label sample in the
batch contribute nothing.
"""

import torch
import torch.nn.functional as F

# Floor of squared distances before the square root (keeps sqrt differentiable at 0).
_MIN_SQUARED_DIST = 1e-12


def euclidean_dist(x, y):
    """Pairwise Euclidean distances ``sqrt(max(|x_i - y_j|^2, 1e-12))``.

    Args:
        x (Tensor): ``[M, D]``.
        y (Tensor): ``[N, D]``.

    Returns:
        Tensor: ``[M, N]``.
    """
    xx = x.pow(2).sum(1, keepdim=True)
    yy = y.pow(2).sum(1, keepdim=True).t()
    dist = xx + yy - 2.0 * x @ y.t()
    return dist.clamp(min=_MIN_SQUARED_DIST).sqrt()


def hard_example_mining(dist, targets):
    """Batch-hard mining on a square distance matrix.

    Args:
        dist (Tensor): ``[B, B]`` distances.
        targets (Tensor): ``[B]`` integer labels.

    Returns:
        tuple: ``(d_ap [B], d_an [B], ap_idx [B], an_idx [B], valid [B] bool)``; ``valid``
        is False for anchors with no other-label sample (their ``an`` is meaningless).
    """
    is_pos = targets.view(-1, 1) == targets.view(1, -1)
    d_ap, ap_idx = dist.masked_fill(~is_pos, float("-inf")).max(dim=1)
    d_an, an_idx = dist.masked_fill(is_pos, float("inf")).min(dim=1)
    valid = (~is_pos).any(dim=1)
    return d_ap, d_an, ap_idx, an_idx, valid


def _mean_over_valid(per_anchor, valid):
    if not bool(valid.any()):
        return per_anchor.sum() * 0.0  # keeps the graph; no anchor has a negative
    return per_anchor[valid].mean()


def softmax_triplet_loss(embedding, targets):
    """Hard-label softmax-triplet: ``mean_i -log(e^{d_an} / (e^{d_ap} + e^{d_an}))``,
    i.e. ``mean_i softplus(d_ap - d_an)`` (a binary cross-entropy saying the negative is
    farther than the positive; not the margin-ranking triplet).

    Args:
        embedding (Tensor): ``[B, D]`` un-normalised (pre-BN) features.
        targets (Tensor): ``[B]`` labels.

    Returns:
        Tensor: scalar loss.
    """
    dist = euclidean_dist(embedding, embedding)
    d_ap, d_an, _, _, valid = hard_example_mining(dist, targets)
    # Anchors without a negative have d_an = inf; keep them finite before masking them out.
    per_anchor = F.softplus(d_ap - torch.where(valid, d_an, d_ap))
    return _mean_over_valid(per_anchor, valid)


def soft_softmax_triplet_loss(embedding, teacher_embedding, targets):
    """Soft-label softmax-triplet of MMT.

    Pairs ``(i, ap(i))``, ``(i, an(i))`` are mined on the student's distances; the target
    ``t_i = softmax([g_ap, g_an])`` comes from the teacher's distances on the same pairs
    (detached); the loss is ``mean_i sum_j -t_ij * log softmax([d_ap, d_an])_ij``.

    Args:
        embedding (Tensor): ``[B, D]`` student features (pre-BN).
        teacher_embedding (Tensor): ``[B, D]`` teacher (mean-net) features; no gradient
            reaches it.
        targets (Tensor): ``[B]`` labels.

    Returns:
        Tensor: scalar loss.
    """
    dist = euclidean_dist(embedding, embedding)
    d_ap, d_an, ap_idx, an_idx, valid = hard_example_mining(dist, targets)
    d_an = torch.where(valid, d_an, d_ap)
    with torch.no_grad():
        teacher = teacher_embedding.detach()
        t_dist = euclidean_dist(teacher, teacher)
        rows = torch.arange(t_dist.size(0), device=t_dist.device)
        t_pair = torch.stack((t_dist[rows, ap_idx], t_dist[rows, an_idx]), dim=1)
        t_prob = F.softmax(t_pair, dim=1)
    log_prob = F.log_softmax(torch.stack((d_ap, d_an), dim=1), dim=1)
    per_anchor = -(t_prob * log_prob).sum(dim=1)
    return _mean_over_valid(per_anchor, valid)
