"""Bad input fails fast with a message naming the problem."""

import numpy as np
import pytest
import torch

from fastreid.modeling import build_model

from fastreid_mmt.clustering.pseudo_labels import compute_pseudo_labels
from fastreid_mmt.data import CameraAwarePKSampler
from fastreid_mmt.engine.setup import build_cfg

from .conftest import REPO, save_source_checkpoints, small_mmt_cfg


def test_init_weights_must_be_two_existing_matching_checkpoints(tmp_path):
    cfg = small_mmt_cfg()
    model = build_model(cfg)
    paths = save_source_checkpoints(cfg, tmp_path)
    with pytest.raises(ValueError, match="must be two checkpoint paths"):
        model.load_init_weights(paths[:1])
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        model.load_init_weights([paths[0], str(tmp_path / "nope.pth")])
    bad = tmp_path / "corrupt.pth"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="cannot read checkpoint .*corrupt.pth"):
        model.load_init_weights([paths[0], str(bad)])
    osnet = save_source_checkpoints(small_mmt_cfg("build_osnet_backbone", "x0_25", 128), tmp_path / "..", seeds=(7,))
    with pytest.raises(ValueError, match="does not match the configured architecture.*missing: backbone"):
        model.load_init_weights([paths[0], osnet[0]])
    model.load_init_weights(paths)  # the good case loads, classifier excepted
    torch.testing.assert_close(model.net2.backbone.conv1.weight, model.mean_net2.backbone.conv1.weight)


def test_too_many_clusters_and_all_outliers():
    feats = torch.nn.functional.normalize(torch.randn(20, 8), dim=1)
    cfg = small_mmt_cfg(MMT__CLUSTER__NUM_CLUSTERS=50)
    with pytest.raises(ValueError, match="NUM_CLUSTERS = 50 exceeds the 20"):
        compute_pseudo_labels(feats, cfg.MMT.CLUSTER, seed=0)
    cfg = small_mmt_cfg(MMT__CLUSTER__METHOD="dbscan", MMT__CLUSTER__EPS=1e-6, MMT__CLUSTER__K1=5,
                        MMT__CLUSTER__K2=2, MMT__CLUSTER__MIN_SAMPLES=4)
    with pytest.raises(ValueError, match="all 20 target images as outliers"):
        compute_pseudo_labels(feats, cfg.MMT.CLUSTER, seed=0)
    with pytest.raises(ValueError, match="METHOD must be one of"):
        compute_pseudo_labels(feats, small_mmt_cfg(MMT__CLUSTER__METHOD="spectral").MMT.CLUSTER, seed=0)


def test_fewer_clusters_than_ids_per_batch_is_an_error_not_a_hang():
    labels = np.repeat(np.arange(3), 5)
    with pytest.raises(ValueError, match="3 pseudo identities but a batch needs 4"):
        CameraAwarePKSampler(labels, np.zeros(15), num_ids=4, num_instances=4, seed=0)


def test_unknown_config_key_is_named(tmp_path):
    with pytest.raises(AssertionError, match="Non-existent key: MMT.NOT_A_KEY"):  # yacs, command line
        build_cfg(f"{REPO}/configs/MMT/Base-MMT.yml", ["MMT.NOT_A_KEY", 1])
    yml = tmp_path / "typo.yml"
    yml.write_text(f"_BASE_: {REPO}/configs/MMT/Base-MMT.yml\nMMT:\n  SOFT_CE_WIEGHT: 0.3\n")
    with pytest.raises(KeyError, match="MMT.SOFT_CE_WIEGHT"):  # yacs, YAML file
        build_cfg(str(yml))


def test_pretrain_without_local_weights_is_explained():
    with pytest.raises(ValueError, match="PRETRAIN_PATH is empty"):
        build_cfg(f"{REPO}/configs/Pretrain/duke.yml")


def test_missing_dataset_folder_is_named(tmp_path, monkeypatch):
    import fastreid.data.build as fastreid_build

    from fastreid_mmt.data import load_target_set

    monkeypatch.setattr(fastreid_build, "_root", str(tmp_path / "empty"))
    with pytest.raises(RuntimeError, match="empty"):
        load_target_set(small_mmt_cfg(DATASETS__NAMES=("Market1501",)))
