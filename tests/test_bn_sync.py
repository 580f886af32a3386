"""BN running statistics averaged over processes (two real gloo processes)."""

import os

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

import fastreid_mmt  # noqa: F401  (compat shims before fastreid; the spawned ranks import this file)
from fastreid.engine.hooks import EvalHook, IterationTimer  # noqa: E402

from fastreid_mmt.engine.distributed import AverageBNStatistics, average_bn_statistics, with_bn_averaging  # noqa: E402

WORLD = 2
STEPS = 3
CHANNELS = 3


def _net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(CHANNELS, CHANNELS, 1), nn.BatchNorm2d(CHANNELS), nn.Flatten(),
                         nn.BatchNorm1d(CHANNELS * 4)).train()


def _chunk(rank, step):
    """The images rank ``rank`` forwards at ``step``: a rank-dependent offset and scale, so
    each rank's running statistics move differently."""
    gen = torch.Generator().manual_seed(100 * step + rank)
    return torch.randn(8, CHANNELS, 2, 2, generator=gen) * (1 + rank) + 3 * rank


def _buffers(net):
    return {k: v.clone() for k, v in net.state_dict().items() if "running" in k or "num_batches" in k}


def _worker(rank, init_file, out_dir):
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD)
    net = _net()
    with torch.no_grad():
        for step in range(STEPS):
            net(_chunk(rank, step))
    before = _buffers(net)
    average_bn_statistics(nn.parallel.DistributedDataParallel(net, broadcast_buffers=False))
    torch.save({"before": before, "after": _buffers(net)}, os.path.join(out_dir, f"rank{rank}.pt"))
    dist.destroy_process_group()


@pytest.mark.slow
def test_ranks_end_with_the_average_of_their_running_statistics(tmp_path):
    mp.spawn(_worker, args=(str(tmp_path / "init"), str(tmp_path)), nprocs=WORLD, join=True)
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in range(WORLD)]
    assert not torch.allclose(ranks[0]["before"]["1.running_mean"], ranks[1]["before"]["1.running_mean"])

    # Expected: each rank's own statistics (the same forwards in this process), averaged.
    nets = [_net() for _ in range(WORLD)]
    with torch.no_grad():
        for step in range(STEPS):
            for rank, net in enumerate(nets):
                net(_chunk(rank, step))
    own = [_buffers(net) for net in nets]
    for key, value in ranks[0]["after"].items():
        torch.testing.assert_close(ranks[1]["after"][key], value, rtol=0, atol=0)  # bit-identical ranks
        if "num_batches" in key:
            assert int(value) == STEPS
        else:
            torch.testing.assert_close(ranks[0]["before"][key], own[0][key])
            torch.testing.assert_close(value, (own[0][key] + own[1][key]) / WORLD)


def test_averaging_runs_before_evaluation_and_is_a_no_op_in_one_process():
    net = _net()
    with torch.no_grad():
        net(_chunk(1, 0))
    before = _buffers(net)
    average_bn_statistics(net)
    for key, value in _buffers(net).items():
        torch.testing.assert_close(value, before[key], rtol=0, atol=0)
    evaluation = EvalHook(1, lambda: {})
    hooks = with_bn_averaging([IterationTimer(), evaluation])
    assert isinstance(hooks[1], AverageBNStatistics) and hooks[2] is evaluation
