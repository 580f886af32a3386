"""Config setup shared by ``tools/train_net.py`` and the tests."""

import functools
import logging
import os
import warnings

import torch

from fastreid.config import get_cfg
from fastreid.engine import default_setup
from fastreid.modeling.backbones import build_backbone
from fastreid.utils import comm
from fastreid.utils.env import seed_all_rng
from fastreid.utils.logger import setup_logger

from ..clustering.jaccard import VARIANTS as JACCARD_VARIANTS
from ..clustering.kmeans import BACKENDS
from ..clustering.pseudo_labels import METHODS
from ..config import add_mmt_config
from ..data import dataset_root
from ..data.preflight import check_inputs_on_main, share_checked_images
from ..modeling.meta_arch.mmt import TEST_NETS
from ..modeling.weights_io import check_init_weight_paths, check_state_matches, model_on_meta, read_state_dict
from .eval_sets import eval_set_names

logger = logging.getLogger(__name__)

# What to fix when MODEL.WEIGHTS does not fit the config.
WEIGHTS_HINT = ("--config-file and its overrides must describe the checkpoint's model: an MMT checkpoint needs "
                "an MMT config, a stage-I one its configs/Pretrain config, with the backbone it was trained with")
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
    check_feat_dim(cfg)
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


@functools.lru_cache(maxsize=32)
def _backbone_width(backbone_yaml, height, width):
    """Channels of the feature map the backbone described by ``backbone_yaml`` (a dumped
    ``MODEL.BACKBONE`` node) produces, or None when it cannot be probed. The backbone is built
    and run on the ``meta`` device: no weights are loaded, no memory or compute is spent."""
    cfg = get_cfg()
    cfg.MODEL.BACKBONE = cfg.MODEL.BACKBONE.load_cfg(backbone_yaml)
    cfg.MODEL.BACKBONE.PRETRAIN = False
    try:
        with torch.device("meta"):
            out = build_backbone(cfg)(torch.empty(2, 3, height, width))
    except Exception as err:  # a backbone the meta device cannot run: the model build will tell
        logger.debug("cannot probe the width of %s on the meta device: %s", cfg.MODEL.BACKBONE.NAME, err)
        return None
    return int(out.shape[1])


def check_feat_dim(cfg):
    """The head's input width ``MODEL.BACKBONE.FEAT_DIM`` must be what the backbone produces
    (ResNet-18/34 and OSNet: 512, ResNet-50 and deeper: 2048). Otherwise fast-reid fails at
    the first forward, deep inside a BatchNorm call, after the data sets were read."""
    backbone = cfg.MODEL.BACKBONE
    height, width = cfg.INPUT.SIZE_TEST
    produced = _backbone_width(backbone.dump(), int(height), int(width))
    if produced is not None and produced != backbone.FEAT_DIM:
        raise ValueError(
            f"MODEL.BACKBONE.FEAT_DIM is {backbone.FEAT_DIM} but {backbone.NAME} (DEPTH {backbone.DEPTH}, "
            f"WITH_IBN {backbone.WITH_IBN}) produces {produced}-channel features: set MODEL.BACKBONE.FEAT_DIM "
            f"{produced}")


def check_eval_weights(cfg, args):
    """``--eval-only`` evaluates ``MODEL.WEIGHTS``: without it fast-reid would evaluate a randomly
    initialised model and print meaningless numbers."""
    if not args.eval_only:
        return
    if not cfg.MODEL.WEIGHTS:
        raise ValueError("--eval-only needs MODEL.WEIGHTS: give the checkpoint to evaluate, e.g. "
                         "--eval-only MODEL.WEIGHTS logs/mmt/duke2market/model_final.pth")
    if not eval_set_names(cfg):
        raise ValueError("--eval-only has nothing to evaluate: DATASETS.TESTS is empty and MMT.TEST_FOLDER is not "
                         "set; give a labelled test set (e.g. MMT.TEST_FOLDER /path/with/query_and_gallery)")


def check_model_weights(cfg, args):
    """``MODEL.WEIGHTS`` (evaluated, or trained from) must exist and fit the configured model.

    fast-reid's loader skips what does not fit with a warning that it also prints for a fitting
    checkpoint (a classifier's size follows the class count), so a stage-I checkpoint under an
    MMT config, or another backbone's, would otherwise be evaluated or trained as a randomly
    initialised network. Not checked when ``--resume`` finds a checkpoint in ``OUTPUT_DIR``:
    fast-reid then loads that one.
    """
    path = cfg.MODEL.WEIGHTS
    if not path or (args.resume and not args.eval_only and has_last_checkpoint(cfg)):
        return
    if not os.path.isfile(path):
        raise FileNotFoundError(f"MODEL.WEIGHTS: checkpoint not found: {path}")
    state = read_state_dict(path, "MODEL.WEIGHTS")
    check_state_matches(path, model_on_meta(cfg), state, "MODEL.WEIGHTS", WEIGHTS_HINT)


def has_last_checkpoint(cfg):
    """True when ``OUTPUT_DIR`` holds a checkpoint that ``--resume`` continues from."""
    return os.path.isfile(os.path.join(cfg.OUTPUT_DIR, "last_checkpoint"))


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
    if args.resume and has_last_checkpoint(cfg):
        return
    check_init_weight_paths(list(cfg.MMT.INIT_WEIGHTS))


def setup(args):
    """Check the inputs, then build, freeze and log the config of a run; seed every RNG from
    ``SEED`` (when >= 0). Bad input fails here, before ``OUTPUT_DIR`` is touched; the training
    images decoded by the check are handed to the loaders through ``OUTPUT_DIR``
    (:mod:`fastreid_mmt.data.preflight`)."""
    cfg = build_cfg(args.config_file, args.opts)
    cfg.freeze()
    check_eval_weights(cfg, args)
    check_model_weights(cfg, args)
    check_init_weights(cfg, args)
    checked = check_inputs_on_main(cfg, dataset_root(), eval_only=args.eval_only)
    default_setup(cfg, args)
    setup_logger(cfg.OUTPUT_DIR, distributed_rank=comm.get_rank(), name="fastreid_mmt")
    if not args.eval_only:
        share_checked_images(checked, cfg.OUTPUT_DIR)
    if cfg.SEED >= 0:
        seed_all_rng(cfg.SEED)
        logger.info("Seeded python, numpy and torch with SEED=%d", cfg.SEED)
    return cfg
