"""A user's own images as data sets: an unlabelled folder of crops, or labelled folders with one
subfolder per identity (the layout annotation tools export). Pure functions: paths in, item
lists out (``(path, camera)`` or ``(path, identity, camera)``); nothing here trains.

Camera ids come from a rule (``MMT.TARGET_CAMERAS`` / ``PRETRAIN.SOURCE_CAMERAS``):

* ``none``: every image is camera 0;
* ``subfolder``: the first folder level names the camera; under the root for an unlabelled
  folder (``<root>/<camera>/...``), under the identity folder for a labelled one
  (``<root>/<identity>/<camera>/...``);
* a regular expression with one group, searched in the image path relative to the root (for
  a labelled folder: relative to its identity folder), e.g. ``c(\\d+)``: the group names the
  camera.
"""

import logging
import os
import re
from dataclasses import dataclass

from .checks import DatasetError

logger = logging.getLogger(__name__)

# Image files read from folders, compared case-insensitively.
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")
# Camera rules that are not regular expressions.
NO_CAMERAS, SUBFOLDER = "none", "subfolder"
# The two splits of a labelled test folder (MMT.TEST_FOLDER).
QUERY, GALLERY = "query", "gallery"
# How many offending files an error lists.
_SHOWN = 5


def _listing(paths):
    shown = "\n  ".join(paths[:_SHOWN])
    more = f"\n  (+{len(paths) - _SHOWN} more)" if len(paths) > _SHOWN else ""
    return f"\n  {shown}{more}"


def require_folder(root, key):
    """DatasetError naming ``key`` unless ``root`` is a folder."""
    if not os.path.isdir(root):
        raise DatasetError(f"{key}: {root!r} is not a folder" + (" (it is a file)" if os.path.exists(root) else
                                                                  " (it does not exist)"))


def list_images(root, key):
    """Every image file under ``root``, recursively, as sorted paths relative to ``root`` (with
    ``/`` separators). Other files are skipped, with one log line counting them.

    Args:
        root (str): the folder.
        key (str): the config key that named it (for messages).

    Raises:
        DatasetError: ``root`` is not a folder, or holds no image.
    """
    require_folder(root, key)
    images, skipped = [], 0
    for folder, dirs, files in os.walk(root, followlinks=True):
        dirs.sort()
        rel = os.path.relpath(folder, root)
        for name in files:
            if name.lower().endswith(IMAGE_EXTENSIONS):
                images.append(name if rel == "." else f"{rel}/{name}".replace(os.sep, "/"))
            else:
                skipped += 1
    if not images:
        raise DatasetError(f"{key}: {root!r} holds no image ({', '.join(IMAGE_EXTENSIONS)}, any case"
                           f"{f'; {skipped} other file(s) skipped' if skipped else ''})")
    if skipped:
        logger.info("%s: %d file(s) under %s are not images (%s) and were skipped", key, skipped, root,
                    ", ".join(IMAGE_EXTENSIONS))
    return sorted(images)


def parse_camera_rule(rule, key):
    """``none``, ``subfolder``, or a compiled regular expression with exactly one group.

    Raises:
        ValueError: an invalid expression, or one without exactly one group (naming ``key``).
    """
    if rule in (NO_CAMERAS, SUBFOLDER):
        return rule
    try:
        pattern = re.compile(rule)
    except re.error as err:
        raise ValueError(f"{key}: '{rule}' is neither 'none', 'subfolder' nor a valid regular expression "
                         f"({err})") from err
    if pattern.groups != 1:
        raise ValueError(f"{key}: the regular expression '{rule}' must have exactly one group (the camera "
                         f"name), it has {pattern.groups}; e.g. 'c(\\d+)'")
    return pattern


def camera_names(rel_paths, rule, key, root, full_paths=None):
    """The camera name of each path (relative to ``root``, or for a labelled folder to its
    identity folder) under ``rule``; ``full_paths`` are the paths errors name.

    Raises:
        DatasetError: the rule matches no file, or leaves files without a camera (a few named).
    """
    rule = parse_camera_rule(rule, key)
    if rule == NO_CAMERAS:
        return ["0"] * len(rel_paths)
    if rule == SUBFOLDER:
        names = [p.split("/")[0] if "/" in p else None for p in rel_paths]
        what = "are not in a camera subfolder (<camera>/<image>)"
    else:
        found = [rule.search(p) for p in rel_paths]
        names = [m.group(1) if m and m.group(1) else None for m in found]
        what = f"do not match the camera rule '{rule.pattern}'"
    full_paths = full_paths or [os.path.join(root, p) for p in rel_paths]
    missing = [full for full, name in zip(full_paths, names) if name is None]
    if len(missing) == len(rel_paths):
        rule_text = "subfolder' (no image is in a camera subfolder)" if rule == SUBFOLDER else f"{rule.pattern}'"
        raise DatasetError(f"{key}: the camera rule '{rule_text} matches no file under {root!r}, "
                           f"e.g.{_listing(missing)}")
    if missing:
        raise DatasetError(f"{key}: {len(missing)} of {len(rel_paths)} image(s) under {root!r} {what}; "
                           f"move or rename them, or use another rule:{_listing(missing)}")
    return names


