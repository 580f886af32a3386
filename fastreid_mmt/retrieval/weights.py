"""The network a checkpoint evaluates, checked against the configured architecture.

Two kinds of checkpoint, told apart by their keys:

* an MMT checkpoint (keys ``net1.*``, ``mean_net1.*``, ...): the :class:`MMT` model is built
  and evaluated with ``MMT.TEST_NET`` through its own ``inference``; only the networks
  ``TEST_NET`` uses are loaded;
* a single-network checkpoint (a plain fast-reid ``Baseline`` as ``tools/export_model.py``
  writes it, or a source pre-training checkpoint): one network of the configured
  meta-architecture (``MMT.BASE_ARCH`` when the config is an MMT one), as a
  :class:`FeatureNetwork`.

Either way the result maps ``[B, 3, H, W]`` 0-255 images to ``[B, C]`` BN features.
"""

import os

from fastreid.modeling import build_model

from ..modeling.feature_network import FeatureNetwork
from ..modeling.meta_arch.mmt import NET_NAMES, build_base_network
from ..modeling.weights_io import CLASSIFIER_KEY, check_state_matches, read_state_dict

MMT_ARCH = "MMT"
# What to fix when a checkpoint does not fit the config.
ARCH_HINT = ("--config-file and its KEY VALUE overrides (MODEL.BACKBONE.NAME / DEPTH / FEAT_DIM, MODEL.HEADS) "
             "must describe the network the checkpoint was trained with")


def is_mmt_state(state):
    """True when the state dict holds MMT's networks (``net1.*``, ``mean_net1.*``, ...)."""
    return any(k.split(".", 1)[0] in NET_NAMES for k in state)


def prefixed_state(state, prefix):
    """The keys of ``state`` under ``prefix.``, without it: one of MMT's networks, classifier
    included (empty when the checkpoint has no such network)."""
    return {k[len(prefix) + 1:]: v for k, v in state.items() if k.startswith(prefix + ".")}


def network_state(state, prefix):
    """The keys of ``state`` under ``prefix.``, without it and without the classifier."""
    sub = prefixed_state(state, prefix)
    sub.pop(CLASSIFIER_KEY, None)
    return sub


def mmt_config(cfg):
    """``cfg`` as an MMT config: unchanged when it is one, else its meta-architecture becomes
    ``MMT.BASE_ARCH`` under an ``MMT`` model (a plain config with an MMT checkpoint)."""
    if cfg.MODEL.META_ARCHITECTURE == MMT_ARCH:
        return cfg
    mmt = cfg.clone()
    mmt.defrost()
    mmt.MMT.BASE_ARCH = cfg.MODEL.META_ARCHITECTURE
    mmt.MODEL.META_ARCHITECTURE = MMT_ARCH
    return mmt


def load_mmt(cfg, state, path, key):
    """The :class:`MMT` model of ``cfg`` with the networks ``MMT.TEST_NET`` evaluates loaded from
    ``state``; ValueError naming the keys when they do not fit."""
    model = build_model(mmt_config(cfg))
    names = ("mean_net1", "mean_net2") if model.test_net == "mean" else (model.test_net,)
    for name in names:
        sub = network_state(state, name)
        if not sub:
            raise ValueError(f"{key}: {path} holds no '{name}.*' weights, which MMT.TEST_NET {model.test_net!r} "
                             f"evaluates (its networks: {sorted({k.split('.', 1)[0] for k in state})})")
        net = getattr(model, name)
        check_state_matches(path, net, sub, key, ARCH_HINT)
        net.load_state_dict(sub, strict=False)
    return model


def load_single_network(cfg, state, path, key):
    """One network of ``cfg``'s architecture loaded from ``state``, as a :class:`FeatureNetwork`."""
    net = build_base_network(cfg) if cfg.MODEL.META_ARCHITECTURE == MMT_ARCH else build_model(cfg)
    state = dict(state)
    state.pop(CLASSIFIER_KEY, None)
    if not state:
        raise ValueError(f"{key}: {path} holds an empty state dict")
    check_state_matches(path, net, state, key, ARCH_HINT)
    net.load_state_dict(state, strict=False)
    return FeatureNetwork.from_model(net)


def load_feature_model(cfg, path, key="--weights"):
    """The evaluated network of the checkpoint ``path``, in eval mode on ``MODEL.DEVICE``.

    Args:
        cfg (CfgNode): the config describing the checkpoint's architecture (an MMT config or a
            plain fast-reid one, e.g. the ``config.yaml`` of ``tools/export_model.py``).
        path (str): the checkpoint.
        key (str): the option that named it (for messages).

    Returns:
        nn.Module: ``[B, 3, H, W]`` 0-255 images -> ``[B, C]`` BN features.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: an unreadable file, or keys / shapes that do not fit the config (named).
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{key}: checkpoint not found: {path}")
    state = read_state_dict(path, key)
    model = load_mmt(cfg, state, path, key) if is_mmt_state(state) else load_single_network(cfg, state, path, key)
    return model.to(cfg.MODEL.DEVICE).eval()
