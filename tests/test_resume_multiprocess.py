"""Nothing lost with several processes (``--num-gpus 2``: gloo on the CPU): the launcher
killed mid-epoch, then one rank killed during clustering; every process goes down each time,
and ``--resume`` with the same process count ends as the uninterrupted 2-process run (DBSCAN:
the class count changes every epoch, so the model is re-wrapped in DDP each time)."""

import signal
import time

import pytest

from .conftest import scratch_dir
from .preempt import (EPOCH1_STARTED, assert_same_result, children, copy_epoch0, kill_all,
                      read_until, run, run_args, run_ok, start, temporaries, wait_gone)

TWO = ["--num-gpus", "2", "--dist-url", "auto"]
# Seconds the ranks may take to go down after their launcher was killed (the kernel kills
# them at once; this allows for a loaded machine). Ranks left running would be caught here,
# or, if they finish epoch 1 sooner, by the model_final.pth they write.
SHUTDOWN_S = 20


@pytest.fixture(scope="module")
def straight(tiny_data, random_init, tmp_path_factory):
    with scratch_dir(tmp_path_factory, "straight2") as out:
        log = run_ok([*TWO, *run_args(random_init, out)], tiny_data)
        assert "World size: 2" in log
        yield out


def _kill_launcher_mid_epoch1(args, data_root):
    """SIGKILL the launcher (only it) shortly after epoch 1 began; its ranks must die too."""
    proc = start(args, data_root)
    ranks = []
    try:
        seen = read_until(proc, EPOCH1_STARTED)
        time.sleep(0.5)
        ranks = children(proc.pid)
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=60) == -signal.SIGKILL, seen[-3000:]
        assert EPOCH1_STARTED in seen, seen[-3000:]
        survivors = wait_gone(ranks, SHUTDOWN_S)
        assert not survivors, f"ranks {survivors} outlived their killed launcher"
    finally:
        if proc.poll() is None:
            proc.kill()
        kill_all(ranks)
        proc.stdout.close()
    return ranks


@pytest.mark.slow
def test_two_processes_killed_twice_then_resumed_equal_uninterrupted(tiny_data, random_init, straight, tmp_path):
    out = tmp_path / "killed"
    copy_epoch0(straight, out)  # as if killed after epoch 0; epoch 0 itself would add nothing
    args = ["--resume", *TWO, *run_args(random_init, out)]
    ranks = _kill_launcher_mid_epoch1(args, tiny_data)
    assert len(ranks) >= 2, ranks  # the two ranks (and multiprocessing's resource tracker)
    assert (out / "model_0000.pth").is_file() and not (out / "model_final.pth").exists(), \
        "the kill came after epoch 1 ended: not mid-epoch"
    assert (out / "last_checkpoint").read_text() == "model_0000.pth"

    # Rank 1 dies after extracting its shard, while rank 0 clusters: the launcher must stop
    # rank 0 (not leave it waiting for rank 1 in the broadcast) and fail, within run()'s timeout.
    code, log = run(args, tiny_data, fault="kill@extracted:1#1")
    assert code != 0 and "SIGKILL of rank 1" in log, log[-3000:]
    # torch's spawn stopped the other rank, then raised (naming whichever rank it saw end first)
    assert "terminated with" in log, log[-3000:]
    assert "Starting training from epoch 1" in log and "MMT epoch 1 pseudo labels" not in log

    log = run_ok(args, tiny_data)
    assert "Starting training from epoch 1" in log and "MMT epoch 0 pseudo labels" not in log
    assert_same_result(straight, out)
    assert temporaries(out) == []
