"""Source pre-training network: fast-reid's Baseline plus the softmax-triplet loss and the
reference's BN adaptation (a target batch forwarded at every step, without loss)."""

import torch

from fastreid.config import configurable
from fastreid.modeling.meta_arch import META_ARCH_REGISTRY, Baseline

from ..losses import build_added_losses
from .chunked import check_cpu_bf16, forward_in_chunks


@META_ARCH_REGISTRY.register()
class SourceBaseline(Baseline):
    """fast-reid ``Baseline`` that also computes the loss names this plugin registers in
    ``LOSS_REGISTRY`` (e.g. ``SoftmaxTripletLoss``, scaled by ``MODEL.LOSSES.TRI.SCALE``) and
    refuses unknown ones (fast-reid silently ignores them). Its checkpoints are plain
    ``Baseline`` checkpoints (same modules).

    When a training batch carries ``target_images`` ``[B', 3, H, W]``, they are forwarded
    in train mode without gradient and without loss: BN running statistics move toward the
    target domain (the reference's pre-training trick). No target label is read.
    """

    @classmethod
    def from_config(cls, cfg):
        return dict(super().from_config(cfg), ims_per_bn=cfg.PRETRAIN.IMS_PER_BN, cpu_bf16=check_cpu_bf16(cfg))

    @configurable
    def __init__(self, *args, ims_per_bn=0, cpu_bf16=False, **kwargs):
        super().__init__(*args, **kwargs)
        self.ims_per_bn = int(ims_per_bn)
        self.cpu_bf16 = bool(cpu_bf16)
        self.added_losses = build_added_losses(list(self.loss_kwargs["loss_names"]))

    def forward(self, batched_inputs):
        """Training: fast-reid ``Baseline``'s forward with BN batches of ``ims_per_bn`` images
        (:func:`forward_in_chunks`), then the optional no-loss target forward."""
        if not self.training:
            if isinstance(batched_inputs, dict):
                batched_inputs["images"] = batched_inputs["images"].to(self.device)
            return super().forward(batched_inputs)
        images = self.preprocess_image(batched_inputs["images"].to(self.device))
        targets = batched_inputs["targets"].to(self.device)
        outputs = forward_in_chunks(self, images, targets, self.ims_per_bn, self.cpu_bf16)
        if "target_images" in batched_inputs:
            # After the source batch, as the reference: the last BN update of a step is the target's.
            with torch.no_grad():
                target = self.preprocess_image(batched_inputs["target_images"].to(self.device))
                dummy = torch.zeros(target.size(0), dtype=torch.long, device=self.device)
                forward_in_chunks(self, target, dummy, self.ims_per_bn, self.cpu_bf16)
        return self.losses(outputs, targets)

    def losses(self, outputs, gt_labels):
        loss_dict = super().losses(outputs, gt_labels)
        for term in self.added_losses:
            loss_dict.update(term(outputs, gt_labels, self.loss_kwargs))
        return loss_dict
