"""The MMT trainer's run-wide state: the base seed of an unseeded run (``SEED -1``) is drawn
anew for each run, shared by every process of it, and repeats the run when given as ``SEED``;
the model re-wrapped in DDP after the classifiers changed size is the one every reference of
the trainer sees (two real gloo processes)."""

import json
import os

import pytest
import torch
from torch.nn.parallel import DistributedDataParallel

from fastreid.utils import comm
from fastreid.utils.events import EventStorage

from fastreid_mmt.engine import MMTTrainer
from fastreid_mmt.engine.launch import launch

from .conftest import small_mmt_cfg

WORLD = 2


def _unseeded_cfg(out, **overrides):
    """The tiny Market-layout target, no test set; ground-truth labels (20 classes, where
    training starts with 1) make the classifiers change size, hence a DDP re-wrap, at epoch 0."""
    opts = dict(DATASETS__NAMES=("Market1501",), DATASETS__TESTS=(), MMT__CLUSTER__METHOD="ground_truth",
                MMT__ITERS_PER_EPOCH=2, SOLVER__MAX_EPOCH=1, SEED=-1, OUTPUT_DIR=str(out))
    opts.update(overrides)
    return small_mmt_cfg(**opts)


def test_unseeded_runs_draw_their_own_base_seed_and_resume_with_it(tiny_data, tmp_path):
    seeds = [MMTTrainer(_unseeded_cfg(tmp_path / f"run{i}")).mmt_hook.seed for i in range(2)]
    assert seeds[0] != seeds[1]  # two unseeded runs: two k-means / sampler / loader seed streams
    assert MMTTrainer(_unseeded_cfg(tmp_path / "seeded", SEED=5)).mmt_hook.seed == 5

    first = MMTTrainer(_unseeded_cfg(tmp_path / "first")).mmt_hook
    assert first.state_dict()["seed"] == first.seed  # checkpointed with the trainer
    resumed = MMTTrainer(_unseeded_cfg(tmp_path / "resumed")).mmt_hook
    resumed.load_state_dict(first.state_dict())  # as the checkpointer does on --resume
    assert resumed.seed == first.seed


def _first_step_losses(cfg, rng_before_epoch):
    """The losses of an MMT trainer's first step, from the same initial networks (a stand-in for
    ``MMT.INIT_WEIGHTS``) but global RNGs in the state ``rng_before_epoch`` when the epoch starts."""
    torch.manual_seed(0)
    trainer = MMTTrainer(cfg)
    torch.manual_seed(rng_before_epoch)
    with EventStorage(0) as trainer.storage:
        trainer.iter = trainer.epoch = 0
        trainer.mmt_hook.before_epoch()
        trainer.run_step()
    return trainer.mmt_hook.seed, {k: v.item() for k, v in trainer.model.last_losses.items()}


def test_an_unseeded_run_repeats_with_the_seed_it_logged(tiny_data, tmp_path):
    """SEED -1 logs its drawn base; SEED <that base> repeats the run's draws (clustering, sampler,
    augmentation in the main process), whatever the global RNGs held before."""
    drawn, unseeded = _first_step_losses(_unseeded_cfg(tmp_path / "unseeded"), rng_before_epoch=1)
    _, repeated = _first_step_losses(_unseeded_cfg(tmp_path / "repeated", SEED=drawn), rng_before_epoch=2)
    assert repeated == unseeded


def _train_two_steps(out_dir):
    """One rank: an unseeded trainer clusters (epoch 0), then trains and back-propagates
    through ``trainer.model``; writes what it saw."""
    torch.manual_seed(0)
    trainer = MMTTrainer(_unseeded_cfg(os.path.join(out_dir, "run")))
    first = trainer.model
    with EventStorage(0) as trainer.storage:
        trainer.iter = trainer.epoch = 0
        trainer.mmt_hook.before_epoch()
        live = trainer.model
        seen = {"seed": trainer.mmt_hook.seed, "rewrapped": live is not first,
                "one_model": live is trainer._trainer.model, "ddp": isinstance(live, DistributedDataParallel),
                "live_reducer": hasattr(live, "reducer"), "old_reducer": hasattr(first, "reducer")}
        trainer.run_step()
        # With gradients on (not as evaluation runs): a wrapper whose reducer was dropped fails here.
        losses = trainer.model(next(trainer._trainer._data_loader_iter))
        sum(losses.values()).backward()
        seen["grad"] = bool(all(torch.isfinite(p.grad).all() for p in trainer.model.parameters() if p.grad is not None))
    with open(os.path.join(out_dir, f"rank{comm.get_rank()}.json"), "w") as handle:
        json.dump(seen, handle)


@pytest.mark.slow
def test_two_processes_share_one_drawn_seed_and_train_through_the_rewrapped_model(tiny_data, tmp_path):
    launch(_train_two_steps, WORLD, dist_url=f"file://{tmp_path / 'init'}", args=(str(tmp_path),))
    ranks = [json.loads((tmp_path / f"rank{rank}.json").read_text()) for rank in range(WORLD)]
    assert ranks[0]["seed"] == ranks[1]["seed"]  # one draw for the run, on the main process
    single = MMTTrainer(_unseeded_cfg(tmp_path / "single")).mmt_hook.seed
    assert single != ranks[0]["seed"]  # ... and another for another run
    for seen in ranks:
        assert seen["rewrapped"] and seen["ddp"] and seen["live_reducer"] and not seen["old_reducer"]
        assert seen["one_model"] and seen["grad"]
