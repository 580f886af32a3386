"""Trainers: fast-reid's ``DefaultTrainer`` with MMT's builders (never its loop)."""

import json
import logging
import os
import secrets

import torch

from fastreid.engine import DefaultTrainer
from fastreid.utils import comm
from fastreid.utils.events import CommonMetricPrinter, JSONWriter, TensorboardXWriter, get_event_storage

from ..data import load_target_set
from ..data.preflight import load_checked_images
from ..data.source import build_source_train_loader
from .checkpoint import make_checkpointer_atomic
from .distributed import unwrap, with_bn_averaging
from .hooks import MMTHook
from .schedule import build_epoch_scheduler, check_epoch_schedule
from .eval_sets import FolderTestMixin
from ..data.target_bn import TargetBNLoader

logger = logging.getLogger(__name__)

# Base seeds drawn for an unseeded run (SEED -1) lie in [0, MAX_DRAWN_SEED): epoch e adds e,
# and numpy, scikit-learn and torch all take seeds below 2**32.
MAX_DRAWN_SEED = 2 ** 31


def base_seed(cfg):
    """The run's base seed: ``SEED`` when >= 0. An unseeded run (``SEED -1``) draws one at
    random on the main process, which every process of the run then uses; it is logged so
    that the run's draws (k-means, sampler, augmentation) can be traced and repeated."""
    if cfg.SEED >= 0:
        return int(cfg.SEED)
    drawn = secrets.randbelow(MAX_DRAWN_SEED) if comm.is_main_process() else None
    seed = int(comm.all_gather(drawn)[0])
    logger.info("SEED -1: drew the base seed %d, shared by every process (the sampler, the augmentation and "
                "stage II's clustering draw from it; SEED %d repeats those draws)", seed, seed)
    return seed


class KeyedJSONWriter(JSONWriter):
    """fast-reid's ``JSONWriter``, but it remembers the last iteration written *per scalar*.

    fast-reid's writer skips every scalar whose iteration is not newer than the last line it
    wrote. Evaluation results (put in ``after_epoch`` at the epoch's last iteration, which
    ``PeriodicWriter`` has often just written, and always for the final epoch) and the MMT
    pseudo-label statistics (put in ``before_epoch``, at the previous epoch's last iteration)
    were therefore silently missing from ``metrics.json``.
    """

    def __init__(self, json_file, window_size=20):
        super().__init__(json_file, window_size)
        self._written = {}

    def write(self):
        storage = get_event_storage()
        to_save = {}
        for key, (value, itr) in storage.latest_with_smoothing_hint(self._window_size).items():
            if itr <= self._written.get(key, -1):
                continue
            self._written[key] = itr
            to_save.setdefault(itr, {})[key] = value
        for itr in sorted(to_save):
            self._file_handle.write(json.dumps(dict(to_save[itr], iteration=itr), sort_keys=True) + "\n")
        self._file_handle.flush()
        try:
            os.fsync(self._file_handle.fileno())
        except (AttributeError, OSError):
            pass


def build_default_writers(cfg, max_iter):
    """Console, ``metrics.json`` (every scalar, see :class:`KeyedJSONWriter`) and TensorBoard."""
    return [
        CommonMetricPrinter(max_iter),
        KeyedJSONWriter(os.path.join(cfg.OUTPUT_DIR, "metrics.json")),
        TensorboardXWriter(cfg.OUTPUT_DIR),
    ]


class PendingPseudoLabels:
    """Stand-in train loader until ``MMTHook`` has clustered the target (before epoch 0).

    It carries the unlabelled target set as ``dataset`` (fast-reid reads ``num_classes`` from
    it) and refuses to be iterated: training cannot start on labels it does not have.
    """

    def __init__(self, target, num_classes):
        self.dataset = target
        target.num_classes = num_classes

    def __iter__(self):
        return self

    def __next__(self):
        raise RuntimeError("no pseudo labels yet: MMTHook must run before the first step")


