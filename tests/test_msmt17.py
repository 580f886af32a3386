"""MSMT17 as the MMT reference trains on it: train + val, never query or gallery, for both
releases' folder layouts (tiny generated trees of real JPEG files)."""

import os

import pytest
from PIL import Image

from fastreid.data import build as fastreid_build
from fastreid.data.datasets import DATASET_REGISTRY

from fastreid_mmt.data import load_target_set
from fastreid_mmt.data.checks import DatasetError
from fastreid_mmt.data.preflight import check_inputs
from fastreid_mmt.data.msmt17 import TRAIN_VAL_NAME

from .conftest import small_mmt_cfg

# Image folders of each release (fast-reid's MSMT17 VERSION_DICT, written out independently).
RELEASES = {"MSMT17_V1": ("train", "test"), "MSMT17_V2": ("mask_train_v2", "mask_test_v2")}
# Tiny split sizes: (identities, images per identity) of each list.
SPLITS = {"list_train.txt": (3, 3), "list_val.txt": (3, 1), "list_query.txt": (2, 1), "list_gallery.txt": (2, 3)}


def write_msmt17(root, release):
    """A tiny MSMT17 release under ``root/release``: original file naming
    (``<pid>/<pid>_<index>_<camera>_<date>_<frame>_<n>.jpg``), lists ``"<relative path> <pid>"``.

    val repeats the train identities with other images (as the real lists do); query and
    gallery use the test folder with their own ids.

    Returns:
        dict[str, list[str]]: absolute image paths of each list.
    """
    train_dir, test_dir = RELEASES[release]
    paths = {}
    for offset, (list_name, (num_ids, per_id)) in enumerate(SPLITS.items()):
        folder = train_dir if list_name in ("list_train.txt", "list_val.txt") else test_dir
        lines, paths[list_name] = [], []
        for pid in range(num_ids):
            for k in range(per_id):
                rel = f"{pid:04d}/{pid:04d}_{offset * 10 + k:03d}_{k % 3 + 1:02d}_0303morning_{k:04d}_0.jpg"
                path = os.path.join(root, release, folder, rel)
                os.makedirs(os.path.dirname(path), exist_ok=True)
                Image.new("RGB", (4, 8), (40 * pid, 20 * k, 90)).save(path, "JPEG")
                lines.append(f"{rel} {pid}\n")
                paths[list_name].append(path)
        with open(os.path.join(root, release, list_name), "w") as handle:
            handle.writelines(lines)
    return paths


@pytest.mark.parametrize("release", sorted(RELEASES))
def test_train_val_is_the_target_set_and_holds_no_test_image(tmp_path, monkeypatch, release):
    paths = write_msmt17(str(tmp_path), release)
    monkeypatch.setattr(fastreid_build, "_root", str(tmp_path))
    cfg = small_mmt_cfg(DATASETS__NAMES=(TRAIN_VAL_NAME,), DATASETS__TESTS=(TRAIN_VAL_NAME,))
    check_inputs(cfg, str(tmp_path))

    target = load_target_set(cfg)
    train_val = paths["list_train.txt"] + paths["list_val.txt"]
    assert len(target) == len(train_val) == 12
    assert sorted(target.img_paths) == sorted(train_val)
    test_images = set(paths["list_query.txt"] + paths["list_gallery.txt"])
    assert not test_images & set(target.img_paths)
    assert len(set(target.gt_pids)) == 3  # val images belong to the train identities

    data = DATASET_REGISTRY.get(TRAIN_VAL_NAME)(root=str(tmp_path))
    assert sorted(p for p, _, _ in data.query + data.gallery) == sorted(test_images)
    # fast-reid's MSMT17 trains on list_train only; its combineall adds val AND the test images.
    plain = DATASET_REGISTRY.get("MSMT17")
    assert len(plain(root=str(tmp_path)).train) == 9
    assert len(test_images & {p for p, _, _ in plain(root=str(tmp_path), combineall=True).train}) == 8
    with pytest.raises(ValueError, match="COMBINEALL"):
        DATASET_REGISTRY.get(TRAIN_VAL_NAME)(root=str(tmp_path), combineall=True)


def test_missing_release_or_list_is_named(tmp_path):
    cfg = small_mmt_cfg(DATASETS__NAMES=(TRAIN_VAL_NAME,), DATASETS__TESTS=("MSMT17",))
    with pytest.raises(DatasetError, match="MSMT17_V1 or MSMT17_V2"):
        check_inputs(cfg, str(tmp_path))
    write_msmt17(str(tmp_path), "MSMT17_V2")
    os.remove(tmp_path / "MSMT17_V2" / "list_val.txt")
    with pytest.raises(DatasetError, match="list_val.txt"):
        check_inputs(cfg, str(tmp_path))


@pytest.mark.parametrize("config", ["MMT/msmt.yml", "MMT/msmt-dbscan.yml", "Pretrain/market-msmt.yml"])
def test_msmt17_configs_train_on_train_val(tmp_path, config):
    """The Market -> MSMT17 configs read train + val as target (and pass the start-up checks);
    only the Market source of the pre-training config is not written here."""
    from fastreid_mmt.engine.setup import build_cfg

    from .conftest import REPO

    cfg = build_cfg(os.path.join(REPO, "configs", config), ["MODEL.BACKBONE.PRETRAIN_PATH", "unused.pth"])
    targets = cfg.PRETRAIN.TARGET_BN_DATASETS if config.startswith("Pretrain") else cfg.DATASETS.NAMES
    assert list(targets) == [TRAIN_VAL_NAME] and list(cfg.DATASETS.TESTS) == ["MSMT17"]
    write_msmt17(str(tmp_path), "MSMT17_V1")
    cfg.defrost()
    # MSMT17 stands in for the Market source (a stage needs a training set).
    cfg.DATASETS.NAMES = tuple(n for n in cfg.DATASETS.NAMES if n != "Market1501") or (TRAIN_VAL_NAME,)
    check_inputs(cfg, str(tmp_path))
