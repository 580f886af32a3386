"""The MMT meta-architecture: two students, two mean nets, the MMT loss dict."""

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from fastreid.config import configurable
from fastreid.modeling.losses import log_accuracy
from fastreid.modeling.meta_arch import META_ARCH_REGISTRY

from ..feature_average import average_normalized
from .chunked import check_cpu_bf16, forward_in_chunks
from ..weights_io import CLASSIFIER_KEY, check_init_weight_paths, check_state_matches, load_network_state
from ..losses import cross_entropy_loss, soft_cross_entropy, soft_softmax_triplet_loss, softmax_triplet_loss

# The four networks, in the order of their roles: (student, its mean net) pairs.
NET_NAMES = ("net1", "net2", "mean_net1", "mean_net2")
# Name of the classifier parameter inside a fast-reid network (EmbeddingHead / ClasHead).
TEST_NETS = ("mean_net1", "mean_net2", "mean")
# How many offending keys an architecture-mismatch error lists.


def build_base_network(cfg):
    """Build one network of MMT: ``cfg.MMT.BASE_ARCH`` from the same fast-reid config."""
    sub_cfg = cfg.clone()
    sub_cfg.defrost()
    sub_cfg.MODEL.META_ARCHITECTURE = cfg.MMT.BASE_ARCH
    return META_ARCH_REGISTRY.get(cfg.MMT.BASE_ARCH)(sub_cfg)


