"""fast-reid's test path over the target's labelled test folder (``MMT.TEST_FOLDER``), or over
no test set at all (a user's own cameras often have none)."""

import logging

from fastreid.data.build import build_reid_test_loader
from fastreid.data.common import CommDataset
from fastreid.data.transforms import build_transforms
from fastreid.engine import hooks
from fastreid.utils.logger import log_first_n

from ..data.folders import read_test_folder
from ..data.preflight import camera_rule_of_test_folder

logger = logging.getLogger(__name__)

# Name of MMT.TEST_FOLDER among the evaluated sets (results "TestFolder/mAP" beside others).
TEST_FOLDER_NAME = "TestFolder"


def eval_set_names(cfg):
    """The evaluated sets: ``DATASETS.TESTS``, then ``TestFolder`` when ``MMT.TEST_FOLDER`` is set."""
    return tuple(cfg.DATASETS.TESTS) + ((TEST_FOLDER_NAME,) if cfg.MMT.TEST_FOLDER else ())


class PeriodicCheckpointer(hooks.PeriodicCheckpointer):
    """fast-reid's checkpoint hook, reading its metric's name from the evaluated sets
    (:func:`eval_set_names`): fast-reid's indexes ``DATASETS.TESTS[0]`` when the count is not
    one, which fails before the first step of a run without a test set, and names the wrong
    set when ``MMT.TEST_FOLDER`` is evaluated too."""

    def before_train(self):
        self.max_epoch = self.trainer.max_epoch
        names = eval_set_names(self.trainer.cfg)
        self.metric_name = "metric" if len(names) <= 1 else f"{names[0]}/metric"


class FolderTestMixin:
    """Trainer mixin (before ``DefaultTrainer`` in the bases): evaluates ``MMT.TEST_FOLDER``
    with fast-reid's own evaluator besides ``DATASETS.TESTS``, and evaluates nothing (no
    error) when neither is set."""

    def build_hooks(self):
        return [PeriodicCheckpointer(hook.checkpointer, hook.period) if type(hook) is hooks.PeriodicCheckpointer
                else hook for hook in super().build_hooks()]

    @classmethod
    def build_test_loader(cls, cfg, dataset_name):
        if dataset_name != TEST_FOLDER_NAME:
            return super().build_test_loader(cfg, dataset_name)
        rule, key = camera_rule_of_test_folder(cfg)
        query, gallery, has_cameras = read_test_folder(cfg.MMT.TEST_FOLDER, rule, "MMT.TEST_FOLDER")
        if not has_cameras:
            log_first_n(logging.WARNING,
                        f"MMT.TEST_FOLDER has no camera ids ({key} none): evaluation keeps every "
                        "gallery image, including those of the query's own camera, which the benchmarks' "
                        f"protocol drops; set {key} to a rule to drop them", name=__name__)
        test_set = CommDataset(query + gallery, build_transforms(cfg, is_train=False), relabel=False)
        return build_reid_test_loader(cfg, test_set=test_set, num_query=len(query))

    @classmethod
    def test(cls, cfg, model):
        names = eval_set_names(cfg)
        if not names:
            log_first_n(logging.INFO, "No target test set (DATASETS.TESTS empty, MMT.TEST_FOLDER unset): "
                        "training without evaluation", name=__name__)
            return {}
        if names != tuple(cfg.DATASETS.TESTS):
            cfg = cfg.clone()
            cfg.defrost()
            cfg.DATASETS.TESTS = names
        return super().test(cfg, model)
