"""The start-up check decodes each training image once, on the main process, and hands what it
found to the loaders, which decode none of them again; a bad image stops every process with
the same error (two real gloo processes)."""

import json
import logging
import os
import sys

import numpy as np
import pytest
from PIL import Image

from fastreid_mmt.data.checks import DatasetError
from fastreid_mmt.data.preflight import check_inputs, check_inputs_on_main, share_checked_images
from fastreid_mmt.data.source import build_source_folder_set
from fastreid_mmt.data.target import load_target_set
from fastreid_mmt.engine import MMTTrainer, SourceTrainer
from fastreid_mmt.engine.launch import launch

from .conftest import small_mmt_cfg

WORLD = 2
# Noise images do not compress: their files are about as large as their pixels, so the bytes a
# process reads while checking show whether it decoded them (/proc/<pid>/io, "rchar").
NOISE_SIZE = (64, 128)
NUM_IMAGES = 32
# Share of the images' bytes a process that decodes nothing may still read (the collective's traffic).
NOT_DECODING = 0.1


def _noise_folder(root, rel_paths, seed=0):
    rng = np.random.default_rng(seed)
    for rel in rel_paths:
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (*NOISE_SIZE[::-1], 3), dtype=np.uint8)).save(path)
    return str(root)


def _target_cfg(folder, out="", **overrides):
    return small_mmt_cfg(DATASETS__NAMES=(), DATASETS__TESTS=(), MMT__TARGET_FOLDER=str(folder),
                         MMT__TARGET_CAMERAS="subfolder", OUTPUT_DIR=str(out), **overrides)


def _source_cfg(source, bn_target, out, **overrides):
    return small_mmt_cfg(MODEL__META_ARCHITECTURE="SourceBaseline", DATASETS__NAMES=(), DATASETS__TESTS=(),
                         PRETRAIN__SOURCE_FOLDER=str(source), PRETRAIN__SOURCE_CAMERAS="none",
                         PRETRAIN__TARGET_BN_DATASETS=(), PRETRAIN__TARGET_BN_FOLDER=str(bn_target),
                         MMT__TARGET_CAMERAS="subfolder", OUTPUT_DIR=str(out), **overrides)


def _corrupt(path):
    with open(path, "wb") as handle:
        handle.write(b"broken after the start-up check")


def test_a_source_folders_unreadable_images_are_named_source_images(tmp_path, caplog):
    source = _noise_folder(tmp_path / "src", [f"{i % 4}/{i}.png" for i in range(20)])
    target = _noise_folder(tmp_path / "crops", [f"cam{i % 2}/{i}.png" for i in range(20)])
    _corrupt(tmp_path / "src" / "1" / "5.png")
    cfg = _source_cfg(source, target, tmp_path / "out")
    with pytest.raises(DatasetError, match=r"(?s)PRETRAIN.SOURCE_FOLDER: 1 unreadable or corrupt source image\(s\):"
                                           r".*5\.png.*SKIP_UNREADABLE_IMAGES"):
        check_inputs(cfg, str(tmp_path))
    with pytest.raises(DatasetError, match=r"^1 unreadable or corrupt source image\(s\)"):
        build_source_folder_set(cfg)  # used on its own, the loader decodes and says the same
    skipping = _source_cfg(source, target, tmp_path / "out", MMT__SKIP_UNREADABLE_IMAGES=True)
    with caplog.at_level(logging.WARNING):
        assert len(build_source_folder_set(skipping)) == 19
    assert "Leaving out 1 unreadable source image(s)" in caplog.text and "target image" not in caplog.text


def test_the_trainers_loaders_take_the_start_up_check_and_decode_nothing_again(tmp_path):
    """What ``setup`` does (check, then share through OUTPUT_DIR), then the trainers' loaders:
    an image broken after the check is still in their sets, so they did not decode it."""
    target = _noise_folder(tmp_path / "crops", [f"cam{i % 2}/{i:02d}.png" for i in range(20)])
    out = tmp_path / "mmt"
    cfg = _target_cfg(target, out)
    checked = check_inputs_on_main(cfg, str(tmp_path))
    out.mkdir()
    share_checked_images(checked, str(out))
    broken = os.path.join(target, "cam1", "07.png")
    _corrupt(broken)
    assert broken in MMTTrainer.build_train_loader(cfg).dataset.img_paths
    with pytest.raises(DatasetError, match=r"(?s)1 unreadable or corrupt target image.*07.png"):
        load_target_set(cfg)  # without the check's result the loader decodes, and finds it

    source = _noise_folder(tmp_path / "src", [f"{i % 4}/{i:02d}.png" for i in range(20)])
    out = tmp_path / "source"
    cfg = _source_cfg(source, target, out)
    _noise_folder(tmp_path / "crops", ["cam1/07.png"])  # repaired for this check
    checked = check_inputs_on_main(cfg, str(tmp_path))
    out.mkdir()
    share_checked_images(checked, str(out))
    _corrupt(broken)
    _corrupt(os.path.join(source, "2", "06.png"))
    loader = SourceTrainer.build_train_loader(cfg)
    assert os.path.join(source, "2", "06.png") in [item[0] for item in loader.dataset.img_items]
    assert broken in loader.target.dataset.img_paths  # the BN-adaptation images too


def _rchar():
    with open("/proc/self/io") as handle:
        return next(int(line.split()[1]) for line in handle if line.startswith("rchar:"))


def _check_on_ranks(folder, root, out_dir):
    """One rank: check the inputs (main process decodes, all receive); write what it saw."""
    from fastreid.utils import comm

    cfg = _target_cfg(folder)
    before = _rchar()
    try:
        outcome = {"sets": check_inputs_on_main(cfg, root).sets}
    except DatasetError as err:
        outcome = {"error": str(err)}
    outcome["read"] = _rchar() - before
    with open(os.path.join(out_dir, f"rank{comm.get_rank()}.json"), "w") as handle:
        json.dump(outcome, handle)


def _run_on_two_ranks(tmp_path, folder, name):
    out = tmp_path / name
    out.mkdir()
    launch(_check_on_ranks, WORLD, dist_url=f"file://{tmp_path / (name + '.init')}",
           args=(str(folder), str(tmp_path), str(out)))
    return [json.loads((out / f"rank{rank}.json").read_text()) for rank in range(WORLD)]


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/io")
def test_two_processes_decode_each_image_once_and_share_the_result_or_the_error(tmp_path):
    folder = _noise_folder(tmp_path / "crops", [f"cam{i % 2}/{i:02d}.png" for i in range(NUM_IMAGES)])
    image_bytes = sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(folder) for f in files)
    main, other = _run_on_two_ranks(tmp_path, folder, "good")
    assert main["sets"] == other["sets"] and list(main["sets"].values())[0]["images"] == NUM_IMAGES
    assert main["read"] >= image_bytes  # the main process decoded every image...
    assert other["read"] < NOT_DECODING * image_bytes, (other["read"], image_bytes)  # ... the other none

    _corrupt(os.path.join(folder, "cam0", "04.png"))
    main, other = _run_on_two_ranks(tmp_path, folder, "bad")
    assert main["error"] == other["error"]
    assert main["error"].startswith("MMT.TARGET_FOLDER: 1 unreadable or corrupt target image(s)")
    assert "04.png" in main["error"] and other["read"] < NOT_DECODING * image_bytes
