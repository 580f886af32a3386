"""A user's own cameras through the real command line: stage I on a labelled source folder, MMT
on an unlabelled folder target with no test set (killed and resumed), then --eval-only on a
labelled query/gallery folder, which equals fast-reid's own Market1501 evaluation of the same
images."""

import json
import re

import pytest

from fastreid_mmt_lab.synthetic import TEST_CAMERA_REGEX, write_folder_layouts

from .conftest import scratch_dir
from .preempt import run, run_ok

SMALL = ["SOLVER.IMS_PER_BATCH", "16", "TEST.IMS_PER_BATCH", "64", "DATALOADER.NUM_WORKERS", "0",
         "INPUT.SIZE_TRAIN", "[32, 16]", "INPUT.SIZE_TEST", "[32, 16]", "MODEL.DEVICE", "cpu",
         "MODEL.BACKBONE.DEPTH", "18x", "MODEL.BACKBONE.FEAT_DIM", "512", "MODEL.BACKBONE.PRETRAIN", "False"]
# configs/MMT/folder.yml as shipped (K estimated, structure switch on) on the 160 tiny target
# images, at a short schedule.
MMT_SMALL = ["MMT.ITERS_PER_EPOCH", "4", "SOLVER.MAX_EPOCH", "2", "SOLVER.CHECKPOINT_PERIOD", "1",
             "TEST.EVAL_PERIOD", "1", "SEED", "3"]
ESTIMATED = "estimated from the features (MMT.CLUSTER.NUM_CLUSTERS 0)"  # logged when K is chosen


def _map(log, name):
    """mAP of fast-reid's last result table for the test set ``name`` in a log."""
    rows = re.findall(rf"\| {name}\s*\| [\d.]+\s+\| [\d.]+\s+\| [\d.]+\s+\| ([\d.]+)", log)
    assert rows, log[-3000:]
    return float(rows[-1])


def _metrics(folder):
    return [json.loads(line) for line in (folder / "metrics.json").read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def folders(tiny_data, tmp_path_factory):
    with scratch_dir(tmp_path_factory, "own_data") as out:
        yield write_folder_layouts(tiny_data, str(out))


@pytest.fixture(scope="module")
def pretrained(tiny_data, folders, tmp_path_factory):
    """Stage I twice on the labelled source folder, BN adapted to the target folder."""
    with scratch_dir(tmp_path_factory, "own_pretrain") as out:
        paths = []
        for seed in (1, 2):
            folder = out / f"seed{seed}"
            log = run_ok(["--config-file", "configs/Pretrain/folder.yml", *SMALL,
                          "PRETRAIN.SOURCE_FOLDER", folders["source"], "PRETRAIN.SOURCE_CAMERAS", "subfolder",
                          "PRETRAIN.TARGET_BN_FOLDER", folders["target"], "MMT.TARGET_CAMERAS", "subfolder",
                          "SOLVER.MAX_EPOCH", "1", "PRETRAIN.ITERS_PER_EPOCH", "6", "PRETRAIN.WARMUP_EPOCHS", "0",
                          "SOLVER.STEPS", "[10]", "SOLVER.CHECKPOINT_PERIOD", "1", "TEST.EVAL_PERIOD", "1",
                          "SEED", str(seed), "OUTPUT_DIR", str(folder)], tiny_data)
            assert "Source folder" in log and "of 20 identities" in log, log[-3000:]
            assert "No target test set" in log
            paths.append(str(folder / "model_final.pth"))
        yield paths


@pytest.mark.slow
def test_folder_target_without_test_set_resumes_then_evaluates_like_market1501(tiny_data, folders, pretrained,
                                                                                 tmp_path):
    out = tmp_path / "mmt"
    args = ["--config-file", "configs/MMT/folder.yml", *SMALL, *MMT_SMALL, "MMT.TARGET_FOLDER", folders["target"],
            "MMT.TARGET_CAMERAS", "subfolder", "MMT.INIT_WEIGHTS", str(pretrained), "OUTPUT_DIR", str(out)]
    code, log = run(args, tiny_data, fault="kill@extracted:1")
    assert code != 0 and "SIGKILL" in log, log[-3000:]
    assert "MMT.TARGET_FOLDER" in log and "160 images, 6 camera(s)" in log
    assert log.count(ESTIMATED) == 1
    # folder.yml's structure switch: too little structure here, but the DBSCAN rule cannot fill a
    # batch on this small folder, so k-means with the estimated K trains.
    assert re.search(r"below MMT.CLUSTER.AUTO_K_MIN_SILHOUETTE = 0.17, but the DBSCAN rule found \d+ clusters, "
                     r"fewer than the 4 pseudo-ids a batch samples", log), log[-3000:]
    assert (out / "model_0000.pth").is_file() and not (out / "model_final.pth").exists()

    log = run_ok(["--resume", *args], tiny_data)
    assert "Starting training from epoch 1" in log and "No target test set" in log
    assert ESTIMATED not in log  # the K chosen before the kill comes back from the checkpoint
    assert (out / "model_final.pth").is_file()
    rows = _metrics(out)
    assert not any("mAP" in key for row in rows for key in row)  # nothing evaluated
    assert not any(key in row for row in rows for key in ("mmt/nmi", "mmt/ari"))  # no ids were read
    signals = {key: value for row in rows for key, value in row.items() if key.startswith("mmt/")}
    assert 0.0 <= signals["mmt/mean_net_nn_agreement"] <= 1.0
    assert 0.0 <= signals["mmt/label_nmi_previous"] <= 1.0  # epoch 0's labels read back after the resume
    assert "mmt/outlier_share" in signals and "mmt/cluster_size_p50" in signals

    weights = ["MODEL.WEIGHTS", str(out / "model_final.pth")]
    log = run_ok(["--eval-only", *args, *weights, "MMT.TEST_FOLDER", folders["target_test"],
                  "MMT.TARGET_CAMERAS", TEST_CAMERA_REGEX], tiny_data)
    folder_map = _map(log, "TestFolder")
    log = run_ok(["--eval-only", *args, *weights, "DATASETS.TESTS", '("Market1501",)'], tiny_data)
    assert abs(folder_map - _map(log, "Market1501")) <= 0.1

    log = run_ok(["--eval-only", *args, *weights, "MMT.TEST_FOLDER", folders["target_test"],
                  "MMT.TARGET_CAMERAS", "none"], tiny_data)
    assert "no camera ids" in log and "TestFolder" in log  # evaluated without the same-camera filter

    code, log = run(["--eval-only", *args, *weights], tiny_data)
    assert code != 0 and "--eval-only has nothing to evaluate" in log
