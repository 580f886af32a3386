"""Source pre-training's learning-rate schedule, counted in reference epochs.

The reference (``mmt/utils/lr_scheduler.py`` ``WarmupMultiStepLR``, stepped at the start of
every epoch by ``examples/source_pretrain.py``) sets one lr per epoch: a linear warm-up from
``warmup_factor`` over ``warmup_epochs`` epochs, times ``gamma`` per milestone passed.
fast-reid instead warms up per iteration (``SOLVER.WARMUP_ITERS``) and starts counting its
milestones only after the warm-up, which moves every milestone by the warm-up length.
"""

import bisect
import math

from torch.optim.lr_scheduler import LambdaLR

# SOLVER.SCHED values the epoch schedule implements.
SCHEDULES = ("MultiStepLR", "CosineAnnealingLR")


def reference_lr_factor(epoch, cfg):
    """lr multiplier during the 0-based training epoch ``epoch``.

    The reference's scheduler has already been stepped ``s = epoch + 1`` times when epoch
    ``epoch`` trains (once at construction, once at the start of each epoch), so its factor is

        warm(s) = warmup_factor * (1 - s / W) + s / W   if s < W else 1
        decay(s) = gamma ** #{milestones m : m <= s}     (MultiStepLR)
                 = eta + (1 - eta) * (1 + cos(pi * (s - W) / (E - W))) / 2   (CosineAnnealingLR)

    with ``W = PRETRAIN.WARMUP_EPOCHS``, ``E = SOLVER.MAX_EPOCH``, ``eta`` the ratio
    ``SOLVER.ETA_MIN_LR / SOLVER.BASE_LR``. Reference: warm-up 10 epochs from 0.01, x0.1 at
    epochs 40 and 70 (the lr drops for the 0-based epochs 39 and 69 on).

    Args:
        epoch (int): 0-based epoch.
        cfg (CfgNode): the full config.

    Returns:
        float: the factor applied to ``SOLVER.BASE_LR``.
    """
    solver = cfg.SOLVER
    step, warmup = epoch + 1, cfg.PRETRAIN.WARMUP_EPOCHS
    warm = 1.0
    if step < warmup:
        alpha = step / warmup
        warm = solver.WARMUP_FACTOR * (1.0 - alpha) + alpha
    if solver.SCHED == "MultiStepLR":
        decay = solver.GAMMA ** bisect.bisect_right(sorted(solver.STEPS), step)
    else:
        eta = solver.ETA_MIN_LR / solver.BASE_LR
        progress = min(max(step - warmup, 0) / max(solver.MAX_EPOCH - warmup, 1), 1.0)
        decay = eta + (1.0 - eta) * (1.0 + math.cos(math.pi * progress)) / 2.0
    return warm * decay


def check_epoch_schedule(cfg):
    """Fail fast, naming the key, on settings the epoch schedule cannot honour."""
    if cfg.SOLVER.SCHED not in SCHEDULES:
        raise ValueError(f"SOLVER.SCHED must be one of {SCHEDULES} for source pre-training, got {cfg.SOLVER.SCHED!r}")
    if cfg.SOLVER.WARMUP_ITERS:
        raise ValueError(
            f"SOLVER.WARMUP_ITERS is {cfg.SOLVER.WARMUP_ITERS}, but source pre-training warms up per epoch as the "
            f"reference: set SOLVER.WARMUP_ITERS 0 and PRETRAIN.WARMUP_EPOCHS (reference: 10)")
    if cfg.PRETRAIN.WARMUP_EPOCHS < 0 or cfg.PRETRAIN.ITERS_PER_EPOCH < 0:
        raise ValueError(f"PRETRAIN.WARMUP_EPOCHS ({cfg.PRETRAIN.WARMUP_EPOCHS}) and PRETRAIN.ITERS_PER_EPOCH "
                         f"({cfg.PRETRAIN.ITERS_PER_EPOCH}) must be >= 0")


def build_epoch_scheduler(cfg, optimizer):
    """fast-reid's scheduler dict with one per-epoch ``lr_sched`` (fast-reid's ``LRScheduler``
    hook steps it after every epoch when ``SOLVER.WARMUP_ITERS`` is 0)."""
    check_epoch_schedule(cfg)
    return {"lr_sched": LambdaLR(optimizer, lambda epoch: reference_lr_factor(epoch, cfg))}
