"""Config setup shared by ``tools/train_net.py`` and the tests."""

import logging
import os
import warnings

import torch

from fastreid.config import get_cfg
from fastreid.engine import default_setup
from fastreid.utils import comm
from fastreid.utils.env import seed_all_rng
from fastreid.utils.logger import setup_logger

from ..clustering.jaccard import VARIANTS as JACCARD_VARIANTS
from ..clustering.kmeans import BACKENDS
from ..clustering.pseudo_labels import METHODS
from ..config import add_mmt_config
from ..data import dataset_root
from ..data.checks import check_datasets
from ..modeling.meta_arch.mmt import TEST_NETS, check_init_weight_paths

logger = logging.getLogger(__name__)

# MMT.CLUSTER.DEVICE values: where the model lives, the CPU, or the (current) GPU.
CLUSTER_DEVICES = ("auto", "cpu", "cuda")


def build_cfg(config_file, opts=()):
    """fast-reid config + MMT keys, merged from ``config_file`` and ``KEY VALUE`` overrides.
    An unknown key raises fast-reid's KeyError naming it."""
    cfg = get_cfg()
    add_mmt_config(cfg)
    cfg.merge_from_file(config_file)
    cfg.merge_from_list(list(opts))
    check_choices(cfg)
    resolve_device(cfg)
    check_pretrain_path(cfg)
    return cfg


def check_choices(cfg):
    """A misspelt value of a key with fixed choices fails here, naming the key, rather than
    after the model is built or the first features are extracted."""
    choices = {
        "MMT.CLUSTER.METHOD": (cfg.MMT.CLUSTER.METHOD, METHODS),
        "MMT.CLUSTER.BACKEND": (cfg.MMT.CLUSTER.BACKEND, BACKENDS),
        "MMT.CLUSTER.DEVICE": (cfg.MMT.CLUSTER.DEVICE, CLUSTER_DEVICES),
        "MMT.CLUSTER.JACCARD": (cfg.MMT.CLUSTER.JACCARD, JACCARD_VARIANTS),
        "MMT.TEST_NET": (cfg.MMT.TEST_NET, TEST_NETS),
    }
    for key, (value, allowed) in choices.items():
        if value not in allowed:
            raise ValueError(f"{key} must be one of {allowed}, got {value!r}")


def check_pretrain_path(cfg):
    """fast-reid downloads ImageNet weights when ``PRETRAIN_PATH`` is empty; offline that fails
    obscurely. Ask for a local file instead."""
    backbone = cfg.MODEL.BACKBONE
    if backbone.PRETRAIN and not backbone.PRETRAIN_PATH:
        raise ValueError(
            "MODEL.BACKBONE.PRETRAIN is True but MODEL.BACKBONE.PRETRAIN_PATH is empty: set it to a local "
            "ImageNet checkpoint (nothing is downloaded), or set MODEL.BACKBONE.PRETRAIN False")


def resolve_device(cfg):
    """Without CUDA, train and cluster on the CPU (with a warning) instead of failing later."""
    if cfg.MODEL.DEVICE.startswith("cuda") and not torch.cuda.is_available():
        warnings.warn(f"MODEL.DEVICE is {cfg.MODEL.DEVICE!r} but CUDA is not available: using cpu")
        cfg.MODEL.DEVICE = "cpu"
    if cfg.MMT.CLUSTER.DEVICE == "cuda" and not torch.cuda.is_available():
        warnings.warn("MMT.CLUSTER.DEVICE is 'cuda' but CUDA is not available: clustering on the cpu")
        cfg.MMT.CLUSTER.DEVICE = "cpu"


def check_init_weights(cfg, args):
    """An MMT run that starts fresh needs its two source checkpoints: check they exist before
    anything is written (their content is checked when they are loaded)."""
    if cfg.MODEL.META_ARCHITECTURE != "MMT" or args.eval_only or cfg.MODEL.WEIGHTS:
        return
    if args.resume and os.path.isfile(os.path.join(cfg.OUTPUT_DIR, "last_checkpoint")):
        return
    check_init_weight_paths(list(cfg.MMT.INIT_WEIGHTS))


def setup(args):
    """Check the inputs, then build, freeze and log the config of a run; seed every RNG from
    ``SEED`` (when >= 0). Bad input fails here, before ``OUTPUT_DIR`` is touched."""
    cfg = build_cfg(args.config_file, args.opts)
    cfg.freeze()
    check_init_weights(cfg, args)
    check_datasets(cfg, dataset_root())
    default_setup(cfg, args)
    setup_logger(cfg.OUTPUT_DIR, distributed_rank=comm.get_rank(), name="fastreid_mmt")
    if cfg.SEED >= 0:
        seed_all_rng(cfg.SEED)
        logger.info("Seeded python, numpy and torch with SEED=%d", cfg.SEED)
    return cfg
