"""Query and gallery images from the command line: image files, a folder, or the query / gallery
split of a registered fast-reid data set. Pure functions: arguments in, an :class:`ImageSet` out.

A folder is *labelled* (one subfolder per identity, ``<root>/<identity>/<image>``, or
``<root>/<identity>/<camera>/<image>`` with the ``subfolder`` camera rule) or an unlabelled tree
(any depth, no identities); ``labelled="auto"`` takes it as labelled when every image lies
exactly at the labelled depth, none directly under the root.
"""

import logging
import os
from dataclasses import dataclass

from fastreid.data.datasets import DATASET_REGISTRY

from ..data.checks import build_dataset
from ..data.folders import NO_CAMERAS, SUBFOLDER, list_images, read_labelled_folder, read_unlabelled_folder

logger = logging.getLogger(__name__)

# Values of ``labelled``: detect, force labelled, force unlabelled.
AUTO, YES, NO = "auto", "yes", "no"
LABELLED_CHOICES = (AUTO, YES, NO)
# The splits of a fast-reid data set an image set can be.
QUERY, GALLERY = "query", "gallery"
# Folder levels of a labelled image path: <identity>/<image>.
LABELLED_DEPTH = 2
# How many registered data set names an error lists.
_NAMES_SHOWN = 12


@dataclass
class ImageSet:
    """Images to rank, in a fixed order.

    Attributes:
        paths (list[str]): image files.
        identities (list[str] | None): identity of each image (folder name or data set id, as
            text), or None when unknown.
        cameras (list[str] | None): camera name of each image, or None when unknown (a folder
            read with the camera rule ``none``).
        origin (str): what the images came from (for logs).
    """

    paths: list
    identities: list = None
    cameras: list = None
    origin: str = ""

    def __len__(self):
        return len(self.paths)


def first_per_camera(images, count):
    """The first ``count`` images (by path) of each camera, in path order: a choice of queries
    made without looking at any result. Without cameras, the first ``count`` images.

    Args:
        images (ImageSet): the candidates.
        count (int): images kept per camera (>= 1).
    """
    if count < 1:
        raise ValueError(f"--query-per-camera must be at least 1, got {count}")
    order = sorted(range(len(images)), key=lambda i: images.paths[i])
    cameras = images.cameras or ["0"] * len(images)
    taken, keep = {}, []
    for i in order:
        if taken.get(cameras[i], 0) < count:
            taken[cameras[i]] = taken.get(cameras[i], 0) + 1
            keep.append(i)

    def pick(values):
        return None if values is None else [values[i] for i in keep]

    return ImageSet(pick(images.paths), pick(images.identities), pick(images.cameras),
                    f"{images.origin}, first {count} per camera")


def registered_datasets():
    """Names of the data sets registered in fast-reid (its registry has no public listing)."""
    return sorted(getattr(DATASET_REGISTRY, "_obj_map", {}))


def is_dataset_name(spec):
    """True when ``spec`` is not an existing path but a data set registered in fast-reid."""
    return not os.path.exists(spec) and spec in registered_datasets()


def folder_is_labelled(root, camera_rule, key):
    """Whether ``root`` has the labelled layout: every image exactly ``LABELLED_DEPTH`` levels
    down (one more with the ``subfolder`` camera rule)."""
    depth = LABELLED_DEPTH + (1 if camera_rule == SUBFOLDER else 0)
    return all(len(rel.split("/")) == depth for rel in list_images(root, key))


def read_folder(root, labelled, camera_rule, key):
    """An :class:`ImageSet` of the images under ``root`` (see the module docstring)."""
    if labelled not in LABELLED_CHOICES:
        raise ValueError(f"{key}: labelled must be one of {LABELLED_CHOICES}, got {labelled!r}")
    is_labelled = labelled == YES or (labelled == AUTO and folder_is_labelled(root, camera_rule, key))
    if is_labelled:
        items = read_labelled_folder(root, camera_rule, key)
        logger.info("%s %s: labelled folder, %d images of %d identities%s", key, root, len(items),
                    len(set(items.identities)), " (detected; --labelled no reads it as unlabelled)"
                    if labelled == AUTO else "")
        return ImageSet(items.paths, items.identities, _known(items.cameras, camera_rule), f"labelled folder {root}")
    items = read_unlabelled_folder(root, camera_rule, key)
    logger.info("%s %s: unlabelled folder, %d images", key, root, len(items))
    return ImageSet(items.paths, None, _known(items.cameras, camera_rule), f"folder {root}")


def _known(cameras, camera_rule):
    return None if camera_rule == NO_CAMERAS else cameras


def read_dataset_split(name, split, root):
    """The ``split`` (``query`` or ``gallery``) of fast-reid's data set ``name`` under ``root``
    (``FASTREID_DATASETS``), sorted by path, with its ids and cameras."""
    data = build_dataset(name, root, require_train=False)
    items = sorted(getattr(data, split), key=lambda item: item[0])
    return ImageSet([item[0] for item in items], [str(item[1]) for item in items], [str(item[2]) for item in items],
                    f"{name} {split} split")


def read_image_files(paths, labelled, key):
    """Image files named one by one; with ``labelled="yes"`` each one's identity is the name of
    its folder. Raises FileNotFoundError naming a path that is not a file."""
    missing = [p for p in paths if not os.path.isfile(p)]
    if missing:
        raise FileNotFoundError(f"{key}: image not found: {', '.join(missing)}")
    identities = [os.path.basename(os.path.dirname(os.path.abspath(p))) for p in paths] if labelled == YES else None
    return ImageSet(list(paths), identities, None, f"{len(paths)} image file(s)")


def read_image_set(specs, split, labelled, camera_rule, dataset_root, key):
    """Resolve a ``--query`` / ``--gallery`` argument.

    Args:
        specs (Sequence[str]): one folder, one registered data set name (e.g. ``Market1501``),
            or image files.
        split (str): ``query`` or ``gallery``: the split taken from a data set.
        labelled (str): ``auto``, ``yes`` or ``no`` (see the module docstring).
        camera_rule (str): camera rule of a folder (``none``, ``subfolder`` or a regex; see
            :mod:`fastreid_mmt.data.folders`).
        dataset_root (str): where fast-reid's data sets are (``FASTREID_DATASETS``).
        key (str): the option that named it (for messages).

    Raises:
        ValueError: nothing given, an empty folder, or a folder that does not fit its layout.
        FileNotFoundError: a path that does not exist and is no registered data set.
    """
    specs = list(specs)
    if not specs:
        raise ValueError(f"{key}: give image files, a folder or a registered data set name")
    if len(specs) == 1 and os.path.isdir(specs[0]):
        return read_folder(specs[0], labelled, camera_rule, key)
    if len(specs) == 1 and is_dataset_name(specs[0]):
        return read_dataset_split(specs[0], split, dataset_root)
    folders = [s for s in specs if os.path.isdir(s)]
    if folders:
        raise ValueError(f"{key}: give either one folder or image files, not both: {', '.join(specs)}")
    unknown = [s for s in specs if not os.path.exists(s)]
    if len(specs) == 1 and unknown:
        names = registered_datasets()
        shown = ", ".join(names[:_NAMES_SHOWN]) + (", ..." if len(names) > _NAMES_SHOWN else "")
        raise FileNotFoundError(f"{key}: {specs[0]!r} is neither an image file, a folder nor a registered "
                                f"fast-reid data set ({shown})")
    return read_image_files(specs, labelled, key)
