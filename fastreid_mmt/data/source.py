"""Source pre-training loader with the reference's camera-aware identity sampler."""

from fastreid.data.build import _train_loader_from_config, build_reid_train_loader, fast_batch_collator
from fastreid.data.data_utils import DataLoaderX
from fastreid.utils import comm

import torch

from .sampler import CameraAwarePKSampler

# DATALOADER.SAMPLER_TRAIN value of the reference's RandomMultipleGallerySampler (one pass over
# the identities, companions from other cameras); any other value is fast-reid's own sampler.
CAMERA_AWARE = "CameraAwarePKSampler"


def build_source_train_loader(cfg, seed):
    """fast-reid's source train set (``DATASETS.NAMES``, relabelled) and loader.

    Args:
        cfg (CfgNode): ``DATALOADER.SAMPLER_TRAIN`` picks the sampler: ``CameraAwarePKSampler``
            (the reference's, P = ``SOLVER.IMS_PER_BATCH / DATALOADER.NUM_INSTANCE`` ids x K
            images per global batch) or a fast-reid sampler name.
        seed (int): seed of the camera-aware sampler and of the workers' augmentation (the
            same on every rank).

    Returns:
        DataLoaderX: infinite loader whose ``dataset`` is fast-reid's ``CommDataset``.
    """
    combineall = cfg.DATASETS.COMBINEALL
    if cfg.DATALOADER.SAMPLER_TRAIN != CAMERA_AWARE:
        return build_reid_train_loader(cfg, combineall=combineall)
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
