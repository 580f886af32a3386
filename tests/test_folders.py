"""A user's own images: unlabelled and labelled folders, camera rules, and their input checks."""

import os

import pytest
from PIL import Image

from fastreid_mmt.data import load_target_set
from fastreid_mmt.data.checks import DatasetError
from fastreid_mmt.data.folders import (list_images, parse_camera_rule, read_labelled_folder, read_test_folder,
                                       read_unlabelled_folder, unlabelled_items)
from fastreid_mmt.data.preflight import check_inputs
from fastreid_mmt.engine import MMTTrainer
from fastreid_mmt.engine.eval_sets import TEST_FOLDER_NAME

from .conftest import small_mmt_cfg


def _image(path, value=0):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.new("RGB", (8, 16), (value, 0, 0)).save(path)


def _folder(root, rel_paths):
    for i, rel in enumerate(rel_paths):
        _image(os.path.join(root, rel), i % 256)
    return str(root)


def test_every_image_recursively_in_any_case_sorted_others_skipped(tmp_path, caplog):
    root = _folder(tmp_path, ["b/z.JPG", "a.png", "b/c/d.jpeg", "e.BMP", "f.Jpg"])
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "b" / "labels.csv").write_text("x")
    with caplog.at_level("INFO"):
        assert list_images(root, "KEY") == ["a.png", "b/c/d.jpeg", "b/z.JPG", "e.BMP", "f.Jpg"]
    assert "2 file(s)" in caplog.text and "skipped" in caplog.text


def test_missing_or_empty_folder_is_named(tmp_path):
    with pytest.raises(DatasetError, match=r"MMT.TARGET_FOLDER: '.*nowhere' is not a folder \(it does not exist\)"):
        read_unlabelled_folder(str(tmp_path / "nowhere"), "none", "MMT.TARGET_FOLDER")
    (tmp_path / "readme.txt").write_text("x")
    with pytest.raises(DatasetError, match=r"holds no image .*1 other file\(s\) skipped"):
        read_unlabelled_folder(str(tmp_path), "none", "MMT.TARGET_FOLDER")


def test_camera_rules(tmp_path):
    root = _folder(tmp_path, ["cam2/x.jpg", "cam10/y.jpg", "cam2/sub/z.jpg"])
    assert read_unlabelled_folder(root, "none", "K").cameras == ["0", "0", "0"]
    items = read_unlabelled_folder(root, "subfolder", "K")
    assert items.cameras == ["cam10", "cam2", "cam2"]
    assert [cam for _, _, cam in unlabelled_items(items)] == [1, 0, 0]  # digits by value: cam2 before cam10
    regex = read_unlabelled_folder(root, r"cam(\d+)", "K")
    assert regex.cameras == ["10", "2", "2"]
    assert [cam for _, _, cam in unlabelled_items(regex)] == [1, 0, 0]  # numbers by value: 2 before 10


def test_bad_camera_rules_are_named(tmp_path):
    root = _folder(tmp_path, ["cam1/x.jpg", "loose.jpg", "other.jpg"])
    with pytest.raises(ValueError, match="exactly one group .* it has 0"):
        parse_camera_rule(r"cam\d", "MMT.TARGET_CAMERAS")
    with pytest.raises(ValueError, match="neither 'none', 'subfolder' nor a valid regular expression"):
        parse_camera_rule("cam(", "MMT.TARGET_CAMERAS")
    with pytest.raises(DatasetError, match=r"(?s)2 of 3 image\(s\) .* are not in a camera subfolder.*loose.jpg.*other.jpg"):
        read_unlabelled_folder(root, "subfolder", "MMT.TARGET_CAMERAS")
    with pytest.raises(DatasetError, match=r"(?s)camera rule '_c\(\\d\)' matches no file under .*e\.g\..*loose.jpg"):
        read_unlabelled_folder(root, r"_c(\d)", "MMT.TARGET_CAMERAS")


def test_labelled_folder_identities_and_errors(tmp_path):
    root = _folder(tmp_path / "src", ["7/c1_a.jpg", "7/c2_b.jpg", "12/c1_c.jpg"])
    items = read_labelled_folder(root, r"c(\d)_", "PRETRAIN.SOURCE_FOLDER")
    assert items.identities == ["12", "7", "7"] and items.cameras == ["1", "1", "2"]
    by_subfolder = read_labelled_folder(_folder(tmp_path / "sub", ["a/cam1/x.jpg", "a/cam2/y.jpg"]), "subfolder", "K")
    assert by_subfolder.cameras == ["cam1", "cam2"]  # the level under the identity folder
    (tmp_path / "src" / "empty_id").mkdir()
    with pytest.raises(DatasetError, match=r"(?s)1 identity folder\(s\) .* hold no image.*empty_id"):
        read_labelled_folder(root, "none", "PRETRAIN.SOURCE_FOLDER")
    os.rmdir(tmp_path / "src" / "empty_id")
    _image(str(tmp_path / "src" / "stray.jpg"))
    with pytest.raises(DatasetError, match=r"(?s)1 image\(s\) directly under .*one subfolder per identity.*stray.jpg"):
        read_labelled_folder(root, "none", "PRETRAIN.SOURCE_FOLDER")


