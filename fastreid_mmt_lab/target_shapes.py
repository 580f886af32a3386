"""Synthetic targets of a given shape (identities x crops per identity, even or uneven), for
measuring clustering without knowing the number of identities.

A shape is written as ``IDSxCROPS`` (every identity has CROPS training images) or
``IDSxLO-HI`` (each identity keeps a seeded number of images between LO and HI).
"""

import os
import random
import re
from dataclasses import dataclass

from . import synthetic

SHAPE = re.compile(r"^(\d+)x(\d+)(?:-(\d+))?$")
# Test identities of every shape (query / gallery): enough for a stable mAP, few to draw.
NUM_QUERY_IDS = 50
# Seed of the drawn identities: not the demo's, so a shape's people are new to the stage-I pair.
DATA_SEED = 11
# fast-reid's data-set class of each synthetic layout a target can be drawn in.
FASTREID_CLASS = {synthetic.DUKE: "DukeMTMC", synthetic.MARKET: "Market1501"}


@dataclass(frozen=True)
class Shape:
    """``num_ids`` identities with ``low``..``high`` training images each."""

    num_ids: int
    low: int
    high: int

    @property
    def name(self):
        return f"{self.num_ids}x{self.low}" + (f"-{self.high}" if self.high != self.low else "")


def parse_shape(text):
    """``"100x10"`` or ``"100x2-10"`` -> :class:`Shape`; ValueError naming the text otherwise."""
    match = SHAPE.match(text)
    if not match:
        raise ValueError(f"a target shape is IDSxCROPS or IDSxLO-HI (e.g. 100x10, 100x2-10), got {text!r}")
    ids, low, high = int(match.group(1)), int(match.group(2)), int(match.group(3) or match.group(2))
    if ids < 1 or low < 2 or high < low:
        raise ValueError(f"target shape {text!r}: needs at least 1 identity and 2 <= LO <= HI crops")
    return Shape(ids, low, high)


def write_target(root, shape, height, width, domain=synthetic.DUKE, seed=DATA_SEED):
    """Write ``shape`` as a data set in ``domain``'s layout (``"duke"`` or ``"market"``) under
    ``root`` (fast-reid's data-set root);
    uneven shapes are drawn with ``high`` images per identity, then each identity's training
    images are thinned to a seeded count in ``low..high``. Skipped when already complete.

    Returns:
        str: the training folder.
    """
    marker = os.path.join(root, f".shape_{shape.name}_{domain}_{height}x{width}_seed{seed}")
    train_dir = os.path.join(synthetic.domain_dir(root, domain), synthetic.TRAIN_DIR)
    if os.path.exists(marker):
        return train_dir
    synthetic.write_domain(root, domain, num_ids=shape.num_ids, images_per_id=shape.high,
                           num_query_ids=NUM_QUERY_IDS, height=height, width=width, seed=seed, overwrite=True)
    if shape.low != shape.high:
        rng = random.Random(seed)
        by_id = {}
        for name in sorted(os.listdir(train_dir)):
            by_id.setdefault(name.split("_")[0], []).append(name)
        for names in by_id.values():
            for name in rng.sample(names, len(names) - rng.randint(shape.low, shape.high)):
                os.remove(os.path.join(train_dir, name))
    open(marker, "w").close()
    return train_dir
