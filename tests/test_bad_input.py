"""Bad input fails fast with a message naming the problem."""

import argparse
import logging
import os
import shutil

import numpy as np
import pytest
import torch

from fastreid.modeling import build_model

from fastreid_mmt.clustering.pseudo_labels import compute_pseudo_labels
from fastreid_mmt.data import CameraAwarePKSampler, TargetImages, load_target_set
from fastreid_mmt.data.checks import DatasetError
from fastreid_mmt.data.preflight import check_inputs
from fastreid_mmt.engine.setup import build_cfg, check_model_weights
from fastreid_mmt.engine.trainer import check_mmt_config

from .conftest import REPO, run_train_net, save_source_checkpoints, small_mmt_cfg


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
    osnet = save_source_checkpoints(small_mmt_cfg("build_osnet_backbone", "x0_25", 128), tmp_path / "osnet",
                                    seeds=(7,))
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
    with pytest.raises(ValueError, match="MMT.CLUSTER.METHOD must be one of .* got 'spectral'"):
        small_mmt_cfg(MMT__CLUSTER__METHOD="spectral")  # caught when the config is built
    with pytest.raises(ValueError, match="MMT.CLUSTER.BACKEND must be one of .* got 'faiis'"):
        small_mmt_cfg(MMT__CLUSTER__BACKEND="faiis")
    with pytest.raises(ValueError, match="MMT.TEST_NET must be one of .* got 'mean_net3'"):
        small_mmt_cfg(MMT__TEST_NET="mean_net3")
    cluster = small_mmt_cfg().MMT.CLUSTER.clone()
    cluster.METHOD = "spectral"
    with pytest.raises(ValueError, match="METHOD must be one of"):
        compute_pseudo_labels(feats, cluster, seed=0)
    with pytest.raises(ValueError, match="ground_truth needs the true id of each of the 20 .* got 3"):
        compute_pseudo_labels(feats, small_mmt_cfg(MMT__CLUSTER__METHOD="ground_truth").MMT.CLUSTER, seed=0,
                              ground_truth=[0, 1, 2])


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


MARKET = "Market-1501-v15.09.15"


@pytest.fixture
def market_copy(tiny_data, tmp_path, monkeypatch):
    """A private copy of the tiny Market-layout target, made fast-reid's dataset root."""
    import fastreid.data.build as fastreid_build

    root = tmp_path / "datasets"
    shutil.copytree(os.path.join(tiny_data, MARKET), root / MARKET)
    monkeypatch.setattr(fastreid_build, "_root", str(root))
    return root


def _target_cfg(**overrides):
    return small_mmt_cfg(DATASETS__NAMES=("Market1501",), DATASETS__TESTS=("Market1501",), **overrides)


def test_missing_or_empty_dataset_folder_is_named(market_copy):
    shutil.rmtree(market_copy / MARKET / "bounding_box_train")
    with pytest.raises(DatasetError, match="bounding_box_train.*is not found.*FASTREID_DATASETS"):
        check_inputs(_target_cfg(), str(market_copy))
    (market_copy / MARKET / "bounding_box_train").mkdir()
    with pytest.raises(DatasetError, match="train split .*Market-1501-v15.09.15/bounding_box_train. holds no image"):
        load_target_set(_target_cfg())


def test_unparsable_file_name_is_named(market_copy):
    first = sorted((market_copy / MARKET / "bounding_box_train").iterdir())[0]
    shutil.copy(first, first.parent / "holiday_photo.jpg")
    with pytest.raises(DatasetError, match=r"(?s)1 image file name.*<pid>_c<camera>.*holiday_photo\.jpg"):
        check_inputs(_target_cfg(), str(market_copy))


