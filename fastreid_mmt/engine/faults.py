"""Fault injection for the preemption tests (a testing aid, not a setting: no config key).

The environment variable ``FASTREID_MMT_FAULT`` makes a run fail at a named moment, so that a
test can kill a real ``tools/train_net.py`` exactly there instead of guessing with timers:

    FASTREID_MMT_FAULT="kill@extracted:1"             SIGKILL after epoch 1's target features
    FASTREID_MMT_FAULT="kill@extracted:1#1"           the same, on rank 1 only
    FASTREID_MMT_FAULT="kill@write:epoch_001.npy"     SIGKILL with that file written under its
                                                      temporary name, before the rename
    FASTREID_MMT_FAULT="enospc@write:model_best.pth"  that write fails with ENOSPC (disk full)

A moment is what the code passes to :func:`fault_point`: ``extracted:<epoch>`` (every rank,
between feature extraction and clustering) and ``write:<file name>`` (every atomic write, see
:mod:`.atomic`). Unset (always, outside tests), :func:`fault_point` does nothing.
"""

import errno
import os
import signal
import sys

ENV = "FASTREID_MMT_FAULT"
ACTIONS = ("kill", "enospc")


def parse(spec):
    """``"ACTION@MOMENT[#RANK]"`` -> ``(action, moment, rank or None)``."""
    action, sep, rest = spec.partition("@")
    moment, _, rank = rest.partition("#")
    if not sep or action not in ACTIONS or not moment or (rank and not rank.isdigit()):
        raise ValueError(f"{ENV}={spec!r}: expected ACTION@MOMENT[#RANK] with ACTION one of {ACTIONS}, "
                         f"e.g. kill@extracted:1 or enospc@write:model_final.pth")
    return action, moment, int(rank) if rank else None


def fault_point(moment):
    """Fail here if ``FASTREID_MMT_FAULT`` names ``moment`` (and this process's rank).

    Raises:
        OSError: ``ENOSPC``, for the ``enospc`` action.
    """
    spec = os.environ.get(ENV)
    if not spec:
        return
    action, wanted, rank = parse(spec)
    if wanted != moment or (rank is not None and rank != _rank()):
        return
    if action == "enospc":
        raise OSError(errno.ENOSPC, f"{os.strerror(errno.ENOSPC)} (injected by {ENV})")
    print(f"{ENV}: SIGKILL of rank {_rank()} (pid {os.getpid()}) at {moment}", file=sys.stderr, flush=True)
    os.kill(os.getpid(), signal.SIGKILL)


def _rank():
    from fastreid.utils import comm

    return comm.get_rank()
