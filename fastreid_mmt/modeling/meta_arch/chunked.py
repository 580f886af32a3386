"""Training forwards whose batch-norm statistics come from a fixed number of images."""

import torch


def forward_in_chunks(net, images, targets, ims_per_bn):
    """``net.heads(net.backbone(images), targets)``, forwarded ``ims_per_bn`` images at a time.

    In train mode BN normalises each chunk with its own statistics, as data-parallel training
    on ``B / ims_per_bn`` GPUs does (the reference: 64 images on 4 GPUs, 16 per BN); the
    chunks' outputs are concatenated, so the losses still see the whole batch. A batch of at
    most ``ims_per_bn`` images, ``ims_per_bn`` <= 0, or eval mode: one forward.

    Args:
        net (nn.Module): a fast-reid meta-architecture with ``backbone`` and ``heads``.
        images (Tensor): ``[B, 3, H, W]`` normalised images.
        targets (Tensor): ``[B]`` labels (or None, for a head that does not need them).
        ims_per_bn (int): chunk size.

    Returns:
        dict[str, Tensor]: the head's training outputs, each ``[B, ...]``.
    """
    if not net.training or ims_per_bn <= 0 or images.size(0) <= ims_per_bn:
        return net.heads(net.backbone(images), targets)
    image_chunks = images.split(ims_per_bn)
    target_chunks = targets.split(ims_per_bn) if targets is not None else [None] * len(image_chunks)
    chunks = [net.heads(net.backbone(x), t) for x, t in zip(image_chunks, target_chunks)]
    return {key: torch.cat([c[key] for c in chunks]) for key in chunks[0]}