def test_corrupt_target_jpeg_stops_naming_it_or_is_skipped_with_warning(market_copy, caplog):
    files = sorted((market_copy / MARKET / "bounding_box_train").iterdir())
    files[3].write_bytes(files[3].read_bytes()[:200])  # truncated JPEG
    files[5].write_bytes(b"not an image at all")
    with pytest.raises(DatasetError, match=rf"(?s)2 unreadable.*{files[3].name}.*{files[5].name}.*SKIP_UNREADABLE_IMAGES"):
        load_target_set(_target_cfg())
    with caplog.at_level(logging.WARNING):
        target = load_target_set(_target_cfg(MMT__SKIP_UNREADABLE_IMAGES=True))
    assert len(target) == len(files) - 2
    assert str(files[3]) not in target.img_paths and str(files[0]) in target.img_paths
    assert files[5].name in caplog.text
    # A file that breaks after the start is named too (fast-reid's reader does not say which).
    files[0].write_bytes(b"broken later")
    with pytest.raises(OSError, match=f"cannot read target image .*{files[0].name}"):
        TargetImages([str(files[0])], [0])[0]


def test_nan_loss_names_the_term_and_iteration(tiny_data, tmp_path):
    from fastreid.engine.train_loop import HookBase

    from fastreid_mmt.engine import MMTTrainer
    from fastreid_mmt.engine.hooks import unwrap

    class PoisonTeacher(HookBase):
        """Makes mean_net2's classifier NaN before iteration 2: only net1's soft CE breaks."""

        def before_step(self):
            if self.trainer.iter == 2:
                dict(unwrap(self.trainer.model).mean_net2.named_parameters())["heads.weight"].data.fill_(float("nan"))

    paths = save_source_checkpoints(small_mmt_cfg(), tmp_path)
    cfg = _target_cfg(MMT__ITERS_PER_EPOCH=4, SOLVER__MAX_EPOCH=1, MMT__CLUSTER__NUM_CLUSTERS=12, SEED=0,
                      OUTPUT_DIR=str(tmp_path / "out"), MMT__INIT_WEIGHTS=paths)
    trainer = MMTTrainer(cfg)
    trainer.register_hooks([PoisonTeacher()])
    trainer.resume_or_load(resume=False)
    with pytest.raises(FloatingPointError, match=r"iteration 2 \(epoch 0\): loss_soft_ce = nan\.") as err:
        trainer.train()
    assert "loss_ce" not in str(err.value).split("\n")[0].replace("loss_soft_ce", "")


def test_model_weights_must_fit_the_configured_model(tmp_path):
    """fast-reid's loader would skip every key that does not fit, with a warning it also prints
    for a fitting checkpoint: a stage-I checkpoint under an MMT config would evaluate a random
    network."""
    cfg = small_mmt_cfg(OUTPUT_DIR=str(tmp_path / "out"))
    evaluate = argparse.Namespace(eval_only=True, resume=False)
    stage_one = save_source_checkpoints(cfg, tmp_path, seeds=(1,))[0]
    with pytest.raises(ValueError, match=r"MODEL.WEIGHTS: .*seed1.* does not match the configured architecture "
                                         r"\(.*an MMT checkpoint needs an MMT config.*\): missing: mean_net1\."):
        check_model_weights(_with_weights(cfg, stage_one), evaluate)
    with pytest.raises(FileNotFoundError, match="MODEL.WEIGHTS: checkpoint not found: .*nope.pth"):
        check_model_weights(_with_weights(cfg, str(tmp_path / "nope.pth")), evaluate)
    mmt = tmp_path / "mmt.pth"  # an MMT checkpoint whose classifiers have another size: it fits
    torch.save({"model": build_model(small_mmt_cfg(MODEL__HEADS__NUM_CLASSES=20)).state_dict()}, mmt)
    check_model_weights(_with_weights(cfg, str(mmt)), evaluate)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "last_checkpoint").write_text("model_0000.pth")  # --resume loads that one instead
    check_model_weights(_with_weights(cfg, stage_one), argparse.Namespace(eval_only=False, resume=True))
    with pytest.raises(ValueError, match="does not match"):  # ... but a fresh run trains from MODEL.WEIGHTS
        check_model_weights(_with_weights(cfg, stage_one), argparse.Namespace(eval_only=False, resume=False))