def _camera_ids(names, mapping=None):
    mapping = mapping or {name: i for i, name in enumerate(sorted(set(names), key=_natural))}
    return [mapping[name] for name in names]


def _natural(name):
    """Sort key comparing runs of digits by value ("cam2" before "cam10")."""
    return [(0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", name)]


@dataclass
class FolderItems:
    """Images read from one folder: absolute ``paths``, ``camera`` names and (labelled folders)
    ``identities`` (the identity folder names), all in sorted path order."""

    paths: list
    cameras: list
    identities: list = None

    def __len__(self):
        return len(self.paths)


def read_unlabelled_folder(root, camera_rule, key):
    """Every image under ``root`` (any file names, any depth) with its camera name."""
    rel = list_images(root, key)
    return FolderItems([os.path.join(root, p) for p in rel], camera_names(rel, camera_rule, key, root))


def read_labelled_folder(root, camera_rule, key):
    """A folder with one subfolder per identity: ``<root>/<identity>/<image>`` (deeper levels
    allowed, e.g. ``<identity>/<camera>/<image>`` with the ``subfolder`` rule).

    Raises:
        DatasetError: images directly under ``root`` (not in an identity folder), an identity
            folder without image, or the camera errors of :func:`camera_names`.
    """
    rel = list_images(root, key)
    loose = [os.path.join(root, p) for p in rel if "/" not in p]
    if loose:
        raise DatasetError(f"{key}: {len(loose)} image(s) directly under {root!r}: a labelled folder holds one "
                           f"subfolder per identity (<identity>/<image>), move them into one:{_listing(loose)}")
    identities = [p.split("/", 1)[0] for p in rel]
    with_images = set(identities)
    empty = sorted(os.path.join(root, d) for d in os.listdir(root)
                   if os.path.isdir(os.path.join(root, d)) and d not in with_images)
    if empty:
        raise DatasetError(f"{key}: {len(empty)} identity folder(s) under {root!r} hold no image; remove them or "
                           f"add images:{_listing(empty)}")
    paths = [os.path.join(root, p) for p in rel]
    cameras = camera_names([p.split("/", 1)[1] for p in rel], camera_rule, key, root, paths)
    return FolderItems(paths, cameras, identities)


def unlabelled_items(items):
    """fast-reid ``(path, pid, camid)`` tuples of an unlabelled folder: pid 0 for every image
    (never read: the target is unlabelled), camid the camera index."""
    return [(path, 0, cam) for path, cam in zip(items.paths, _camera_ids(items.cameras))]


def labelled_train_items(items, prefix):
    """fast-reid training tuples ``(path, "<prefix>_<identity>", camid)``, as fast-reid's own
    classes name training ids (``CommDataset`` relabels them)."""
    return [(path, f"{prefix}_{ident}", cam)
            for path, ident, cam in zip(items.paths, items.identities, _camera_ids(items.cameras))]


def read_test_folder(root, camera_rule, key):
    """``<root>/query/<identity>/...`` and ``<root>/gallery/<identity>/...`` as fast-reid test
    tuples ``(path, pid, camid)``, identities and cameras numbered over both splits.

    Returns:
        tuple: ``(query, gallery, has_cameras)``. Without cameras (rule ``none``) every query
        gets camera 0 and every gallery image camera 1, so fast-reid's evaluator, which drops
        gallery images of the query's identity *and* camera, drops nothing.
    """
    require_folder(root, key)
    splits = {}
    for split in (QUERY, GALLERY):
        folder = os.path.join(root, split)
        if not os.path.isdir(folder):
            raise DatasetError(f"{key}: {root!r} lacks its {split!r} folder (expected {QUERY}/<identity>/<image> "
                               f"and {GALLERY}/<identity>/<image>)")
        splits[split] = read_labelled_folder(folder, camera_rule, f"{key} ({split})")
    query, gallery = splits[QUERY], splits[GALLERY]
    ids = {name: i for i, name in enumerate(sorted(set(query.identities + gallery.identities), key=_natural))}
    has_cameras = parse_camera_rule(camera_rule, key) != NO_CAMERAS
    if has_cameras:
        cams = {name: i for i, name in enumerate(sorted(set(query.cameras + gallery.cameras), key=_natural))}
        q_cams, g_cams = _camera_ids(query.cameras, cams), _camera_ids(gallery.cameras, cams)
    else:
        q_cams, g_cams = [0] * len(query), [1] * len(gallery)
    return ([(p, ids[i], c) for p, i, c in zip(query.paths, query.identities, q_cams)],
            [(p, ids[i], c) for p, i, c in zip(gallery.paths, gallery.identities, g_cams)], has_cameras)
