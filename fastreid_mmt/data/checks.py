"""Checks of single inputs, used by the start-up check (:mod:`.preflight`) and by the loaders:
a registered data set built with errors that name its folder, and images decoded to find the
unreadable ones (:class:`CheckedImages` carries what was found from the one to the others).
``DatasetError`` is the error every bad input raises, naming the path and what to do."""

import hashlib
import logging
import os
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from PIL import Image

from fastreid.data.datasets import DATASET_REGISTRY
from fastreid.data.datasets.msmt17 import MSMT17

from .msmt17 import find_release

logger = logging.getLogger(__name__)

# File names fast-reid's Market1501 / DukeMTMC classes parse (``<pid>_c<camera>...jpg``; the
# regex they apply to the full image path). The synthetic data writes names that match it.
FILE_NAME_PATTERN = re.compile(r"([-\d]+)_c(\d)")
# Split folders of the Market-1501 / DukeMTMC-reID layouts: train, query, gallery.
SPLIT_FOLDERS = ("bounding_box_train", "query", "bounding_box_test")
# How many offending files an error lists.
_SHOWN = 10


class DatasetError(ValueError):
    """A dataset folder fast-reid cannot read; the message names the path and the fix."""


def _unparsable_files(root, dataset_dir):
    """Image files under the split folders of ``root/dataset_dir`` whose name fast-reid's
    file-name pattern does not match."""
    bad = []
    base = os.path.join(root, dataset_dir)
    for folder, _, files in os.walk(base):
        if os.path.basename(folder) not in SPLIT_FOLDERS:
            continue
        bad += [os.path.join(folder, f) for f in sorted(files)
                if f.endswith(".jpg") and not FILE_NAME_PATTERN.search(f)]
    return bad


def build_dataset(name, root, require_train=True):
    """Instantiate fast-reid's dataset class ``name`` on ``root``, turning its failures into a
    :class:`DatasetError` that names the folder or file.

    Args:
        name (str): a registered fast-reid dataset (``DATASETS.NAMES`` / ``DATASETS.TESTS``).
        root (str): the dataset root (``FASTREID_DATASETS``).
        require_train (bool): the training split must hold images (else query and gallery).
    """
    try:
        cls = DATASET_REGISTRY.get(name)
    except KeyError as err:
        raise DatasetError(f"dataset {name!r} is not registered in fast-reid: {err}") from err
    dataset_dir = getattr(cls, "dataset_dir", "") or ""
    try:
        if issubclass(cls, MSMT17):  # fast-reid's class would only assert "Dataset folder not found"
            find_release(root)
        data = cls(root=root)
    except (RuntimeError, FileNotFoundError) as err:  # a folder or list file is missing
        raise DatasetError(
            f"{name}: {err}. Place the data set under FASTREID_DATASETS={root!r} in its original "
            f"layout (see README 'Real data: the full recipe')") from err
    except (AttributeError, AssertionError, ValueError) as err:  # an image name fast-reid cannot parse
        bad = _unparsable_files(root, dataset_dir)
        if bad:
            listed = "\n  ".join(bad[:_SHOWN]) + (f"\n  (+{len(bad) - _SHOWN} more)" if len(bad) > _SHOWN else "")
            raise DatasetError(
                f"{name}: {len(bad)} image file name(s) do not follow the '<pid>_c<camera>...jpg' "
                f"convention fast-reid parses; rename or remove them:\n  {listed}") from err
        raise DatasetError(
            f"{name}: fast-reid could not read the data set under {os.path.join(root, dataset_dir)!r} "
            f"({type(err).__name__}: {err}); check that file names and id/camera ranges follow the "
            f"original data set's conventions") from err
    splits = {"train": data.train} if require_train else {"query": data.query, "gallery": data.gallery}
    for split, items in splits.items():
        if not items:
            folder = getattr(data, f"{split}_dir", os.path.join(root, dataset_dir))
            raise DatasetError(f"{name}: the {split} split {folder!r} holds no image (empty folder or wrong "
                               f"layout)")
    return data


