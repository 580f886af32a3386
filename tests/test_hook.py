"""MMTHook inside fast-reid's trainer loop: clustering, classifiers, loaders, EMA."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from fastreid.engine.train_loop import HookBase

from fastreid_mmt.clustering.pseudo_labels import cluster_centroids, relabel_consecutive
from fastreid_mmt.engine import MMTTrainer
from fastreid_mmt.engine.hooks import unwrap

from .conftest import save_source_checkpoints, small_mmt_cfg


class Recorder(HookBase):
    """Runs after MMTHook: records what it set up at each epoch."""

    def __init__(self):
        self.epochs = []

    def before_epoch(self):
        hook, model = self.trainer.mmt_hook, unwrap(self.trainer.model)
        self.epochs.append({
            "labels": hook.labels.copy(),
            "num_classes": model.num_classes(),
            "classifiers": [dict(getattr(model, n).named_parameters())["heads.weight"].detach().clone()
                            for n in ("net1", "net2", "mean_net1", "mean_net2")],
            "loader_labels": sorted(set(self.trainer.data_loader.dataset.labels)),
        })


def _mmt_cfg(tmp_path, paths, **overrides):
    opts = dict(DATASETS__NAMES=("Market1501",), DATASETS__TESTS=("Market1501",), MMT__ITERS_PER_EPOCH=3,
                SOLVER__MAX_EPOCH=2, MMT__CLUSTER__NUM_CLUSTERS=12, OUTPUT_DIR=str(tmp_path / "out"),
                TEST__EVAL_PERIOD=2, SEED=0, MMT__INIT_WEIGHTS=paths)
    opts.update(overrides)
    return small_mmt_cfg(**opts)


def _train(cfg):
    trainer = MMTTrainer(cfg)
    recorder = Recorder()
    trainer.register_hooks([recorder])
    trainer.resume_or_load(resume=False)
    trainer.train()
    return trainer, recorder


@pytest.mark.parametrize("method,extra", [
    ("kmeans", {}),
    ("dbscan", {"MMT__CLUSTER__EPS": 0.7, "MMT__CLUSTER__K1": 10, "MMT__CLUSTER__K2": 3,
                "MMT__CLUSTER__MIN_SAMPLES": 2}),
])
@pytest.mark.slow
def test_two_epochs_labels_change_and_classifiers_follow(tiny_data, tmp_path, method, extra):
    paths = save_source_checkpoints(small_mmt_cfg(), tmp_path)
    cfg = _mmt_cfg(tmp_path, paths, MMT__CLUSTER__METHOD=method, **extra)
    trainer, rec = _train(cfg)
    assert len(rec.epochs) == 2
    first, second = rec.epochs
    assert not np.array_equal(first["labels"], second["labels"])
    for epoch in rec.epochs:
        labels = epoch["labels"]
        k = int(labels.max()) + 1
        assert epoch["num_classes"] == k == len(epoch["loader_labels"])
        assert epoch["loader_labels"] == list(range(k))  # outliers sit out
        for weight in epoch["classifiers"]:
            assert weight.shape[0] == k
            torch.testing.assert_close(weight.norm(dim=1), torch.ones(k))
        torch.testing.assert_close(epoch["classifiers"][0], epoch["classifiers"][2])
    if method == "kmeans":
        assert first["num_classes"] == second["num_classes"] == 12
    # the last epoch's classifiers are the normalised centroids of the hook's features
    storage = trainer.storage.latest()
    assert storage["mmt/num_clusters"][0] == second["num_classes"]
    assert 0.0 <= storage["mmt/nmi"][0] <= 1.0


@pytest.mark.slow
def test_ema_runs_after_each_step_and_students_train(tiny_data, tmp_path):
    paths = save_source_checkpoints(small_mmt_cfg(), tmp_path)
    cfg = _mmt_cfg(tmp_path, paths, SOLVER__MAX_EPOCH=1)
    trainer = MMTTrainer(cfg)
    trainer.resume_or_load(resume=False)
    model = unwrap(trainer.model)
    init = {k: v.clone() for k, v in model.state_dict().items()}
    trainer.train()
    state = model.state_dict()
    key = "backbone.conv1.weight"
    assert not torch.equal(init["net1." + key], state["net1." + key])
    # after >= 1 step the warm-up EMA (a = 1 - 1/(step+1)) is the running mean of the students
    assert not torch.equal(init["mean_net1." + key], state["mean_net1." + key])
    assert not torch.equal(state["mean_net1." + key], state["net1." + key])


@pytest.mark.slow
def test_pseudo_labels_never_read_target_ids(tiny_data, tmp_path, monkeypatch):
    """Permuting the target's ground-truth ids changes neither pseudo labels nor losses."""
    import fastreid_mmt.data.target as data_target

    paths = save_source_checkpoints(small_mmt_cfg(), tmp_path)
    runs = []
    for permute in (False, True):
        if permute:
            original = data_target.load_target_set

            def shuffled(cfg, **kwargs):
                target = original(cfg, **kwargs)
                perm = np.random.default_rng(0).permutation(max(target.gt_pids) + 1)
                target.gt_pids = [int(perm[p]) for p in target.gt_pids]
                return target

            monkeypatch.setattr("fastreid_mmt.engine.trainer.load_target_set", shuffled)
        cfg = _mmt_cfg(tmp_path / str(permute), paths, SOLVER__MAX_EPOCH=1, MMT__ITERS_PER_EPOCH=4)
        trainer, rec = _train(cfg)
        runs.append((rec.epochs[0]["labels"], trainer.storage.history("loss_ce").values()))
    np.testing.assert_array_equal(runs[0][0], runs[1][0])
    assert [v for v, _ in runs[0][1]] == [v for v, _ in runs[1][1]]