@pytest.mark.parametrize("overrides,message", [
    (dict(MMT__ITERS_PER_EPOCH=0), "MMT.ITERS_PER_EPOCH must be >= 1"),
    (dict(TEST__EVAL_PERIOD=0), "TEST.EVAL_PERIOD must be >= 1"),
    (dict(SOLVER__IMS_PER_BATCH=18), r"SOLVER.IMS_PER_BATCH \(18\) must be a multiple of DATALOADER.NUM_INSTANCE"),
    (dict(TEST__PRECISE_BN__ENABLED=True), "TEST.PRECISE_BN.ENABLED is not supported"),
])
def test_mmt_settings_it_cannot_run_with_are_named(overrides, message):
    with pytest.raises(ValueError, match=message):
        check_mmt_config(small_mmt_cfg(**overrides))


def _with_weights(cfg, path):
    cfg = cfg.clone()
    cfg.MODEL.WEIGHTS = path
    return cfg


def test_gpu_clustering_or_amp_without_cuda_warns_and_falls_back():
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: nothing falls back")  # the CPU CI machine runs it
    with pytest.warns(UserWarning, match="MMT.CLUSTER.DEVICE is 'cuda' but CUDA is not available"):
        cfg = build_cfg(f"{REPO}/configs/MMT/Base-MMT.yml", ["MMT.CLUSTER.DEVICE", "cuda"])
    assert cfg.MMT.CLUSTER.DEVICE == "cpu" and cfg.MODEL.DEVICE == "cpu"
    with pytest.raises(ValueError, match="MMT.CLUSTER.DEVICE must be one of"):
        build_cfg(f"{REPO}/configs/MMT/Base-MMT.yml", ["MMT.CLUSTER.DEVICE", "gpu0"])
    # AMP without CUDA: see tests/test_compat.py::test_amp_without_cuda__patched_warns_and_trains_in_fp32


@pytest.mark.slow
def test_cli_bad_input_exits_non_zero_and_leaves_the_output_folder_alone(tiny_data, tmp_path):
    out = tmp_path / "good_run"
    out.mkdir()
    (out / "config.yaml").write_text("results of a good run\n")
    proc = run_train_net(["--config-file", "configs/Demo/mmt.yml", "MMT.INIT_WEIGHTS",
                          str([str(tmp_path / "a.pth"), str(tmp_path / "b.pth")]), "OUTPUT_DIR", str(out)],
                         tiny_data, timeout=300, expect_ok=False)
    assert proc.returncode != 0
    assert "MMT.INIT_WEIGHTS: checkpoint not found" in proc.stderr and "a.pth" in proc.stderr
    assert sorted(p.name for p in out.iterdir()) == ["config.yaml"]
    assert (out / "config.yaml").read_text() == "results of a good run\n"


@pytest.mark.parametrize("args,message", [
    (["--eval-only"], "--eval-only needs MODEL.WEIGHTS"),
    (["--eval-only", "MODEL.WEIGHTS", "logs/nope/model_final.pth"],
     "MODEL.WEIGHTS: checkpoint not found: logs/nope/model_final.pth"),
    (["MODEL.BACKBONE.DEPTH", "34x", "MODEL.BACKBONE.FEAT_DIM", "2048"],
     "MODEL.BACKBONE.FEAT_DIM is 2048 but build_resnet_backbone (DEPTH 34x, WITH_IBN False) produces 512-channel "
     "features: set MODEL.BACKBONE.FEAT_DIM 512"),
])
@pytest.mark.slow
def test_cli_eval_without_weights_and_wrong_feat_dim_fail_before_anything_is_built(tiny_data, tmp_path, args,
                                                                                     message):
    out = tmp_path / "good_run"
    out.mkdir()
    (out / "config.yaml").write_text("results of a good run\n")
    proc = run_train_net(["--config-file", "configs/Demo/mmt.yml", *args, "OUTPUT_DIR", str(out)], tiny_data,
                         timeout=300, expect_ok=False)
    assert proc.returncode != 0
    assert message in proc.stderr, proc.stderr[-2000:]
    assert "Rank-1" not in proc.stdout + proc.stderr  # nothing evaluated
    assert sorted(p.name for p in out.iterdir()) == ["config.yaml"]
    assert (out / "config.yaml").read_text() == "results of a good run\n"
