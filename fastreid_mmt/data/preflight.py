"""Pre-flight check of every input a run reads, registered data sets and image folders alike,
before anything is written into ``OUTPUT_DIR``."""

from .checks import DatasetError, build_dataset, filter_unreadable
from .folders import parse_camera_rule, read_labelled_folder, read_test_folder, read_unlabelled_folder


def _check_images(paths, cfg, key):
    """Unreadable images of a folder stop the run here, unless ``MMT.SKIP_UNREADABLE_IMAGES``
    (they are then left out, with a warning, when the folder is loaded)."""
    if not cfg.MMT.SKIP_UNREADABLE_IMAGES:
        try:
            filter_unreadable(paths, skip=False)
        except DatasetError as err:
            raise DatasetError(f"{key}: {err}") from err


def _check_batch(num_images, cfg, key):
    if num_images < cfg.SOLVER.IMS_PER_BATCH:
        raise DatasetError(f"{key}: {num_images} image(s), fewer than one batch of SOLVER.IMS_PER_BATCH = "
                           f"{cfg.SOLVER.IMS_PER_BATCH}: add images or lower SOLVER.IMS_PER_BATCH")


def check_target_folder(cfg, folder, key):
    """An unlabelled folder: it exists, holds images with cameras by ``MMT.TARGET_CAMERAS``,
    at least one batch of them, all readable."""
    images = read_unlabelled_folder(folder, cfg.MMT.TARGET_CAMERAS, key)
    _check_batch(len(images), cfg, key)
    _check_images(images.paths, cfg, key)
    return images


def check_source_folder(cfg):
    """A labelled source folder: identity folders with images and cameras, enough identities
    for one P x K batch, all readable."""
    key = "PRETRAIN.SOURCE_FOLDER"
    images = read_labelled_folder(cfg.PRETRAIN.SOURCE_FOLDER, cfg.PRETRAIN.SOURCE_CAMERAS, key)
    _check_batch(len(images), cfg, key)
    num_ids, needed = len(set(images.identities)), cfg.SOLVER.IMS_PER_BATCH // cfg.DATALOADER.NUM_INSTANCE
    if num_ids < needed:
        raise DatasetError(f"{key}: {num_ids} identities, but a batch needs {needed} (SOLVER.IMS_PER_BATCH / "
                           f"DATALOADER.NUM_INSTANCE): add identities or lower SOLVER.IMS_PER_BATCH")
    _check_images(images.paths, cfg, key)


def camera_rule_of_test_folder(cfg):
    """``(rule, key)`` of ``MMT.TEST_FOLDER``'s cameras: ``MMT.TEST_CAMERAS``, or when it is
    empty ``MMT.TARGET_CAMERAS`` (one rule for the target's folders)."""
    if cfg.MMT.TEST_CAMERAS:
        return cfg.MMT.TEST_CAMERAS, "MMT.TEST_CAMERAS"
    return cfg.MMT.TARGET_CAMERAS, "MMT.TARGET_CAMERAS"


def check_inputs(cfg, root, eval_only=False):
    """Read every data set and folder a run of ``cfg`` uses once, so that a bad one fails
    before the run starts, naming the path, the key and the fix.

    Training sets: for ``MODEL.META_ARCHITECTURE MMT`` the target (``MMT.TARGET_FOLDER``,
    else ``DATASETS.NAMES``); otherwise the source (``PRETRAIN.SOURCE_FOLDER``, else
    ``DATASETS.NAMES``) and its BN-adaptation sets. Test sets: ``DATASETS.TESTS`` and
    ``MMT.TEST_FOLDER``.

    Args:
        cfg (CfgNode): the run's config.
        root (str): the registered data sets' root (``FASTREID_DATASETS``).
        eval_only (bool): only the test sets are read (``--eval-only``).

    Raises:
        DatasetError, ValueError: the first bad input found.
    """
    parse_camera_rule(cfg.MMT.TARGET_CAMERAS, "MMT.TARGET_CAMERAS")
    parse_camera_rule(cfg.PRETRAIN.SOURCE_CAMERAS, "PRETRAIN.SOURCE_CAMERAS")
    parse_camera_rule(*camera_rule_of_test_folder(cfg))
    if not eval_only:
        check_training_inputs(cfg, root)
    for name in cfg.DATASETS.TESTS:
        build_dataset(name, root, require_train=False)
    if cfg.MMT.TEST_FOLDER:
        read_test_folder(cfg.MMT.TEST_FOLDER, camera_rule_of_test_folder(cfg)[0], "MMT.TEST_FOLDER")


def check_training_inputs(cfg, root):
    """The training sets of :func:`check_inputs`."""
    mmt = cfg.MODEL.META_ARCHITECTURE == "MMT"
    folder = cfg.MMT.TARGET_FOLDER if mmt else cfg.PRETRAIN.SOURCE_FOLDER
    names = () if folder else tuple(cfg.DATASETS.NAMES)
    if not names and not folder:
        raise DatasetError("no training data: DATASETS.NAMES is empty and "
                           f"{'MMT.TARGET_FOLDER' if mmt else 'PRETRAIN.SOURCE_FOLDER'} is not set")
    for name in names:
        build_dataset(name, root, require_train=True)
    if mmt and folder:
        check_target_folder(cfg, folder, "MMT.TARGET_FOLDER")
        if cfg.MMT.CLUSTER.METHOD == "ground_truth":
            raise ValueError("MMT.CLUSTER.METHOD ground_truth needs the target's true ids, which "
                             "MMT.TARGET_FOLDER does not have: use kmeans or dbscan")
    elif folder:
        check_source_folder(cfg)
    if not mmt:
        for name in cfg.PRETRAIN.TARGET_BN_DATASETS:
            build_dataset(name, root, require_train=True)
        if cfg.PRETRAIN.TARGET_BN_FOLDER:
            check_target_folder(cfg, cfg.PRETRAIN.TARGET_BN_FOLDER, "PRETRAIN.TARGET_BN_FOLDER")
