"""MSMT17 as the MMT reference trains on it: the ``train`` and ``val`` lists together.

fast-reid's ``MSMT17`` trains on ``list_train.txt`` only (30,248 images of MSMT17). The MMT
reference (``mmt/datasets/msmt17.py``) appends ``list_val.txt`` (2,373 images of the same
1,041 identities, also in the training folder): 32,621 target training images. fast-reid's
own ``combineall`` is no substitute: it adds val and then merges query and gallery (the test
set) into training.

Both releases are read, with fast-reid's folder rules (``MSMT17_V1`` first when both exist)::

    $FASTREID_DATASETS/MSMT17_V1/{train,test}/<pid>/<image>.jpg + list_{train,val,query,gallery}.txt
    $FASTREID_DATASETS/MSMT17_V2/{mask_train_v2,mask_test_v2}/<pid>/<image>.jpg + the same lists

Query and gallery are fast-reid's, unchanged.
"""

import os

from fastreid.data.datasets import DATASET_REGISTRY
from fastreid.data.datasets.msmt17 import MSMT17, TEST_DIR_KEY, TRAIN_DIR_KEY, VERSION_DICT

# The name of the data set in DATASETS.NAMES / DATASETS.TESTS / PRETRAIN.TARGET_BN_DATASETS.
TRAIN_VAL_NAME = "MSMT17TrainVal"
# The four image lists every MSMT17 release ships next to its two image folders.
LIST_FILES = ("list_train.txt", "list_val.txt", "list_query.txt", "list_gallery.txt")


def find_release(root):
    """The MSMT17 release folder under ``root`` that fast-reid's class reads, with its two
    image folders and four lists checked first.

    Args:
        root (str): the dataset root (``FASTREID_DATASETS``).

    Returns:
        str: ``root/MSMT17_V1`` or ``root/MSMT17_V2``.

    Raises:
        RuntimeError: no release folder, or one with a folder or list missing (named).
    """
    for version, dirs in VERSION_DICT.items():
        base = os.path.join(root, version)
        if not os.path.isdir(base):
            continue
        needed = [os.path.join(base, dirs[TRAIN_DIR_KEY]), os.path.join(base, dirs[TEST_DIR_KEY])]
        needed += [os.path.join(base, name) for name in LIST_FILES]
        missing = [path for path in needed if not os.path.exists(path)]
        if missing:
            raise RuntimeError(f"MSMT17 release {base!r} lacks {', '.join(repr(p) for p in missing)}")
        return base
    raise RuntimeError(f"no MSMT17 release under {root!r}: expected {' or '.join(VERSION_DICT)} there")


@DATASET_REGISTRY.register()
class MSMT17TrainVal(MSMT17):
    """fast-reid's ``MSMT17`` whose training split is ``list_train.txt`` + ``list_val.txt``
    (the MMT reference's target training set); query and gallery are unchanged.

    Args:
        root (str): the dataset root holding ``MSMT17_V1`` or ``MSMT17_V2``.
        **kwargs: fast-reid's dataset options; ``combineall`` is refused (it would train on
            the query and gallery images).

    Raises:
        ValueError: ``combineall`` requested.
        RuntimeError: a folder or list is missing (named).
    """

    def __init__(self, root="datasets", **kwargs):
        if kwargs.pop("combineall", False):
            raise ValueError(f"{TRAIN_VAL_NAME} already trains on train + val; DATASETS.COMBINEALL would add the "
                             f"query and gallery (test) images to training: turn it off")
        find_release(root)
        super().__init__(root=root, **kwargs)
        # fast-reid's MSMT17 gives val ids the same "msmt17_<pid>" keys as train ids.
        self._train = self._train + self.process_dir(self.train_dir, self.list_val_path)
