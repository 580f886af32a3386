"""Training forwards whose batch-norm statistics come from a fixed number of images, optionally
in bfloat16 on the CPU."""

import torch


def check_cpu_bf16(cfg):
    """``MMT.CPU_BF16`` as a bool; refuses it on a CUDA device (use ``SOLVER.AMP.ENABLED`` there)."""
    enabled = bool(cfg.MMT.CPU_BF16)
    if enabled and str(cfg.MODEL.DEVICE).startswith("cuda"):
        raise ValueError(f"MMT.CPU_BF16 is for training on the CPU, but MODEL.DEVICE is {cfg.MODEL.DEVICE!r}: "
                         "set MMT.CPU_BF16 False and use SOLVER.AMP.ENABLED (float16 autocast) on a GPU")
    return enabled


def forward_in_chunks(net, images, targets, ims_per_bn, bf16=False):
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
        bf16 (bool): forward under ``torch.autocast("cpu", dtype=torch.bfloat16)`` (convolutions
            and matrix products in bfloat16, about twice as fast on CPUs with AVX512-BF16 or AMX;
            weights, gradients and BN statistics stay float32). Outputs are cast back to float32,
            so the losses run in float32. Ignored for tensors that are not on the CPU.

    Returns:
        dict[str, Tensor]: the head's training outputs, each ``[B, ...]`` (in eval mode: what
        the head returns, the ``[B, C]`` features for fast-reid's heads).
    """
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bool(bf16) and images.device.type == "cpu"):
        if not net.training or ims_per_bn <= 0 or images.size(0) <= ims_per_bn:
            outputs = net.heads(net.backbone(images), targets)
        else:
            image_chunks = images.split(ims_per_bn)
            target_chunks = targets.split(ims_per_bn) if targets is not None else [None] * len(image_chunks)
            chunks = [net.heads(net.backbone(x), t) for x, t in zip(image_chunks, target_chunks)]
            outputs = {key: torch.cat([c[key] for c in chunks]) for key in chunks[0]}
    if bf16 and isinstance(outputs, torch.Tensor):  # eval-mode heads return the features
        return outputs.float()
    if bf16:
        outputs = {key: value.float() if value.is_floating_point() else value for key, value in outputs.items()}
    return outputs
