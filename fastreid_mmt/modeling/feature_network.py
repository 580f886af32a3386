"""The evaluated network as one self-contained module: raw images in, BN features out.

MMT evaluates ``MMT.TEST_NET``: one mean net, or (``mean``) the average of both mean nets'
L2-normalised features. :class:`FeatureNetwork` holds exactly the networks that take part and
fast-reid's pixel normalisation, so it can be traced (ONNX) or used without the MMT wrapper.
"""

from torch import nn

from .feature_average import average_normalized
from .meta_arch.mmt import MMT


class FeatureNetwork(nn.Module):
    """BN features of one fast-reid network, or the mean of two networks' L2-normalised ones.

    Same arithmetic as :meth:`MMT.inference` in eval mode (and as fast-reid's ``Baseline`` in
    eval mode for one network), without changing its input in place.

    Args:
        nets (Sequence[nn.Module]): one or two fast-reid meta-architectures with ``backbone``
            and ``heads`` (their eval-mode heads return the ``[B, C]`` BN features).
        pixel_mean (Tensor): ``[1, 3, 1, 1]`` fast-reid's ``MODEL.PIXEL_MEAN`` (0-255 scale).
        pixel_std (Tensor): ``[1, 3, 1, 1]`` fast-reid's ``MODEL.PIXEL_STD``.
    """

    def __init__(self, nets, pixel_mean, pixel_std):
        super().__init__()
        if len(nets) not in (1, 2):
            raise ValueError(f"a FeatureNetwork holds one or two networks, got {len(nets)}")
        self.nets = nn.ModuleList(nets)
        self.register_buffer("pixel_mean", pixel_mean.detach().clone().reshape(1, -1, 1, 1), persistent=False)
        self.register_buffer("pixel_std", pixel_std.detach().clone().reshape(1, -1, 1, 1), persistent=False)

    @classmethod
    def from_model(cls, model):
        """The evaluated network of ``model``: an :class:`MMT` (its ``test_net``), a
        :class:`FeatureNetwork` (returned as it is) or a single fast-reid network."""
        if isinstance(model, FeatureNetwork):
            return model
        if isinstance(model, MMT):
            names = ("mean_net1", "mean_net2") if model.test_net == "mean" else (model.test_net,)
            nets = [getattr(model, name) for name in names]
        else:
            nets = [model]
        return cls(nets, nets[0].pixel_mean, nets[0].pixel_std)

    def forward(self, images):
        """Features of a batch.

        Args:
            images (Tensor): ``[B, 3, H, W]`` float RGB in fast-reid's 0-255 input range (what
                ``build_transforms(cfg, is_train=False)`` produces), on the module's device.

        Returns:
            Tensor: ``[B, C]`` BN features (for two networks: the mean of their L2-normalised
            features, not normalised again).
        """
        x = (images - self.pixel_mean) / self.pixel_std
        if len(self.nets) == 1:
            return self.nets[0].heads(self.nets[0].backbone(x))
        return average_normalized([net.heads(net.backbone(x)) for net in self.nets])