class MMTTrainer(FolderTestMixin, DefaultTrainer):
    """Trains the ``MMT`` meta-architecture on an unlabelled target (``DATASETS.NAMES``, or
    ``MMT.TARGET_FOLDER`` when set).

    Overrides: the train loader (target images, labels stripped), the LR scheduler and epoch
    length (``MMT.ITERS_PER_EPOCH``), the writers, the hooks (adds :class:`MMTHook`) and
    ``resume_or_load`` (``MMT.INIT_WEIGHTS`` when not resuming).
    """

    def __init__(self, cfg):
        check_mmt_config(cfg)
        if comm.is_main_process() and cfg.OUTPUT_DIR:
            os.makedirs(cfg.OUTPUT_DIR, exist_ok=True)
        super().__init__(cfg)
        self.iters_per_epoch = cfg.MMT.ITERS_PER_EPOCH
        self.max_iter = self.max_epoch * self.iters_per_epoch
        log_ims_per_bn(cfg, cfg.MMT.IMS_PER_BN, "MMT.IMS_PER_BN")

    def run_step(self):
        try:
            super().run_step()
        except FloatingPointError as err:
            losses = unwrap(self.model).last_losses
            bad = [f"{k} = {v.item()}" for k, v in losses.items() if not torch.isfinite(v).all()]
            raise FloatingPointError(
                f"MMT: non-finite loss at iteration {self.iter} (epoch {self.epoch}): {', '.join(bad) or err}. "
                f"The weights are those before this step and the last checkpoint in {self.cfg.OUTPUT_DIR!r} is "
                f"intact: lower SOLVER.BASE_LR, check MMT.INIT_WEIGHTS, or turn SOLVER.AMP.ENABLED (GPU) or "
                f"MMT.CPU_BF16 (CPU) off, then --resume") from err

    @classmethod
    def build_train_loader(cls, cfg):
        target = load_target_set(cfg, checked=load_checked_images(cfg.OUTPUT_DIR))
        # The classifier's size until the first clustering sets it (DBSCAN and an estimated K: 1).
        known_k = cfg.MMT.CLUSTER.NUM_CLUSTERS if cfg.MMT.CLUSTER.METHOD == "kmeans" else 0
        return PendingPseudoLabels(target, max(known_k, 1))

    @classmethod
    def build_lr_scheduler(cls, cfg, optimizer, iters_per_epoch):
        # An MMT epoch is MMT.ITERS_PER_EPOCH iterations, not one pass over the target set.
        return super().build_lr_scheduler(cfg, optimizer, cfg.MMT.ITERS_PER_EPOCH)

    def build_writers(self):
        return build_default_writers(self.cfg, self.cfg.SOLVER.MAX_EPOCH * self.cfg.MMT.ITERS_PER_EPOCH)

    def build_hooks(self):
        make_checkpointer_atomic(self, keep=self.cfg.MMT.KEEP_CHECKPOINTS)
        self.mmt_hook = MMTHook(self.cfg, self.data_loader.dataset, base_seed(self.cfg))
        self.checkpointer.checkpointables["mmt_hook"] = self.mmt_hook
        return [self.mmt_hook] + with_bn_averaging(super().build_hooks())

    def resume_or_load(self, resume=True):
        if resume and self.checkpointer.has_checkpoint():
            return super().resume_or_load(resume=True)
        if self.cfg.MODEL.WEIGHTS:
            return super().resume_or_load(resume=False)
        unwrap(self.model).load_init_weights(self.cfg.MMT.INIT_WEIGHTS)
        logger.info("Students and mean nets initialised from MMT.INIT_WEIGHTS %s", list(self.cfg.MMT.INIT_WEIGHTS))


def check_mmt_config(cfg):
    """Fail fast, naming the key, on settings MMT cannot run with."""
    if cfg.MODEL.META_ARCHITECTURE != "MMT":
        raise ValueError(f"MODEL.META_ARCHITECTURE must be MMT for MMTTrainer, got {cfg.MODEL.META_ARCHITECTURE!r}")
    if cfg.TEST.PRECISE_BN.ENABLED:
        raise ValueError("TEST.PRECISE_BN.ENABLED is not supported with MMT (it would read target labels)")
    if cfg.SOLVER.IMS_PER_BATCH % cfg.DATALOADER.NUM_INSTANCE:
        raise ValueError(f"SOLVER.IMS_PER_BATCH ({cfg.SOLVER.IMS_PER_BATCH}) must be a multiple of "
                         f"DATALOADER.NUM_INSTANCE ({cfg.DATALOADER.NUM_INSTANCE})")
    if cfg.SOLVER.IMS_PER_BATCH % comm.get_world_size():
        raise ValueError(f"SOLVER.IMS_PER_BATCH ({cfg.SOLVER.IMS_PER_BATCH}) must be divisible by the "
                         f"{comm.get_world_size()} processes")
    if cfg.MMT.ITERS_PER_EPOCH < 1:
        raise ValueError(f"MMT.ITERS_PER_EPOCH must be >= 1 (iterations between two clusterings), got "
                         f"{cfg.MMT.ITERS_PER_EPOCH}")
    if cfg.TEST.EVAL_PERIOD <= 0:
        raise ValueError("TEST.EVAL_PERIOD must be >= 1 (epochs); fast-reid's EvalHook divides by it")
    check_ims_per_bn(cfg, cfg.MMT.IMS_PER_BN, "MMT.IMS_PER_BN")


