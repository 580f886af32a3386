"""The start-up check of a run's inputs: every data set and folder a run reads is checked once,
on the main process, before anything is written into ``OUTPUT_DIR``; a bad one stops every
process with the same error, naming the path, the key and the fix.

The training images this plugin's loaders read (the target's, the source folder's, the BN
adaptation's) are decoded here, once. What was found (a :class:`~.checks.CheckedImages`) goes
to every process, and through ``OUTPUT_DIR/checked_images.json`` to the trainers' loaders,
which then decode none of those images again.
"""

import json
import logging
import os

from fastreid.utils import comm

from .checks import SOURCE_ROLE, TARGET_ROLE, CheckedImages, DatasetError, build_dataset, unreadable_message
from .folders import parse_camera_rule, read_test_folder
from .source import SOURCE_FOLDER_KEY, read_source_folder
from .target import TARGET_FOLDER_KEY, stage_two_target, target_items
from .target_bn import TARGET_BN_FOLDER_KEY

logger = logging.getLogger(__name__)

# The file in OUTPUT_DIR through which the check's result reaches the trainers' loaders.
CHECKED_IMAGES_FILE = "checked_images.json"
# The keys that name registered training sets, for messages.
NAMES_KEY, TARGET_BN_DATASETS_KEY = "DATASETS.NAMES", "PRETRAIN.TARGET_BN_DATASETS"


def _check_images(checked, paths, cfg, key, role):
    """Decode ``paths`` once; unreadable ones stop the run here, naming ``key``, unless
    ``MMT.SKIP_UNREADABLE_IMAGES`` (the loaders then leave them out, with a warning)."""
    bad = checked.check(paths, key)
    if bad and not cfg.MMT.SKIP_UNREADABLE_IMAGES:
        raise DatasetError(f"{key}: {unreadable_message(bad, role)}")


def _check_batch(num_images, cfg, key):
    if num_images < cfg.SOLVER.IMS_PER_BATCH:
        raise DatasetError(f"{key}: {num_images} image(s), fewer than one batch of SOLVER.IMS_PER_BATCH = "
                           f"{cfg.SOLVER.IMS_PER_BATCH}: add images or lower SOLVER.IMS_PER_BATCH")


def check_target_images(cfg, checked, root, names, folder, keys):
    """A target image set (stage II's, or the source stage's BN adaptation): the registered data
    sets ``names`` and the unlabelled ``folder`` exist, a folder holds at least one batch with
    cameras by ``MMT.TARGET_CAMERAS``, and every image is readable.

    Args:
        keys (tuple[str, str]): the config keys of ``names`` and ``folder`` (for messages).
    """
    names_key, folder_key = keys
    items = target_items(cfg, names, folder, folder_key, root)
    if folder:
        _check_batch(len(items), cfg, folder_key)
    _check_images(checked, [item[0] for item in items], cfg, folder_key if folder else names_key, TARGET_ROLE)


def check_source_folder(cfg, checked):
    """A labelled source folder: identity folders with images and cameras, enough identities
    for one P x K batch, all readable."""
    images = read_source_folder(cfg)
    _check_batch(len(images), cfg, SOURCE_FOLDER_KEY)
    num_ids, needed = len(set(images.identities)), cfg.SOLVER.IMS_PER_BATCH // cfg.DATALOADER.NUM_INSTANCE
    if num_ids < needed:
        raise DatasetError(f"{SOURCE_FOLDER_KEY}: {num_ids} identities, but a batch needs {needed} "
                           f"(SOLVER.IMS_PER_BATCH / DATALOADER.NUM_INSTANCE): add identities or lower "
                           f"SOLVER.IMS_PER_BATCH")
    _check_images(checked, images.paths, cfg, SOURCE_FOLDER_KEY, SOURCE_ROLE)


def camera_rule_of_test_folder(cfg):
    """``(rule, key)`` of ``MMT.TEST_FOLDER``'s cameras: ``MMT.TEST_CAMERAS``, or when it is
    empty ``MMT.TARGET_CAMERAS`` (one rule for the target's folders)."""
    if cfg.MMT.TEST_CAMERAS:
        return cfg.MMT.TEST_CAMERAS, "MMT.TEST_CAMERAS"
    return cfg.MMT.TARGET_CAMERAS, "MMT.TARGET_CAMERAS"


