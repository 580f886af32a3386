"""Collectives of the refinery: every rank extracts its shard, rank 0 clusters, every rank
trains on the same pseudo labels; BN running statistics are averaged over the ranks so that
all extract, evaluate and save with one set. All are identities in a single process."""

import torch
import torch.distributed as dist
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.parallel import DistributedDataParallel

from fastreid.engine.hooks import EvalHook
from fastreid.engine.train_loop import HookBase
from fastreid.utils import comm

from ..clustering.pseudo_labels import PseudoLabels


def unwrap(model):
    """The module inside a ``DistributedDataParallel`` wrapper (or ``model`` itself)."""
    return model.module if isinstance(model, DistributedDataParallel) else model


def gather_features(features, indices, total):
    """Assemble the full feature matrix from each rank's shard.

    Args:
        features (Tensor): ``[n_r, C]`` this rank's features.
        indices (Tensor): ``[n_r]`` their positions in the target set.
        total (int): N, the size of the target set.

    Returns:
        Tensor: ``[N, C]`` in target-set order, on every rank.
    """
    if comm.get_world_size() > 1:
        size = torch.tensor([features.shape[0]], device=features.device)
        sizes = [torch.zeros_like(size) for _ in range(comm.get_world_size())]
        dist.all_gather(sizes, size)
        longest = int(max(s.item() for s in sizes))
        pad = longest - features.shape[0]
        padded_f = torch.cat([features, features.new_zeros(pad, features.shape[1])])
        padded_i = torch.cat([indices, indices.new_full((pad,), -1)])
        all_f = [torch.empty_like(padded_f) for _ in sizes]
        all_i = [torch.empty_like(padded_i) for _ in sizes]
        dist.all_gather(all_f, padded_f)
        dist.all_gather(all_i, padded_i)
        features, indices = torch.cat(all_f), torch.cat(all_i)
        valid = indices >= 0
        features, indices = features[valid], indices[valid]
    if features.shape[0] != total:
        raise RuntimeError(f"extracted {features.shape[0]} features for {total} target images")
    out = torch.empty_like(features)
    out[indices] = features
    return out


def broadcast_pseudo_labels(result, device):
    """Send rank 0's :class:`PseudoLabels` to every rank (``result`` is None elsewhere)."""
    if comm.get_world_size() == 1:
        return result
    payload = [None]
    if comm.is_main_process():
        payload = [(result.labels, result.centroids.cpu(), result.eps, result.estimated_k, result.structure)]
    dist.broadcast_object_list(payload, src=0)
    labels, centroids, eps, estimated_k, structure = payload[0]
    return PseudoLabels(labels, centroids.to(device), eps, estimated_k, structure)


def rewrap_ddp(model):
    """A fresh ``DistributedDataParallel`` around ``model``'s module: needed after the
    classifier changed shape (DDP's gradient buckets are sized at construction).

    The old wrapper's reducer is dropped first: while anything still references the old
    wrapper, its autograd hooks stay on the shared parameters and the next backward fails
    (``grad.numel() == bucket_view.numel()``)."""
    if isinstance(model, DistributedDataParallel):
        for name in ("reducer", "logger"):  # the logger holds the reducer too
            if hasattr(model, name):
                delattr(model, name)
    module = unwrap(model)
    on_gpu = any(p.is_cuda for p in module.parameters())
    return DistributedDataParallel(module, device_ids=[comm.get_local_rank()] if on_gpu else None,
                                   broadcast_buffers=False)


@torch.no_grad()
def average_bn_statistics(model):
    """Replace every BN layer's running mean and variance by their average over the ranks
    (``num_batches_tracked``: the maximum), in place, identically on every rank.

    With ``DistributedDataParallel(broadcast_buffers=False)`` each rank updates the running
    statistics from its own share of every batch, so the ranks drift apart. One process with
    the same images per BN folds all chunks into one running average; the rank average is
    that set's counterpart: both are exponential averages of within-chunk means and variances,
    weighted slightly differently (``tests/test_train_net.py`` says how; the exact average is
    checked in ``tests/test_bn_sync.py``).

    Args:
        model (nn.Module): the trained model, DDP-wrapped or not (all its BN layers).
    """
    world = comm.get_world_size()
    if world == 1:
        return
    layers = [m for m in unwrap(model).modules() if isinstance(m, _BatchNorm) and m.track_running_stats]
    stats = [t for m in layers for t in (m.running_mean, m.running_var)]
    counts = [m.num_batches_tracked for m in layers if m.num_batches_tracked is not None]
    for tensors, op in ((stats, dist.ReduceOp.SUM), (counts, dist.ReduceOp.MAX)):
        if not tensors:
            continue
        flat = torch.cat([t.reshape(-1).double() for t in tensors])
        dist.all_reduce(flat, op=op)
        if op == dist.ReduceOp.SUM:
            flat /= world
        for tensor, part in zip(tensors, flat.split([t.numel() for t in tensors])):
            tensor.copy_(part.view_as(tensor))


class AverageBNStatistics(HookBase):
    """After every epoch, before evaluation and checkpointing: :func:`average_bn_statistics`
    of the trainer's model. The next epoch's target features (``MMTHook.before_epoch``), the
    evaluation and the saved checkpoint then all use one set of statistics, as one process
    (and the reference's single ``DataParallel`` model) does."""

    def after_epoch(self):
        average_bn_statistics(self.trainer.model)


def with_bn_averaging(hooks):
    """``hooks`` with an :class:`AverageBNStatistics` placed just before fast-reid's
    ``EvalHook`` (present on every rank; the checkpointer follows it on rank 0)."""
    position = next((i for i, hook in enumerate(hooks) if isinstance(hook, EvalHook)), len(hooks))
    return hooks[:position] + [AverageBNStatistics()] + hooks[position:]
