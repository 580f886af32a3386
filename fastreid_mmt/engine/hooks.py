"""MMTHook: the pseudo-label refinery inside fast-reid's training loop."""

import logging
import os
import time

import numpy as np
import torch
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score
from tqdm import tqdm

from fastreid.data.data_utils import BackgroundGenerator
from fastreid.engine.train_loop import HookBase
from fastreid.utils import comm
from fastreid.utils.env import seed_all_rng

from ..clustering.pseudo_labels import compute_pseudo_labels, coverage_warnings, switch_reason
from ..clustering.signals import (LABEL_AGREEMENT, MEAN_NET_AGREEMENT, SCALAR_PREFIX, TRUE_ID_SIGNALS,
                                 cluster_statistics, label_agreement, nearest_neighbour_agreement)
from ..data import build_extract_loader, build_pseudo_label_loader
from ..modeling import ema_momentum, ema_update
from .atomic import atomic_write
from .distributed import broadcast_pseudo_labels, gather_features, rewrap_ddp, unwrap
from .faults import fault_point

logger = logging.getLogger(__name__)
# Checkpointed in place of an unmeasured cluster structure: below any silhouette (-1 to 1).
NO_STRUCTURE = -2.0


def close_loader(loader_iter):
    """Stop the prefetch thread of a fast-reid ``DataLoaderX`` over an infinite sampler
    (its own ``shutdown`` would try to exhaust the stream and never return)."""
    background = getattr(loader_iter, "iter", None)
    if isinstance(background, BackgroundGenerator) and background.is_alive():
        background.exit_event.set()
        while background.queue.get() is not None:
            pass
        background.join()