def check_inputs(cfg, root, eval_only=False):
    """Read every data set and folder a run of ``cfg`` uses once, and decode its training
    images once, so that a bad one fails before the run starts, naming the path, the key and
    the fix.

    Training sets: for ``MODEL.META_ARCHITECTURE MMT`` the target (``MMT.TARGET_FOLDER``,
    else ``DATASETS.NAMES``); otherwise the source (``PRETRAIN.SOURCE_FOLDER``, else
    ``DATASETS.NAMES``, whose images fast-reid's loader reads) and its BN-adaptation sets.
    Test sets: ``DATASETS.TESTS`` and ``MMT.TEST_FOLDER``.

    Args:
        cfg (CfgNode): the run's config.
        root (str): the registered data sets' root (``FASTREID_DATASETS``).
        eval_only (bool): only the test sets are read (``--eval-only``).

    Returns:
        CheckedImages: the decoded training images and the unreadable ones among them.

    Raises:
        DatasetError, ValueError: the first bad input found.
    """
    parse_camera_rule(cfg.MMT.TARGET_CAMERAS, "MMT.TARGET_CAMERAS")
    parse_camera_rule(cfg.PRETRAIN.SOURCE_CAMERAS, "PRETRAIN.SOURCE_CAMERAS")
    parse_camera_rule(*camera_rule_of_test_folder(cfg))
    checked = CheckedImages()
    if not eval_only:
        check_training_inputs(cfg, root, checked)
    for name in cfg.DATASETS.TESTS:
        build_dataset(name, root, require_train=False)
    if cfg.MMT.TEST_FOLDER:
        read_test_folder(cfg.MMT.TEST_FOLDER, camera_rule_of_test_folder(cfg)[0], "MMT.TEST_FOLDER")
    return checked


def check_training_inputs(cfg, root, checked):
    """The training sets of :func:`check_inputs`; decoded images are recorded in ``checked``."""
    mmt = cfg.MODEL.META_ARCHITECTURE == "MMT"
    if mmt:
        names, folder = stage_two_target(cfg)
    else:
        folder = cfg.PRETRAIN.SOURCE_FOLDER
        names = () if folder else tuple(cfg.DATASETS.NAMES)
    if not names and not folder:
        raise DatasetError("no training data: DATASETS.NAMES is empty and "
                           f"{TARGET_FOLDER_KEY if mmt else SOURCE_FOLDER_KEY} is not set")
    if mmt:
        if folder and cfg.MMT.CLUSTER.METHOD == "ground_truth":
            raise ValueError("MMT.CLUSTER.METHOD ground_truth needs the target's true ids, which "
                             "MMT.TARGET_FOLDER does not have: use kmeans or dbscan")
        check_target_images(cfg, checked, root, names, folder, (NAMES_KEY, TARGET_FOLDER_KEY))
        return
    for name in names:
        build_dataset(name, root, require_train=True)
    if folder:
        check_source_folder(cfg, checked)
    bn_names, bn_folder = tuple(cfg.PRETRAIN.TARGET_BN_DATASETS), cfg.PRETRAIN.TARGET_BN_FOLDER
    if bn_names or bn_folder:
        check_target_images(cfg, checked, root, bn_names, bn_folder, (TARGET_BN_DATASETS_KEY, TARGET_BN_FOLDER_KEY))


def check_inputs_on_main(cfg, root, eval_only=False):
    """:func:`check_inputs` on the main process only, so that each image is decoded once and
    not once per process; every process returns its result, or raises its error.

    Raises:
        DatasetError, ValueError: the first bad input found, on every process.
    """
    if comm.get_world_size() == 1:
        return check_inputs(cfg, root, eval_only)
    outcome = error = None
    if comm.is_main_process():
        try:
            outcome = check_inputs(cfg, root, eval_only)
        except Exception as err:  # the other processes wait for an outcome: send them the error
            error = err
    shared = comm.all_gather(outcome if error is None else error)[0]
    if error is not None:
        raise error
    if isinstance(shared, Exception):
        raise shared
    return shared


def share_checked_images(checked, output_dir):
    """Write ``checked`` into ``output_dir`` (main process; replaced whole, never half-written)
    for the trainers' loaders, and wait until every process can read it."""
    if output_dir and comm.is_main_process():
        path = os.path.join(output_dir, CHECKED_IMAGES_FILE)
        partial = f"{path}.tmp-{os.getpid()}"
        with open(partial, "w") as handle:
            json.dump({"sets": checked.sets}, handle)
        os.replace(partial, path)
    comm.synchronize()
    logger.info("Start-up check: %d training image(s) decoded once, on the main process; %d unreadable",
                checked.num_images, sum(len(entry["unreadable"]) for entry in checked.sets.values()))


def load_checked_images(output_dir):
    """The start-up check saved in ``output_dir`` by :func:`share_checked_images`, or None (no
    such file, or one that cannot be read: the loaders then decode the images themselves)."""
    path = os.path.join(output_dir, CHECKED_IMAGES_FILE) if output_dir else ""
    if not path or not os.path.isfile(path):
        return None
    try:
        with open(path) as handle:
            return CheckedImages(json.load(handle)["sets"])
    except (OSError, ValueError, KeyError, TypeError) as err:
        logger.warning("Cannot read the start-up check %s (%s): the images are decoded again", path, err)
        return None
