"""Camera-aware P x K identity sampler over pseudo labels."""

from collections import defaultdict

import numpy as np
from torch.utils.data import Sampler


class CameraAwarePKSampler(Sampler):
    """Infinite stream of batches of ``num_ids`` pseudo identities x ``num_instances`` images.

    For each drawn identity an anchor image is picked at random and ``num_instances - 1``
    companions are drawn as the reference's ``RandomMultipleGallerySampler`` draws them: from
    the identity's images in *other* cameras than the anchor's when there is any (without
    replacement when there are at least ``num_instances`` of them, with replacement
    otherwise), else from its other images in the anchor's camera (same rule). An identity of
    one image repeats it (the reference drops the companions, which shifts every later batch
    off its P x K grid). Identities are drawn without replacement until all have been used
    (one pass), then reshuffled. Used for source pre-training and for the pseudo labels.

    Every rank draws the same global batches from the same seed and keeps its own slice, so
    the union over ranks does not depend on the number of processes.

    Args:
        labels (Sequence[int]): pseudo label of each dataset item.
        camids (Sequence[int]): camera of each item.
        num_ids (int): identities per global batch (P).
        num_instances (int): images per identity (K).
        seed (int): seed of the stream.
        rank (int), world_size (int): this process's slice of each global batch.

    Raises:
        ValueError: fewer distinct labels than ``num_ids``: a P x K batch cannot be formed.
    """

    def __init__(self, labels, camids, num_ids, num_instances, seed, rank=0, world_size=1):
        self.labels = np.asarray(labels, dtype=np.int64)
        self.camids = np.asarray(camids)
        by_label = defaultdict(list)
        for i, label in enumerate(self.labels):
            by_label[int(label)].append(i)
        self.groups = [np.asarray(v) for _, v in sorted(by_label.items())]
        if len(self.groups) < num_ids:
            raise ValueError(
                f"{len(self.groups)} pseudo identities but a batch needs {num_ids} "
                f"(SOLVER.IMS_PER_BATCH / DATALOADER.NUM_INSTANCE): raise "
                f"MMT.CLUSTER.NUM_CLUSTERS, lower MMT.CLUSTER.EPS or MIN_SAMPLES, or use a "
                f"smaller SOLVER.IMS_PER_BATCH")
        batch = num_ids * num_instances
        if batch % world_size:
            raise ValueError(f"batch of {batch} images cannot be split over {world_size} processes")
        self.num_ids, self.num_instances = num_ids, num_instances
        self.seed, self.rank, self.world_size = int(seed), rank, world_size
        self.per_rank = batch // world_size

    def _companions(self, rng, members):
        """``[K]`` dataset indices: a random anchor of ``members``, then its companions."""
        anchor = rng.choice(members)
        others = members[members != anchor]
        pool = others[self.camids[others] != self.camids[anchor]]
        if len(pool) == 0:
            pool = others if len(others) else np.asarray([anchor])
        # The reference samples without replacement only from at least K candidates (not K - 1).
        replace = len(pool) < self.num_instances
        return np.concatenate(([anchor], rng.choice(pool, self.num_instances - 1, replace=replace)))

    def global_batches(self):
        """Infinite generator of global batches (arrays of ``P * K`` dataset indices)."""
        rng = np.random.default_rng(self.seed)
        order = []
        while True:
            if len(order) < self.num_ids:
                order = list(rng.permutation(len(self.groups)))
            ids, order = order[: self.num_ids], order[self.num_ids:]
            yield np.concatenate([self._companions(rng, self.groups[g]) for g in ids])

    def __iter__(self):
        start = self.rank * self.per_rank
        for batch in self.global_batches():
            yield [int(i) for i in batch[start: start + self.per_rank]]
