"""Source pre-training loader that also yields unlabelled target images (BN adaptation)."""

import torch

from fastreid.data import samplers
from fastreid.data.build import fast_batch_collator
from fastreid.data.data_utils import DataLoaderX
from fastreid.data.transforms import build_transforms
from fastreid.utils import comm

from .target import load_target_set
from .two_view import TargetImages

# The config key of the BN-adaptation target folder (messages name it).
TARGET_BN_FOLDER_KEY = "PRETRAIN.TARGET_BN_FOLDER"


class TargetBNLoader:
    """Wraps a fast-reid source train loader; every batch gains ``target_images``
    ``[B, 3, H, W]``: training-augmented images of ``PRETRAIN.TARGET_BN_DATASETS`` and
    ``PRETRAIN.TARGET_BN_FOLDER`` (no label).

    ``dataset`` is the source dataset, so fast-reid sizes the classifier and epoch from it.
    ``checked`` is the start-up check's result (``CheckedImages``), or None: the target
    images are then decoded here.
    """

    def __init__(self, cfg, source_loader, checked=None):
        self.source = source_loader
        self.dataset = source_loader.dataset
        target = load_target_set(cfg, tuple(cfg.PRETRAIN.TARGET_BN_DATASETS), cfg.PRETRAIN.TARGET_BN_FOLDER,
                                 TARGET_BN_FOLDER_KEY, checked)
        images = TargetImages(target.img_paths, target.camids, build_transforms(cfg, is_train=True))
        batch = cfg.SOLVER.IMS_PER_BATCH // comm.get_world_size()
        batch_sampler = torch.utils.data.BatchSampler(samplers.TrainingSampler(len(images)), batch, True)
        self.target = DataLoaderX(comm.get_local_rank(), dataset=images, batch_sampler=batch_sampler,
                                  num_workers=cfg.DATALOADER.NUM_WORKERS, collate_fn=fast_batch_collator,
                                  pin_memory=True)

    def __iter__(self):
        target_iter = iter(self.target)
        for batch in self.source:
            batch["target_images"] = next(target_iter)["images"]
            yield batch