@pytest.mark.slow
def test_ground_truth_diagnostic_trains_on_the_true_ids(tiny_data, tmp_path):
    """MMT.CLUSTER.METHOD ground_truth (the upper-bound diagnostic) uses the true ids as labels."""
    paths = save_source_checkpoints(small_mmt_cfg(), tmp_path)
    cfg = _mmt_cfg(tmp_path, paths, SOLVER__MAX_EPOCH=1, MMT__CLUSTER__METHOD="ground_truth")
    trainer, rec = _train(cfg)
    gt = trainer.mmt_hook.target.gt_pids
    np.testing.assert_array_equal(rec.epochs[0]["labels"], relabel_consecutive(gt))
    assert rec.epochs[0]["num_classes"] == len(set(gt))
    assert trainer.storage.latest()["mmt/nmi"][0] == 1.0


def test_centroids_helper():
    feats = torch.tensor([[1.0, 0.0], [3.0, 0.0], [0.0, 2.0], [9.0, 9.0]])
    cents = cluster_centroids(feats, np.array([0, 0, 1, -1]))
    torch.testing.assert_close(cents, torch.tensor([[2.0, 0.0], [0.0, 2.0]]))
    torch.testing.assert_close(F.normalize(cents, dim=1)[1], torch.tensor([0.0, 1.0]))


@pytest.mark.slow
def test_too_few_clusters_is_logged_at_its_epoch_before_the_sampler_refuses(tiny_data, tmp_path, caplog):
    paths = save_source_checkpoints(small_mmt_cfg(), tmp_path)
    # A batch of 16 samples 4 pseudo-ids (NUM_INSTANCE 4): 3 clusters cannot fill it.
    cfg = _mmt_cfg(tmp_path, paths, MMT__CLUSTER__NUM_CLUSTERS=3)
    with caplog.at_level("WARNING", logger="fastreid_mmt.engine.hooks"):
        with pytest.raises(ValueError, match="3 pseudo identities but a batch needs 4"):
            _train(cfg)
    assert "MMT epoch 0: the clustering found 3 clusters, fewer than the 4 pseudo-ids" in caplog.text


@pytest.mark.slow
def test_an_estimated_k_is_chosen_once_and_checkpointed(tiny_data, tmp_path, monkeypatch):
    from fastreid_mmt.clustering import pseudo_labels

    calls = []
    estimate = pseudo_labels.estimate_num_clusters
    monkeypatch.setattr(pseudo_labels, "estimate_num_clusters", lambda *a, **k: calls.append(1) or estimate(*a, **k))
    paths = save_source_checkpoints(small_mmt_cfg(), tmp_path)
    trainer, rec = _train(_mmt_cfg(tmp_path, paths, MMT__CLUSTER__NUM_CLUSTERS=0))
    k = trainer.mmt_hook.estimated_k
    assert len(calls) == 1 and isinstance(k, int) and k >= 2  # estimated at the first clustering only
    assert all(epoch["num_classes"] <= k for epoch in rec.epochs)
    structure = trainer.mmt_hook.structure
    assert -1.0 <= structure <= 1.0
    assert trainer.mmt_hook.state_dict()["estimated_k"] == k
    restored = type(trainer.mmt_hook).__new__(type(trainer.mmt_hook))
    restored.cfg = trainer.mmt_hook.cfg
    restored.load_state_dict(trainer.mmt_hook.state_dict())
    # The radius is the run's choice of the DBSCAN rule under an estimated K (None: k-means).
    assert (restored.estimated_k, restored.structure, restored.eps) == (k, structure, trainer.mmt_hook.eps)