def test_test_folder_numbers_ids_and_cameras_over_both_splits(tmp_path):
    root = _folder(tmp_path, ["query/5/c3_q.jpg", "gallery/5/c1_g.jpg", "gallery/9/c3_h.jpg"])
    query, gallery, has_cameras = read_test_folder(root, r"c(\d)_", "MMT.TEST_FOLDER")
    assert has_cameras
    assert [(pid, cam) for _, pid, cam in query] == [(0, 1)]
    assert [(pid, cam) for _, pid, cam in gallery] == [(0, 0), (1, 1)]
    query, gallery, has_cameras = read_test_folder(root, "none", "MMT.TEST_FOLDER")
    assert not has_cameras  # queries camera 0, gallery camera 1: nothing is filtered out
    assert {cam for _, _, cam in query} == {0} and {cam for _, _, cam in gallery} == {1}
    os.rename(tmp_path / "gallery", tmp_path / "gal")
    with pytest.raises(DatasetError, match="lacks its 'gallery' folder"):
        read_test_folder(root, "none", "MMT.TEST_FOLDER")


def _folder_cfg(target, **overrides):
    return small_mmt_cfg(DATASETS__NAMES=(), DATASETS__TESTS=(), MMT__TARGET_FOLDER=str(target), **overrides)


def test_test_folder_has_its_own_camera_rule_when_given(tmp_path, caplog):
    target = _folder(tmp_path / "crops", [f"cam{i % 2}/{i:03d}.png" for i in range(20)])
    test = _folder(tmp_path / "test", ["query/5/q_c3.jpg", "gallery/5/g_c1.jpg", "gallery/9/h_c3.jpg"])
    # One rule for both: the test folder has no camera subfolders, so it is named.
    with pytest.raises(DatasetError, match="MMT.TEST_FOLDER .query.: the camera rule 'subfolder"):
        check_inputs(_folder_cfg(target, MMT__TARGET_CAMERAS="subfolder", MMT__TEST_FOLDER=test), str(tmp_path))
    with pytest.raises(ValueError, match="MMT.TEST_CAMERAS: the regular expression"):
        check_inputs(_folder_cfg(target, MMT__TEST_FOLDER=test, MMT__TEST_CAMERAS=r"_c\d"), str(tmp_path))
    cfg = _folder_cfg(target, MMT__TARGET_CAMERAS="subfolder", MMT__TEST_FOLDER=test, MMT__TEST_CAMERAS=r"_c(\d)")
    check_inputs(cfg, str(tmp_path))
    assert sorted(set(load_target_set(cfg).camids)) == [0, 1]  # the target keeps its subfolder rule
    loader, num_query = MMTTrainer.build_test_loader(cfg, TEST_FOLDER_NAME)
    # c3, c1, c3 by MMT.TEST_CAMERAS
    assert num_query == 1 and [cam for _, _, cam in loader.dataset.img_items] == [1, 0, 1]
    # Without any camera rule the warning names the key that would set one.
    cfg = _folder_cfg(target, MMT__TEST_FOLDER=test, MMT__TEST_CAMERAS="none")
    with caplog.at_level("WARNING"):
        MMTTrainer.build_test_loader(cfg, TEST_FOLDER_NAME)
    assert "MMT.TEST_CAMERAS none" in caplog.text


def test_target_folder_checks_and_loads_without_ids(tmp_path):
    target = _folder(tmp_path / "crops", [f"cam{i % 2}/{i:03d}x.png" for i in range(20)])
    cfg = _folder_cfg(target, MMT__TARGET_CAMERAS="subfolder")
    check_inputs(cfg, str(tmp_path))
    loaded = load_target_set(cfg)
    assert len(loaded) == 20 and loaded.gt_pids is None and sorted(set(loaded.camids)) == [0, 1]
    with pytest.raises(DatasetError, match="MMT.TARGET_FOLDER: 20 image.*fewer than one batch.*= 32"):
        check_inputs(_folder_cfg(target, SOLVER__IMS_PER_BATCH=32), str(tmp_path))
    with pytest.raises(ValueError, match="ground_truth needs the target's true ids"):
        check_inputs(_folder_cfg(target, MMT__CLUSTER__METHOD="ground_truth"), str(tmp_path))
    with pytest.raises(DatasetError, match="DATASETS.NAMES is empty and MMT.TARGET_FOLDER is not set"):
        check_inputs(_folder_cfg(""), str(tmp_path))
    (tmp_path / "crops" / "cam0" / "broken.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    with pytest.raises(DatasetError, match=r"(?s)MMT.TARGET_FOLDER: 1 unreadable .*broken.jpg.*SKIP_UNREADABLE"):
        check_inputs(cfg, str(tmp_path))
    skipping = _folder_cfg(target, MMT__TARGET_CAMERAS="subfolder", MMT__SKIP_UNREADABLE_IMAGES=True)
    check_inputs(skipping, str(tmp_path))
    assert len(load_target_set(skipping)) == 20


def test_source_folder_needs_enough_identities(tmp_path):
    source = _folder(tmp_path / "src", [f"{i % 3}/{i}.jpg" for i in range(24)])
    cfg = small_mmt_cfg(MODEL__META_ARCHITECTURE="SourceBaseline", PRETRAIN__SOURCE_FOLDER=source)
    with pytest.raises(DatasetError, match="PRETRAIN.SOURCE_FOLDER: 3 identities, but a batch needs 4"):
        check_inputs(cfg, str(tmp_path))
