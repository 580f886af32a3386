"""Camera-aware P x K identity sampler over pseudo labels."""

from collections import defaultdict

import numpy as np
from torch.utils.data import Sampler


class CameraAwarePKSampler(Sampler):
    """Infinite stream of batches of ``num_ids`` pseudo identities x ``num_instances`` images.

    For each drawn identity an anchor image is picked at random, and its companions are taken
    first from *other* cameras than the anchor's, then from the anchor's camera, then (if the
    identity is smaller than ``num_instances``) repeated. Identities are drawn without
    replacement until all have been used, then reshuffled.

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
        anchor = rng.choice(members)
        others = members[members != anchor]
        rng.shuffle(others)
        other_cam = others[self.camids[others] != self.camids[anchor]]
        same_cam = others[self.camids[others] == self.camids[anchor]]
        picked = np.concatenate(([anchor], other_cam, same_cam))[: self.num_instances]
        if len(picked) < self.num_instances:
            picked = np.concatenate((picked, rng.choice(members, self.num_instances - len(picked))))
        return picked

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
