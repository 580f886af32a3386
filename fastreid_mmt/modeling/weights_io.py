"""Reading, checking and writing network checkpoints: MMT's source checkpoints
(``MMT.INIT_WEIGHTS``) and the weights that retrieval and export load.

A fast-reid checkpoint is ``{"model": state_dict, ...}``; a bare state dict is accepted too,
and DDP's ``module.`` prefixes are dropped. Checkpoints hold tensors and plain numbers only
(``torch.load`` runs weights-only).
"""

import os

import torch

from fastreid.modeling import build_model

# The classifier's parameter in a fast-reid network (its shape follows the class count).
CLASSIFIER_KEY = "heads.weight"
# Mismatched keys named in an error before "(+N more)".
_KEYS_SHOWN = 8
DDP_PREFIX = "module."


def check_init_weight_paths(paths):
    """Raise unless ``paths`` (``MMT.INIT_WEIGHTS``) are two existing files.

    Raises:
        ValueError: not exactly two paths.
        FileNotFoundError: naming every path that does not exist.
    """
    if isinstance(paths, str) or len(paths) != 2:
        raise ValueError(
            f"MMT.INIT_WEIGHTS must be two checkpoint paths (source pre-training with two "
            f"seeds), got {paths!r}")
    missing = [p for p in paths if not os.path.isfile(p)]
    if missing:
        raise FileNotFoundError(f"MMT.INIT_WEIGHTS: checkpoint not found: {', '.join(missing)} (run the source "
                                f"pre-training first, see README 'Real data: the full recipe')")


def read_state_dict(path, key="MMT.INIT_WEIGHTS"):
    """The whole state dict of a fast-reid checkpoint (``{"model": ...}``) or a bare one, without
    DDP's ``module.`` prefixes. Raises ValueError (naming ``key`` and ``path``) when unreadable."""
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise ValueError(f"{key}: cannot read checkpoint {path}: {err}") from err
    state = ckpt.get("model", ckpt) if isinstance(ckpt, dict) else None
    if not isinstance(state, dict):
        raise ValueError(f"{key}: {path} holds no state dict")
    return {k[len(DDP_PREFIX):] if k.startswith(DDP_PREFIX) else k: v for k, v in state.items()}


def load_network_state(path):
    """State dict of one network from a fast-reid checkpoint (``{"model": ...}``) or a bare
    state dict, without its classifier."""
    state = read_state_dict(path)
    state.pop(CLASSIFIER_KEY, None)
    return state


def model_on_meta(cfg):
    """The model ``cfg`` describes, built on the ``meta`` device: the keys and shapes a checkpoint
    is checked against, without memory, compute or any weights (ImageNet's included) loaded."""
    meta = cfg.clone()
    meta.defrost()
    meta.MODEL.DEVICE = "meta"
    meta.MODEL.BACKBONE.PRETRAIN = False
    with torch.device("meta"):
        return build_model(meta)


def is_classifier_key(key):
    """True for a classifier's weight: one network's (``heads.weight``) or one of MMT's
    (``net1.heads.weight``, ...). Its shape follows the class count, which a checkpoint may
    not share with the config."""
    return key == CLASSIFIER_KEY or key.endswith("." + CLASSIFIER_KEY)


def check_state_matches(path, net, state, key="MMT.INIT_WEIGHTS",
                        hint="MODEL.BACKBONE.NAME / DEPTH / HEADS must equal those of the pre-training"):
    """Raise ValueError naming the keys of ``state`` that do not fit ``net`` (classifiers
    excepted); ``key`` names the path's origin and ``hint`` the fix in the message."""
    expected = {k: v.shape for k, v in net.state_dict().items() if not is_classifier_key(k)}
    state = {k: v for k, v in state.items() if not is_classifier_key(k)}
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = sorted(k for k in set(expected) & set(state) if tuple(state[k].shape) != tuple(expected[k]))
    if missing or unexpected or wrong:
        parts = []
        for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong)):
            if keys:
                more = f" (+{len(keys) - _KEYS_SHOWN} more)" if len(keys) > _KEYS_SHOWN else ""
                parts.append(f"{label}: {', '.join(keys[:_KEYS_SHOWN])}{more}")
        raise ValueError(
            f"{key}: {path} does not match the configured architecture ({hint}): " + "; ".join(parts))
