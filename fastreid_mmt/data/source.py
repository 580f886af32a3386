"""Source pre-training loader with the reference's camera-aware identity sampler."""

import logging

import torch

from fastreid.data.build import _train_loader_from_config, build_reid_train_loader, fast_batch_collator
from fastreid.data.common import CommDataset
from fastreid.data.data_utils import DataLoaderX
from fastreid.data.transforms import build_transforms
from fastreid.utils import comm

from .checks import SOURCE_ROLE, filter_unreadable
from .folders import labelled_train_items, read_labelled_folder
from .sampler import CameraAwarePKSampler

logger = logging.getLogger(__name__)

# DATALOADER.SAMPLER_TRAIN value of the reference's RandomMultipleGallerySampler (one pass over
# the identities, companions from other cameras); any other value is fast-reid's own sampler.
CAMERA_AWARE = "CameraAwarePKSampler"
# Prefix of the training ids read from PRETRAIN.SOURCE_FOLDER (fast-reid prefixes ids with the
# data set name).
FOLDER_PREFIX = "folder"
# The config key of the labelled source folder (messages name it).
SOURCE_FOLDER_KEY = "PRETRAIN.SOURCE_FOLDER"


def read_source_folder(cfg):
    """The images of ``PRETRAIN.SOURCE_FOLDER`` (one subfolder per identity, cameras by
    ``PRETRAIN.SOURCE_CAMERAS``), listed only."""
    return read_labelled_folder(cfg.PRETRAIN.SOURCE_FOLDER, cfg.PRETRAIN.SOURCE_CAMERAS, SOURCE_FOLDER_KEY)


def build_source_folder_set(cfg, checked=None):
    """fast-reid's relabelled training set of ``PRETRAIN.SOURCE_FOLDER`` (:func:`read_source_folder`);
    unreadable images stop the run or are left out (``MMT.SKIP_UNREADABLE_IMAGES``), as the
    start-up check ``checked`` (a ``CheckedImages``) found them when it covers the folder,
    else decoded here."""
    items = labelled_train_items(read_source_folder(cfg), FOLDER_PREFIX)
    keep = filter_unreadable([item[0] for item in items], cfg.MMT.SKIP_UNREADABLE_IMAGES, SOURCE_ROLE, checked)
    items = [items[i] for i in keep]
    logger.info("Source folder %s: %d images of %d identities, %d camera(s) (PRETRAIN.SOURCE_CAMERAS %r)",
                cfg.PRETRAIN.SOURCE_FOLDER, len(items), len({item[1] for item in items}),
                len({item[2] for item in items}), cfg.PRETRAIN.SOURCE_CAMERAS)
    return CommDataset(items, build_transforms(cfg, is_train=True), relabel=True)


def build_source_train_loader(cfg, seed, checked=None):
    """fast-reid's source train set (``DATASETS.NAMES``, or ``PRETRAIN.SOURCE_FOLDER`` when set;
    relabelled) and loader.

    Args:
        cfg (CfgNode): ``DATALOADER.SAMPLER_TRAIN`` picks the sampler: ``CameraAwarePKSampler``
            (the reference's, P = ``SOLVER.IMS_PER_BATCH / DATALOADER.NUM_INSTANCE`` ids x K
            images per global batch) or a fast-reid sampler name.
        seed (int): seed of the camera-aware sampler and of the workers' augmentation (the
            same on every rank).
        checked (CheckedImages): the start-up check's result, or None (see
            :func:`build_source_folder_set`).

    Returns:
        DataLoaderX: infinite loader whose ``dataset`` is fast-reid's ``CommDataset``.
    """
    combineall = cfg.DATASETS.COMBINEALL
    train_set = build_source_folder_set(cfg, checked) if cfg.PRETRAIN.SOURCE_FOLDER else None
    if cfg.DATALOADER.SAMPLER_TRAIN != CAMERA_AWARE:
        return build_reid_train_loader(cfg, train_set=train_set, combineall=combineall)
    if train_set is None:
        # fast-reid builds and relabels the set; a non-None sampler skips its sampler choice.
        train_set = _train_loader_from_config(cfg, sampler=CAMERA_AWARE, combineall=combineall)["train_set"]
    labels = [train_set.pid_dict[item[1]] for item in train_set.img_items]
    camids = [item[2] for item in train_set.img_items]
    num_instances = cfg.DATALOADER.NUM_INSTANCE
    sampler = CameraAwarePKSampler(labels, camids, cfg.SOLVER.IMS_PER_BATCH // num_instances, num_instances,
                                   seed, comm.get_rank(), comm.get_world_size())
    return DataLoaderX(comm.get_local_rank(), dataset=train_set, batch_sampler=sampler,
                       num_workers=cfg.DATALOADER.NUM_WORKERS, collate_fn=fast_batch_collator, pin_memory=True,
                       generator=torch.Generator().manual_seed(int(seed)))