def per_process_batch(cfg):
    """Images each process forwards per step: ``SOLVER.IMS_PER_BATCH`` over the processes."""
    return cfg.SOLVER.IMS_PER_BATCH // comm.get_world_size()


def check_ims_per_bn(cfg, ims_per_bn, key):
    """The per-process batch must split into whole BN chunks of ``ims_per_bn`` images."""
    per_process = per_process_batch(cfg)
    if ims_per_bn < 0:
        raise ValueError(f"{key} must be >= 0 (0: the whole per-process batch), got {ims_per_bn}")
    if 0 < ims_per_bn < per_process and per_process % ims_per_bn:
        raise ValueError(f"{key} ({ims_per_bn}) must divide the per-process batch SOLVER.IMS_PER_BATCH / "
                         f"processes = {cfg.SOLVER.IMS_PER_BATCH} / {comm.get_world_size()} = {per_process}")


def log_ims_per_bn(cfg, ims_per_bn, key):
    """Say at start how many images each batch-norm layer sees per training forward."""
    world = comm.get_world_size()
    per_process = per_process_batch(cfg)
    per_bn = per_process if ims_per_bn <= 0 else min(ims_per_bn, per_process)
    logger.info("Images per BN: %d (%s = %d; SOLVER.IMS_PER_BATCH %d over %d process(es) = %d per process, "
                "forwarded in %d chunk(s))", per_bn, key, ims_per_bn, cfg.SOLVER.IMS_PER_BATCH, world,
                per_process, per_process // per_bn)
    if 0 < per_process < ims_per_bn:
        logger.warning("%s = %d but each process only has %d images per step: BN statistics come from %d "
                       "images, unlike the reference's %d (use fewer processes or a larger "
                       "SOLVER.IMS_PER_BATCH)", key, ims_per_bn, per_process, per_process, ims_per_bn)


class SourceTrainer(FolderTestMixin, DefaultTrainer):
    """Supervised source pre-training (``SourceBaseline``) in fast-reid's loop, as the
    reference runs it: epochs of ``PRETRAIN.ITERS_PER_EPOCH`` iterations, a per-epoch lr
    schedule (:mod:`.schedule`), the camera-aware sampler (``DATALOADER.SAMPLER_TRAIN``), and
    a target batch per step for BN adaptation when ``PRETRAIN.TARGET_BN_DATASETS`` or
    ``PRETRAIN.TARGET_BN_FOLDER`` is set, and the source from ``PRETRAIN.SOURCE_FOLDER``."""

    def __init__(self, cfg):
        check_ims_per_bn(cfg, cfg.PRETRAIN.IMS_PER_BN, "PRETRAIN.IMS_PER_BN")
        check_epoch_schedule(cfg)
        super().__init__(cfg)
        log_ims_per_bn(cfg, cfg.PRETRAIN.IMS_PER_BN, "PRETRAIN.IMS_PER_BN")
        logger.info("Source pre-training: %d epochs of %d iterations", self.max_epoch, self.iters_per_epoch)

    def build_writers(self):
        return build_default_writers(self.cfg, self.max_iter)

    @classmethod
    def build_train_loader(cls, cfg):
        checked = load_checked_images(cfg.OUTPUT_DIR)
        source = build_source_train_loader(cfg, base_seed(cfg), checked)
        if not cfg.PRETRAIN.TARGET_BN_DATASETS and not cfg.PRETRAIN.TARGET_BN_FOLDER:
            return source
        return TargetBNLoader(cfg, source, checked)

    @classmethod
    def build_lr_scheduler(cls, cfg, optimizer, iters_per_epoch):
        return build_epoch_scheduler(cfg, optimizer)

    def build_hooks(self):
        # fast-reid fixed the epoch at one pass over the source just before building the hooks;
        # the writers and the loop must see the reference's epoch length.
        if self.cfg.PRETRAIN.ITERS_PER_EPOCH > 0:
            self.iters_per_epoch = self.cfg.PRETRAIN.ITERS_PER_EPOCH
            self.max_iter = self.max_epoch * self.iters_per_epoch
        make_checkpointer_atomic(self)
        return with_bn_averaging(super().build_hooks())
