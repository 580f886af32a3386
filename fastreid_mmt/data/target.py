"""Target-domain data: the unlabelled training set, its extraction loader and the
pseudo-labelled two-view training loader."""

import logging
from dataclasses import dataclass

import torch

from fastreid.data import build as fastreid_build
from fastreid.data import samplers
from fastreid.data.build import fast_batch_collator
from fastreid.data.data_utils import DataLoaderX
from fastreid.data.transforms import build_transforms
from fastreid.utils import comm

from .checks import TARGET_ROLE, build_dataset, filter_unreadable
from .folders import read_unlabelled_folder, unlabelled_items
from .sampler import CameraAwarePKSampler
from .two_view import TargetImages, TwoViewDataset

logger = logging.getLogger(__name__)

# The config key of the stage-II target folder (messages name it).
TARGET_FOLDER_KEY = "MMT.TARGET_FOLDER"


def dataset_root():
    """The dataset root fast-reid uses (env ``FASTREID_DATASETS`` when fast-reid was imported)."""
    return fastreid_build._root


@dataclass
class TargetSet:
    """The target training images. ``gt_pids`` are the ground-truth ids where the data set
    has them: a **diagnostic only** (NMI/ARI logging), never read by training unless the
    user asks for the upper-bound diagnostic ``MMT.CLUSTER.METHOD ground_truth``."""

    img_paths: list
    camids: list
    gt_pids: list

    def __len__(self):
        return len(self.img_paths)


def _index(values):
    mapping = {v: i for i, v in enumerate(sorted(set(values), key=str))}
    return [mapping[v] for v in values]


def stage_two_target(cfg):
    """``(names, folder)`` of the stage-II target: ``MMT.TARGET_FOLDER`` when set, else the
    registered data sets ``DATASETS.NAMES``."""
    folder = cfg.MMT.TARGET_FOLDER
    return (() if folder else tuple(cfg.DATASETS.NAMES)), folder


def target_items(cfg, names, folder, key, root, verbose=False):
    """fast-reid ``(path, pid, camid)`` items of the registered data sets ``names`` (training
    split), then of the image folder ``folder`` (cameras by ``MMT.TARGET_CAMERAS``; ``key``
    names it in messages). Listed and parsed only: nothing is decoded.

    Args:
        root (str): the registered data sets' root.
        verbose (bool): log what was read (fast-reid's table of each data set, the folder's
            image and camera counts).
    """
    items = []
    for name in names or ():
        data = build_dataset(name, root, require_train=True)
        if verbose and comm.is_main_process():
            data.show_train()
        items.extend(data.train)
    if folder:
        images = read_unlabelled_folder(folder, cfg.MMT.TARGET_CAMERAS, key)
        if verbose:
            logger.info("%s %s: %d images, %d camera(s) (MMT.TARGET_CAMERAS %r), no identities",
                        key, folder, len(images), len(set(images.cameras)), cfg.MMT.TARGET_CAMERAS)
        items.extend(unlabelled_items(images))
    return items


def load_target_set(cfg, names=None, folder=None, key=TARGET_FOLDER_KEY, checked=None):
    """Read the unlabelled target training images: fast-reid's data set classes ``names``
    (training split) and/or the image folder ``folder`` (:func:`target_items`).

    By default the stage-II target (:func:`stage_two_target`). Unreadable files stop the run
    naming them, or are left out with a warning when ``MMT.SKIP_UNREADABLE_IMAGES`` is set:
    as the start-up check found them when ``checked`` covers these images (none is decoded
    again), else they are decoded here.

    Args:
        checked (CheckedImages): the start-up check's result (:mod:`.preflight`), or None.

    Returns:
        TargetSet: ``gt_pids`` is None when any image comes from a folder (no ids exist).
    """
    if names is None and folder is None:
        names, folder = stage_two_target(cfg)
    items = target_items(cfg, names, folder, key, dataset_root(), verbose=True)
    keep = filter_unreadable([item[0] for item in items], cfg.MMT.SKIP_UNREADABLE_IMAGES, TARGET_ROLE, checked)
    items = [items[i] for i in keep]
    if not items:
        where = folder or f"{tuple(names)} under {dataset_root()}"
        raise ValueError(f"no readable target training image in {where}")
    paths = [item[0] for item in items]
    gt_pids = None if folder else _index([item[1] for item in items])
    return TargetSet(paths, _index([item[2] for item in items]), gt_pids)


def build_extract_loader(cfg, target):
    """Sequential loader of the target training images with test transforms; each rank gets
    its shard (fast-reid's ``InferenceSampler``)."""
    dataset = TargetImages(target.img_paths, target.camids, build_transforms(cfg, is_train=False))
    batch = max(cfg.TEST.IMS_PER_BATCH // comm.get_world_size(), 1)
    batch_sampler = torch.utils.data.BatchSampler(samplers.InferenceSampler(len(dataset)), batch, False)
    return DataLoaderX(comm.get_local_rank(), dataset=dataset, batch_sampler=batch_sampler,
                       num_workers=cfg.DATALOADER.NUM_WORKERS, collate_fn=fast_batch_collator,
                       pin_memory=True)


def build_pseudo_label_loader(cfg, target, labels, seed):
    """Two-view P x K loader over the images whose pseudo label is not -1.

    Args:
        cfg (CfgNode): ``SOLVER.IMS_PER_BATCH`` (global batch), ``DATALOADER.NUM_INSTANCE`` (K).
        target (TargetSet): the target training set.
        labels (Sequence[int]): pseudo label per target image, -1 for outliers.
        seed (int): seed of the sampler and of the workers' augmentation.
    """
    keep = [i for i, label in enumerate(labels) if int(label) >= 0]
    dataset = TwoViewDataset([target.img_paths[i] for i in keep], [target.camids[i] for i in keep],
                             [labels[i] for i in keep], keep, build_transforms(cfg, is_train=True))
    num_instances = cfg.DATALOADER.NUM_INSTANCE
    sampler = CameraAwarePKSampler(dataset.labels, dataset.camids, cfg.SOLVER.IMS_PER_BATCH // num_instances,
                                   num_instances, seed, comm.get_rank(), comm.get_world_size())
    generator = torch.Generator().manual_seed(int(seed))
    return DataLoaderX(comm.get_local_rank(), dataset=dataset, batch_sampler=sampler,
                       num_workers=cfg.DATALOADER.NUM_WORKERS, collate_fn=fast_batch_collator,
                       pin_memory=True, generator=generator)