class MMTHook(HookBase):
    """Before each epoch: extract target features with both mean nets, cluster, re-initialise
    the four classifiers, rebuild the two-view loader and swap it into the running trainer.
    After each step: update the mean nets (EMA).

    Logged per epoch (``metrics.json``, TensorBoard), none of it reading target ids: the
    cluster count, outlier share and size quantiles, the agreement of this epoch's pseudo
    labels with the previous epoch's (NMI) and of the two mean nets (share of images with the
    same nearest neighbour under both); where the target has true ids, also NMI / ARI with them.

    Stateful (the automatic DBSCAN eps and the estimated k-means K, each chosen once at the
    first clustering, and the base seed): registered as a checkpointable, so a resumed run uses
    the same radius, K and seeds.

    Args:
        cfg (CfgNode): the full config.
        target (TargetSet): the unlabelled target training set.
        seed (int): base seed; epoch ``e`` uses ``seed + e`` for clustering, sampling and
            augmentation, so a resumed epoch repeats the uninterrupted one. Checkpointed: an
            unseeded run (``SEED -1``) resumes with the base it drew.
    """

    def __init__(self, cfg, target, seed):
        self.cfg = cfg
        self.target = target
        self.seed = int(seed)
        self.eps = None
        self.estimated_k = None
        self.structure = None
        self.extract_loader = build_extract_loader(cfg, target)
        self.labels = None
        self.ground_truth = None
        if cfg.MMT.CLUSTER.METHOD == "ground_truth":
            logger.warning("MMT.CLUSTER.METHOD is ground_truth: training reads the target's TRUE ids (a "
                           "diagnostic upper bound, not unsupervised domain adaptation)")
            self.ground_truth = target.gt_pids

    # -- checkpointable ------------------------------------------------------------------
    def state_dict(self):
        return {"eps": -1.0 if self.eps is None else float(self.eps), "seed": self.seed,
                "estimated_k": -1 if self.estimated_k is None else int(self.estimated_k),
                "structure": NO_STRUCTURE if self.structure is None else float(self.structure)}

    def load_state_dict(self, state):
        eps = float(state.get("eps", -1.0))
        self.eps = None if eps < 0 else eps
        estimated_k = int(state.get("estimated_k", -1))
        self.estimated_k = None if estimated_k < 0 else estimated_k
        structure = float(state.get("structure", NO_STRUCTURE))
        self.structure = None if structure < -1.0 else structure
        if self.cfg.SEED < 0 and "seed" in state:  # a seeded run keeps its SEED
            self.seed = int(state["seed"])

    # -- hook ----------------------------------------------------------------------------
    @property
    def model(self):
        return unwrap(self.trainer.model)

    def before_epoch(self):
        epoch_seed = self.seed + self.trainer.epoch
        seed_all_rng(epoch_seed)
        start = time.perf_counter()
        per_net = self.extract_features()
        features = sum(per_net) / len(per_net)
        extracted = time.perf_counter()
        fault_point(f"extracted:{self.trainer.epoch}")  # testing aid, see faults.py
        result = None
        if comm.is_main_process():
            ids_per_batch = self.cfg.SOLVER.IMS_PER_BATCH // self.cfg.DATALOADER.NUM_INSTANCE
            result = compute_pseudo_labels(features, self.cfg.MMT.CLUSTER, epoch_seed, self.eps,
                                           ground_truth=self.ground_truth, estimated_k=self.estimated_k,
                                           structure=self.structure, min_clusters=ids_per_batch)
            if result.estimated_k is not None and self.estimated_k is None:
                self.log_estimate(result)
            for message in coverage_warnings(result, self.cfg.MMT.CLUSTER, ids_per_batch):
                logger.warning("MMT epoch %d: %s", self.trainer.epoch, message)
        result = broadcast_pseudo_labels(result, self.model.device)
        clustered = time.perf_counter()
        previous = self.previous_labels()
        self.eps = result.eps
        self.estimated_k = result.estimated_k
        self.structure = result.structure
        self.labels = result.labels
        self.save_labels(result.labels)
        num_classes = self.model.num_classes()
        classifiers = self.model.reset_classifiers(result.centroids)
        if comm.get_world_size() > 1 and self.model.num_classes() != num_classes:
            # The loop's model; DefaultTrainer.model is a property that reads it (no second copy).
            self.trainer._trainer.model = rewrap_ddp(self.trainer.model)
        self.reset_optimizer_state(classifiers)
        self.swap_loader(build_pseudo_label_loader(self.cfg, self.target, result.labels, epoch_seed))
        signals = self.signals(result.labels, previous, per_net) if comm.is_main_process() else {}
        self.log(result, signals, extracted - start, clustered - extracted)

    def after_step(self):
        momentum = ema_momentum(self.trainer.iter, self.cfg.MMT.EMA_ALPHA)
        for net, mean_net in self.model.pairs():
            ema_update(mean_net, net, momentum)

    # -- steps ---------------------------------------------------------------------------
    @torch.no_grad()
    def extract_features(self):
        """The trained mean nets' L2-normalised BN features, a tuple of ``[N, C]`` (two; one
        with ``MMT.SINGLE_NETWORK``), on the model's device (or ``MMT.CLUSTER.DEVICE`` when
        "cpu" or "cuda"), identical on every rank; their average is the clustering feature."""
        model = self.model
        was_training = model.training
        model.eval()
        chunks, indices = [], []
        batches = tqdm(self.extract_loader, desc="MMT: target features", disable=not comm.is_main_process(),
                       leave=False)
        # AMP as in training (fast-reid's AMPTrainer autocasts the student and mean-net forwards).
        amp = bool(self.cfg.SOLVER.AMP.ENABLED) and model.device.type == "cuda"
        for batch in batches:
            with torch.autocast("cuda", enabled=amp):
                chunks.append(torch.cat(model.extract_mean_net_features(batch["images"]), dim=1).float())
            indices.append(batch["index"].to(model.device))
        model.train(was_training)
        features = gather_features(torch.cat(chunks), torch.cat(indices), len(self.target))
        if self.cfg.MMT.CLUSTER.DEVICE == "cpu":
            features = features.cpu()
        elif self.cfg.MMT.CLUSTER.DEVICE == "cuda":
            features = features.cuda()
        return features.chunk(len(model.pairs()), dim=1)

    def labels_path(self, epoch):
        return os.path.join(self.cfg.OUTPUT_DIR, "pseudo_labels", f"epoch_{epoch:03d}.npy")

    def previous_labels(self):
        """The previous epoch's pseudo labels: held since its clustering, or read back from its
        saved file after ``--resume``; None before the first epoch (or without the file)."""
        epoch = self.trainer.epoch
        if self.labels is not None or epoch == 0 or not self.cfg.OUTPUT_DIR:
            return self.labels
        path = self.labels_path(epoch - 1)
        return np.load(path) if os.path.isfile(path) else None

    def signals(self, labels, previous, per_net):
        """The label-free per-epoch signals (see the class docstring), as ``mmt/*`` scalars."""
        stats = cluster_statistics(labels)
        if len(per_net) == 2:
            stats[MEAN_NET_AGREEMENT] = nearest_neighbour_agreement(*per_net)
        if previous is not None and len(previous) == len(labels):
            stats[LABEL_AGREEMENT] = label_agreement(previous, labels)
        return {SCALAR_PREFIX + key: value for key, value in stats.items()}

    def save_labels(self, labels):
        """``OUTPUT_DIR/pseudo_labels/epoch_XXX.npy`` (main process): for diagnosis and for
        comparing runs (e.g. 1 vs several processes). Written atomically: a kill leaves the
        file whole or absent (a resumed run rewrites it)."""
        if comm.is_main_process() and self.cfg.OUTPUT_DIR:
            folder = os.path.join(self.cfg.OUTPUT_DIR, "pseudo_labels")
            os.makedirs(folder, exist_ok=True)
            atomic_write(self.labels_path(self.trainer.epoch), lambda f: np.save(f, labels), labels.nbytes)

    def reset_optimizer_state(self, classifiers):
        """Adam moments of a re-initialised classifier are meaningless (and of the wrong shape
        when the class count changes): drop them. With ``MMT.RESET_OPTIMIZER_EACH_EPOCH``
        (the reference's behaviour) drop all moments; the optimizer object is kept."""
        optimizer = self.trainer.optimizer
        if self.cfg.MMT.RESET_OPTIMIZER_EACH_EPOCH:
            optimizer.state.clear()
        for param in classifiers:
            optimizer.state.pop(param, None)

    def swap_loader(self, loader):
        inner = self.trainer._trainer
        close_loader(getattr(inner, "_data_loader_iter", None))
        inner.data_loader = loader
        inner._data_loader_iter = iter(loader)

    def log_estimate(self, result):
        """Say once which clustering the estimated K leads to, and why."""
        estimated = f"MMT: K = {result.estimated_k} estimated from the features (MMT.CLUSTER.NUM_CLUSTERS 0)"
        if result.eps is not None:
            logger.warning("%s, but %s: k-means would put every image in a cluster, so the DBSCAN rule "
                           "(MMT.CLUSTER.EPS_RHO / EPS, MIN_SAMPLES) clusters for the rest of the run, training on "
                           "the images it groups", estimated, switch_reason(result.structure, self.cfg.MMT.CLUSTER))
        elif result.note is not None:
            logger.warning("%s, k-means with it for the rest of the run: %s", estimated, result.note)
        else:
            logger.info("%s, kept for the rest of the run (cluster structure: best silhouette %.3f)", estimated,
                        result.structure)

    def log(self, result, signals, extract_s, cluster_s):
        labels = result.labels
        stats = {
            "mmt/num_clusters": float(result.num_clusters),
            "mmt/num_outliers": float(result.num_outliers),
            "mmt/extract_time": extract_s,
            "mmt/cluster_time": cluster_s,
            **signals,
        }
        if result.eps is not None:
            stats["mmt/eps"] = float(result.eps)
        gt = self.target.gt_pids
        if gt is not None and len(gt) == len(labels):
            # Diagnostic only: ground truth never reaches training.
            nmi, ari = (SCALAR_PREFIX + name for name in TRUE_ID_SIGNALS)
            stats[nmi] = float(normalized_mutual_info_score(gt, labels))
            stats[ari] = float(adjusted_rand_score(gt, labels))
        self.trainer.storage.put_scalars(**stats, smoothing_hint=False)
        logger.info("MMT epoch %d pseudo labels: %s", self.trainer.epoch,
                    ", ".join(f"{k[4:]}={v:.4g}" for k, v in stats.items()))