@META_ARCH_REGISTRY.register()
class MMT(nn.Module):
    """Mutual Mean-Teaching (Ge et al., ICLR 2020).

    Students ``net1``, ``net2`` learn from hard pseudo labels and from the *other*
    student's mean net (``mean_net2`` teaches ``net1``, ``mean_net1`` teaches ``net2``).
    Mean nets get no gradient; the hook updates them by EMA after each step. All four are
    registered submodules, so checkpoints, DDP and ``.to()`` see them.

    Training input: a dict with ``images`` ``[B, 3, H, W]`` (view 1, fed to net1/mean_net1),
    ``images2`` (view 2, fed to net2/mean_net2) and ``targets`` ``[B]`` pseudo labels.
    Eval input: ``images``; output: ``[B, C]`` BN features of ``test_net``.

    With ``single_network`` (the paper's "baseline" ablation) only ``net1`` trains, on hard
    pseudo labels clustered from its own mean net's features (the mean net is forwarded only
    for its BN statistics; with ``MMT.EMA_ALPHA`` 0 it is the network itself); ``net2`` and
    ``mean_net2`` are frozen and never forwarded (they stay registered: one checkpoint layout).
    """

    @configurable
    def __init__(self, *, net1, net2, mean_net1, mean_net2, soft_ce_weight, soft_tri_weight,
                 ce_epsilon, test_net, ims_per_bn=0, mean_net_train_mode=True, channels_last=False, cpu_bf16=False,
                 single_network=False, hard_ce_weight=None, hard_tri_weight=None):
        super().__init__()
        if test_net not in TEST_NETS:
            raise ValueError(f"MMT.TEST_NET must be one of {TEST_NETS}, got {test_net!r}")
        if single_network and (soft_ce_weight or soft_tri_weight or test_net != "mean_net1"):
            raise ValueError(f"MMT.SINGLE_NETWORK trains net1 alone on hard pseudo labels: it needs "
                             f"MMT.SOFT_CE_WEIGHT 0 and MMT.SOFT_TRI_WEIGHT 0 (no teacher) and MMT.TEST_NET mean_net1, "
                             f"got {soft_ce_weight}, {soft_tri_weight}, {test_net!r}")
        self.net1, self.net2 = net1, net2
        self.mean_net1, self.mean_net2 = mean_net1, mean_net2
        self.single_network = bool(single_network)
        for net in (self.mean_net1, self.mean_net2) + ((self.net2,) if self.single_network else ()):
            net.requires_grad_(False)
        self.soft_ce_weight = soft_ce_weight
        self.soft_tri_weight = soft_tri_weight
        for key, value in (("HARD_CE_WEIGHT", hard_ce_weight), ("HARD_TRI_WEIGHT", hard_tri_weight)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0):
                raise ValueError(f"MMT.{key} must be None (1 - the soft weight) or a number >= 0, got {value!r}")
        self.hard_ce_weight = hard_ce_weight
        self.hard_tri_weight = hard_tri_weight
        self.ce_epsilon = ce_epsilon
        self.test_net = test_net
        self.ims_per_bn = int(ims_per_bn)
        self.mean_net_train_mode = bool(mean_net_train_mode)
        self.channels_last = bool(channels_last)
        self.cpu_bf16 = bool(cpu_bf16)
        if self.channels_last:
            self.to(memory_format=torch.channels_last)
        # Detached loss terms of the last training step (read to name a non-finite term).
        self.last_losses = {}

    @classmethod
    def from_config(cls, cfg):
        nets = {name: build_base_network(cfg) for name in NET_NAMES}
        nets["mean_net1"].load_state_dict(nets["net1"].state_dict())
        nets["mean_net2"].load_state_dict(nets["net2"].state_dict())
        return dict(
            **nets,
            soft_ce_weight=cfg.MMT.SOFT_CE_WEIGHT,
            soft_tri_weight=cfg.MMT.SOFT_TRI_WEIGHT,
            ce_epsilon=cfg.MMT.CE_EPSILON,
            test_net=cfg.MMT.TEST_NET,
            ims_per_bn=cfg.MMT.IMS_PER_BN,
            mean_net_train_mode=cfg.MMT.MEAN_NET_TRAIN_MODE,
            channels_last=cfg.MMT.CHANNELS_LAST,
            cpu_bf16=check_cpu_bf16(cfg),
            single_network=cfg.MMT.SINGLE_NETWORK,
            hard_ce_weight=cfg.MMT.HARD_CE_WEIGHT,
            hard_tri_weight=cfg.MMT.HARD_TRI_WEIGHT,
        )

    @property
    def device(self):
        return self.net1.pixel_mean.device

    def pairs(self):
        """``[(net1, mean_net1), (net2, mean_net2)]``: each trained student with its own mean
        net (the first pair alone with ``single_network``)."""
        pairs = [(self.net1, self.mean_net1), (self.net2, self.mean_net2)]
        return pairs[:1] if self.single_network else pairs

    def preprocess(self, images):
        """Move a batch to the model's device and normalise it (not in place).

        Args:
            images (Tensor): ``[B, 3, H, W]`` in fast-reid's 0-255 input range.
        """
        images = images.to(self.device, non_blocking=True)
        images = (images - self.net1.pixel_mean) / self.net1.pixel_std
        if self.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        return images

    def _run(self, net, images, targets=None):
        """One network's head output; BN batches of ``ims_per_bn`` images in train mode (see
        :func:`forward_in_chunks`)."""
        return forward_in_chunks(net, images, targets, self.ims_per_bn, self.cpu_bf16 and net.training)

    def _run_mean_net(self, net, images, targets):
        """Mean-net forward (no gradient: the caller's ``no_grad``). With
        ``mean_net_train_mode`` (the reference) its BN layers use batch statistics and update
        their running statistics; otherwise they use the running statistics, untouched."""
        if self.mean_net_train_mode:
            return self._run(net, images, targets)
        norms = [m for m in net.modules() if isinstance(m, _BatchNorm) and m.training]
        for m in norms:
            m.eval()
        try:
            return forward_in_chunks(net, images, targets, 0, self.cpu_bf16)
        finally:
            for m in norms:
                m.train()

    def forward(self, batched_inputs):
        if not self.training:
            return self.inference(batched_inputs)
        x1 = self.preprocess(batched_inputs["images"])
        x2 = self.preprocess(batched_inputs["images2"])
        targets = batched_inputs["targets"].to(self.device)
        if self.single_network:
            out1 = self._run(self.net1, x1, targets)
            with torch.no_grad():  # only for its BN statistics, as the mean nets of MMT
                self._run_mean_net(self.mean_net1, x1, targets)
            log_accuracy(out1["pred_class_logits"].detach(), targets)
            w_ce, w_tri = self.hard_weights()
            losses = {"loss_ce": w_ce * cross_entropy_loss(out1["cls_outputs"], targets, self.ce_epsilon),
                      "loss_tri": w_tri * softmax_triplet_loss(out1["features"], targets)}
            self.last_losses = {name: value.detach() for name, value in losses.items()}
            return losses
        out1, out2 = self._run(self.net1, x1, targets), self._run(self.net2, x2, targets)
        with torch.no_grad():
            mean1 = self._run_mean_net(self.mean_net1, x1, targets)
            mean2 = self._run_mean_net(self.mean_net2, x2, targets)
        log_accuracy(out1["pred_class_logits"].detach(), targets)
        losses = self.losses(out1, out2, mean1, mean2, targets)
        self.last_losses = {name: value.detach() for name, value in losses.items()}
        return losses

    def hard_weights(self):
        """``(hard CE, hard triplet)`` weights: ``MMT.HARD_*_WEIGHT``, or 1 - the soft one's
        when None (1 for the single network, whose soft weights are 0)."""
        return tuple(1.0 - soft if hard is None else hard for soft, hard in
                     ((self.soft_ce_weight, self.hard_ce_weight), (self.soft_tri_weight, self.hard_tri_weight)))

    def losses(self, out1, out2, mean1, mean2, targets):
        """The MMT objective as fast-reid's loss dict (each term already weighted).

        Each argument ``out*``/``mean*`` is a fast-reid head output dict with
        ``cls_outputs`` ``[B, K]``, ``pred_class_logits`` ``[B, K]`` and ``features``
        ``[B, D]`` (pre-BN).
        """
        w_ce, w_tri = self.soft_ce_weight, self.soft_tri_weight
        w_hard_ce, w_hard_tri = self.hard_weights()
        hard_ce = sum(cross_entropy_loss(o["cls_outputs"], targets, self.ce_epsilon) for o in (out1, out2))
        hard_tri = sum(softmax_triplet_loss(o["features"], targets) for o in (out1, out2))
        # Each student is taught by the other student's mean net.
        soft_ce = (soft_cross_entropy(out1["pred_class_logits"], mean2["pred_class_logits"])
                   + soft_cross_entropy(out2["pred_class_logits"], mean1["pred_class_logits"]))
        soft_tri = (soft_softmax_triplet_loss(out1["features"], mean2["features"], targets)
                    + soft_softmax_triplet_loss(out2["features"], mean1["features"], targets))
        return {
            "loss_ce": w_hard_ce * hard_ce,
            "loss_tri": w_hard_tri * hard_tri,
            "loss_soft_ce": w_ce * soft_ce,
            "loss_soft_tri": w_tri * soft_tri,
        }

    @torch.no_grad()
    def inference(self, batched_inputs):
        """BN features ``[B, C]`` of ``test_net`` (``mean``: average of both mean nets'
        L2-normalised features)."""
        images = batched_inputs["images"] if isinstance(batched_inputs, dict) else batched_inputs
        images = self.preprocess(images)
        if self.test_net == "mean":
            return average_normalized([self._run(net, images) for net in (self.mean_net1, self.mean_net2)])
        return self._run(getattr(self, self.test_net), images)

    @torch.no_grad()
    def extract_mean_net_features(self, images):
        """The trained mean nets' L2-normalised BN features (both; ``mean_net1`` alone with
        ``single_network``; eval mode is the caller's business), in bfloat16 with
        ``MMT.CPU_BF16`` as in training. ``images`` ``[B, 3, H, W]`` -> a tuple of ``[B, C]``."""
        x = self.preprocess(images)
        return tuple(F.normalize(forward_in_chunks(mean_net, x, None, self.ims_per_bn, self.cpu_bf16), dim=1)
                     for _, mean_net in self.pairs())

    def extract_mean_features(self, images):
        """Clustering features: the average of :meth:`extract_mean_net_features`,
        ``[B, 3, H, W]`` -> ``[B, C]``."""
        feats = self.extract_mean_net_features(images)
        return sum(feats) / len(feats)

    @torch.no_grad()
    def reset_classifiers(self, centroids):
        """Re-initialise the classifier of all four networks with L2-normalised centroids.

        The parameter objects are kept (an optimizer holding them stays valid); their shape
        follows the number of clusters. Optimizer state of the classifier is the caller's
        business (see ``MMTHook``).

        Args:
            centroids (Tensor): ``[K, C]`` cluster centres in BN-feature space.

        Returns:
            list[nn.Parameter]: the four classifier parameters.
        """
        weight = F.normalize(centroids.float(), dim=1).to(self.device)
        params = []
        for name in NET_NAMES:
            param = dict(getattr(self, name).named_parameters())[CLASSIFIER_KEY]
            param.data = weight.clone().to(param.dtype)
            params.append(param)
        return params

    def num_classes(self):
        return dict(self.net1.named_parameters())[CLASSIFIER_KEY].shape[0]

    def load_init_weights(self, paths):
        """Load the two source checkpoints: ``paths[0]`` into net1 and mean_net1,
        ``paths[1]`` into net2 and mean_net2. Classifiers are not loaded.

        Raises:
            ValueError: not exactly two paths, or a checkpoint whose keys or shapes do not
                match the configured architecture (the keys are named).
            FileNotFoundError: a path that does not exist.
        """
        check_init_weight_paths(paths)
        for path, net, mean_net in zip(paths, (self.net1, self.net2), (self.mean_net1, self.mean_net2)):
            state = load_network_state(path)
            check_state_matches(path, net, state)
            net.load_state_dict(state, strict=False)
            mean_net.load_state_dict(state, strict=False)
