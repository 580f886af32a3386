"""Source pre-training as the reference runs it: schedule in epochs, camera-aware sampler,
no random erasing (``configs/Pretrain``)."""

import numpy as np
import pytest
import torch

from fastreid_mmt.data import CameraAwarePKSampler
from fastreid_mmt.engine.schedule import build_epoch_scheduler, reference_lr_factor
from fastreid_mmt.engine.setup import build_cfg

from .conftest import REPO

PRETRAIN_OPTS = ["MODEL.BACKBONE.PRETRAIN", False]


def _pretrain_cfg(*opts):
    return build_cfg(f"{REPO}/configs/Pretrain/duke.yml", PRETRAIN_OPTS + list(opts))


def _reference_factors(epochs, milestones=(40, 70), warmup=10, factor=0.01, gamma=0.1):
    """The lr factor of each epoch as the reference computes it: its WarmupMultiStepLR
    (``last_epoch`` = 1 + the epoch, stepped once at construction and at each epoch start)."""
    out = []
    for epoch in range(epochs):
        last = epoch + 1
        warm = factor * (1 - last / warmup) + last / warmup if last < warmup else 1.0
        out.append(warm * gamma ** sum(m <= last for m in milestones))
    return out


def test_pretrain_defaults_are_the_reference_recipe():
    cfg = _pretrain_cfg()
    assert not cfg.INPUT.REA.ENABLED  # random erasing is a stage-II augmentation only
    assert cfg.DATALOADER.SAMPLER_TRAIN == "CameraAwarePKSampler"
    assert (cfg.PRETRAIN.ITERS_PER_EPOCH, cfg.SOLVER.MAX_EPOCH, cfg.PRETRAIN.WARMUP_EPOCHS) == (100, 80, 10)
    assert (list(cfg.SOLVER.STEPS), cfg.SOLVER.WARMUP_FACTOR, cfg.SOLVER.WARMUP_ITERS) == ([40, 70], 0.01, 0)
    assert (cfg.SOLVER.BASE_LR, cfg.SOLVER.IMS_PER_BATCH, cfg.DATALOADER.NUM_INSTANCE) == (0.00035, 64, 4)
    mmt = build_cfg(f"{REPO}/configs/MMT/market.yml")
    assert mmt.INPUT.REA.ENABLED and mmt.INPUT.REA.PROB == 0.5  # ... and stage II erases


def test_epoch_schedule_matches_the_reference_and_follows_max_epoch():
    cfg = _pretrain_cfg()
    ours = [reference_lr_factor(e, cfg) for e in range(80)]
    np.testing.assert_allclose(ours, _reference_factors(80), rtol=1e-12)
    assert ours[0] == pytest.approx(0.109) and ours[8] < 1.0 == ours[9] and ours[38] == 1.0
    assert ours[39] == pytest.approx(0.1) and ours[69] == pytest.approx(0.01)
    # driven the way fast-reid's LRScheduler hook drives it (one step after each epoch)
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.Adam([param], lr=cfg.SOLVER.BASE_LR)
    scheduler = build_epoch_scheduler(cfg, optimizer)["lr_sched"]
    seen = []
    for _ in range(80):
        seen.append(optimizer.param_groups[0]["lr"] / cfg.SOLVER.BASE_LR)
        scheduler.step()
    np.testing.assert_allclose(seen, ours, rtol=1e-9)
    # a shorter run keeps its milestones in epochs, whatever the source size
    short = _pretrain_cfg("SOLVER.MAX_EPOCH", 30, "SOLVER.STEPS", [15, 25], "PRETRAIN.WARMUP_EPOCHS", 5)
    np.testing.assert_allclose([reference_lr_factor(e, short) for e in range(30)],
                               _reference_factors(30, (15, 25), 5), rtol=1e-12)


def test_iteration_warmup_is_refused_naming_the_keys():
    with pytest.raises(ValueError, match="SOLVER.WARMUP_ITERS is 2000.*PRETRAIN.WARMUP_EPOCHS"):
        build_epoch_scheduler(_pretrain_cfg("SOLVER.WARMUP_ITERS", 2000), torch.optim.SGD([torch.zeros(1)], 0.1))


def test_camera_aware_sampler_one_pass_per_identity_companions_from_other_cameras():
    rng = np.random.default_rng(0)
    labels, camids = [], []
    for pid in range(24):
        n = 1 if pid == 0 else 2 if pid == 1 else 6
        labels += [pid] * n
        camids += list(rng.integers(0, 3, n)) if pid != 2 else [0] * n  # pid 2: a single camera
    labels, camids = np.asarray(labels), np.asarray(camids)
    sampler = CameraAwarePKSampler(labels, camids, num_ids=8, num_instances=4, seed=3)
    batches = sampler.global_batches()
    first_pass = [next(batches) for _ in range(3)]  # 24 ids / 8 per batch
    ids = [labels[b].reshape(8, 4) for b in first_pass]
    assert all((g == g[:, :1]).all() for g in ids)  # P x K, one identity per row
    assert sorted(np.concatenate([g[:, 0] for g in ids])) == list(range(24))  # each id once per pass
    for batch in first_pass:
        for row in batch.reshape(8, 4):
            anchor, companions = row[0], row[1:]
            if labels[anchor] == 0:
                assert (companions == anchor).all()  # one image: repeated, never a short row
            elif len(set(camids[labels == labels[anchor]]) - {camids[anchor]}):
                assert (camids[companions] != camids[anchor]).all()
            else:
                assert (companions != anchor).all() or labels[anchor] == 0
    # every rank draws the same global batch and keeps its slice
    halves = [next(iter(CameraAwarePKSampler(labels, camids, 8, 4, seed=3, rank=r, world_size=2)))
              for r in (0, 1)]
    assert halves[0] + halves[1] == [int(i) for i in first_pass[0]]


def test_source_loader_camera_aware_and_no_erasing_on_source_or_target_bn(tiny_data):
    from torchvision.transforms import RandomErasing

    from fastreid_mmt.engine import SourceTrainer

    cfg = build_cfg(f"{REPO}/configs/Demo/pretrain.yml", ["SOLVER.IMS_PER_BATCH", 16, "SEED", 4])
    loader = SourceTrainer.build_train_loader(cfg)
    assert isinstance(loader.source.batch_sampler, CameraAwarePKSampler)
    for dataset in (loader.dataset, loader.target.dataset):
        assert not any(isinstance(t, RandomErasing) for t in dataset.transform.transforms), dataset.transform
    batch = next(iter(loader))
    assert batch["images"].shape[0] == batch["target_images"].shape[0] == 16
    assert (batch["targets"].reshape(4, 4) == batch["targets"].reshape(4, 4)[:, :1]).all()