# What the images of a set are, for messages: the target's (training or BN adaptation) or
# the labelled source folder's.
TARGET_ROLE, SOURCE_ROLE = "target", "source"


def decode_error(path):
    """None if PIL fully decodes ``path``, else the reason."""
    try:
        with Image.open(path) as img:
            img.load()
    except Exception as err:  # PIL raises OSError, SyntaxError, ValueError... for bad files
        return f"{type(err).__name__}: {err}"
    return None


def unreadable_images(paths, threads=None):
    """The files of ``paths`` that PIL cannot fully decode, as ``[(path, reason)]``, in order.
    Decoding runs on ``threads`` threads (default: the CPU count; PIL releases the GIL)."""
    threads = threads or os.cpu_count() or 1
    with ThreadPoolExecutor(max_workers=threads) as pool:
        reasons = list(pool.map(decode_error, paths, chunksize=256))
    return [(p, why) for p, why in zip(paths, reasons) if why is not None]


def paths_digest(paths):
    """Fingerprint of a list of image paths, in order (which list a check covered)."""
    digest = hashlib.sha256()
    for path in paths:
        digest.update(os.fsencode(path) + b"\0")
    return digest.hexdigest()


@dataclass
class CheckedImages:
    """The images decoded at start-up, handed to the loaders so that none is decoded twice.

    Attributes:
        sets (dict): for each checked list of paths, by :func:`paths_digest`: ``key`` (the config
            key that named it), ``images`` (how many) and ``unreadable`` (``{path: reason}``).
    """

    sets: dict = field(default_factory=dict)

    def check(self, paths, key):
        """Decode ``paths`` (named by config ``key``), remember the result and return the
        unreadable ones as ``[(path, reason)]``."""
        bad = unreadable_images(paths)
        self.sets[paths_digest(paths)] = {"key": key, "images": len(paths), "unreadable": dict(bad)}
        return bad

    def unreadable(self, paths):
        """``[(path, reason)]`` of the unreadable images of ``paths`` as the check found them, or
        None when it did not decode exactly this list."""
        found = self.sets.get(paths_digest(paths))
        return None if found is None else list(found["unreadable"].items())

    @property
    def num_images(self):
        return sum(entry["images"] for entry in self.sets.values())


def _listing(bad):
    lines = "\n  ".join(f"{p} ({why})" for p, why in bad[:_SHOWN])
    more = f"\n  (+{len(bad) - _SHOWN} more)" if len(bad) > _SHOWN else ""
    return lines + more


def unreadable_message(bad, role):
    """The error for the unreadable ``[(path, reason)]`` of a set of ``role`` images."""
    return (f"{len(bad)} unreadable or corrupt {role} image(s):\n  {_listing(bad)}\nRemove or replace them, "
            f"or set MMT.SKIP_UNREADABLE_IMAGES True to train without them")


def filter_unreadable(paths, skip, role=TARGET_ROLE, checked=None):
    """Indices of the readable images of ``paths``.

    Args:
        paths (list[str]): image files.
        skip (bool): leave unreadable files out with a warning naming each (``True``), or raise
            ``DatasetError`` naming them (``False``).
        role (str): what the images are, for messages (``TARGET_ROLE`` or ``SOURCE_ROLE``).
        checked (CheckedImages): the start-up check; when it decoded exactly ``paths``, its
            result is used and nothing is decoded here.
    """
    bad = checked.unreadable(paths) if checked is not None else None
    if bad is None:
        if checked is not None:
            logger.info("%d %s image(s) not covered by the start-up check: decoding them", len(paths), role)
        bad = unreadable_images(paths)
    if not bad:
        return list(range(len(paths)))
    if not skip:
        raise DatasetError(unreadable_message(bad, role))
    logger.warning("Leaving out %d unreadable %s image(s) (MMT.SKIP_UNREADABLE_IMAGES):\n  %s", len(bad), role,
                   _listing(bad))
    bad_paths = {p for p, _ in bad}
    return [i for i, p in enumerate(paths) if p not in bad_paths]
