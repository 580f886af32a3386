"""The synthetic benchmark layouts re-laid as a user's own data (README "Your own data"): the
same JPEG files, copied into the folder layouts of ``fastreid_mmt.data.folders``.

* ``source/<pid>/cam<c>/<image>``: a labelled source folder (cameras: ``subfolder``);
* ``target/cam<c>/<random name>.jpg``: unlabelled target crops, random file names, no id
  anywhere in a path (cameras: ``subfolder``);
* ``target_test/{query,gallery}/<pid>/<original name>``: the target's labelled test folder;
  the original Market-style names keep the camera for a regex rule (``_c(\\d+)``). Gallery
  images of id -1 (junk, which fast-reid's classes drop too) are left out.
"""

from __future__ import annotations

import os
import random
import shutil
from typing import Dict

from .constants import DOMAINS, DUKE_FOLDER, FASTREID_PATH_PATTERN, GALLERY_DIR, MARKET_FOLDER, QUERY_DIR, TRAIN_DIR

_FOLDERS = {"market": MARKET_FOLDER, "duke": DUKE_FOLDER}
# Length of the random target file names (hex digits; never matching the id/camera pattern).
_NAME_DIGITS = 16
# Camera rule matching the original names kept in target_test.
TEST_CAMERA_REGEX = r"_c(\d+)"


def _parse(name):
    match = FASTREID_PATH_PATTERN.search(name)
    return int(match.group(1)), int(match.group(2))


def _copy(src, dst):
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    shutil.copyfile(src, dst)


def _random_name(rng):
    while True:
        name = "".join(rng.choice("abcdef0123456789") for _ in range(_NAME_DIGITS))
        if not FASTREID_PATH_PATTERN.search(name):
            return name + ".jpg"


def write_folder_layouts(data_root: str, out: str, source: str = "duke", target: str = "market",
                         seed: int = 0) -> Dict[str, str]:
    """Copy a written synthetic pair (``write_pair``) into the folder layouts.

    Args:
        data_root: the root the pair was written under.
        out: folder receiving ``source/``, ``target/`` and ``target_test/`` (replaced).
        source, target: domain keys.
        seed: seed of the random target file names.

    Returns:
        The three folders' paths, by name.
    """
    for domain in (source, target):
        if domain not in DOMAINS:
            raise ValueError(f"unknown domain {domain!r}; expected one of {DOMAINS}")
    rng = random.Random(seed)
    paths = {name: os.path.join(out, name) for name in ("source", "target", "target_test")}
    for path in paths.values():
        shutil.rmtree(path, ignore_errors=True)
    src_train = os.path.join(data_root, _FOLDERS[source], TRAIN_DIR)
    for name in sorted(os.listdir(src_train)):
        pid, cam = _parse(name)
        _copy(os.path.join(src_train, name), os.path.join(paths["source"], f"{pid:04d}", f"cam{cam}", name))
    tgt = os.path.join(data_root, _FOLDERS[target])
    for name in sorted(os.listdir(os.path.join(tgt, TRAIN_DIR))):
        _, cam = _parse(name)
        _copy(os.path.join(tgt, TRAIN_DIR, name), os.path.join(paths["target"], f"cam{cam}", _random_name(rng)))
    for split, folder in ((QUERY_DIR, "query"), (GALLERY_DIR, "gallery")):
        for name in sorted(os.listdir(os.path.join(tgt, split))):
            pid, _ = _parse(name)
            if pid >= 0:
                _copy(os.path.join(tgt, split, name), os.path.join(paths["target_test"], folder, f"{pid:04d}", name))
    return paths
