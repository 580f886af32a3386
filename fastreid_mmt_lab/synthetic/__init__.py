"""Procedural cross-domain person re-ID data in the Market-1501 / DukeMTMC-reID layouts.

This package draws small cartoon "persons" with PIL and writes them as JPEG files in
exactly the folder and file-name layouts of Market-1501 and DukeMTMC-reID, so that
fast-reid's own ``Market1501`` and ``DukeMTMC`` dataset classes read them unchanged.
It exists so that the MMT pipeline (pre-train on a source domain, adapt to an
unlabelled target domain) can be exercised end to end without the real data sets.

The data is NOT Market-1501 or DukeMTMC-reID: only the layouts are borrowed. Any
accuracy measured on it is a number about this synthetic data.

Generative factors:

* Identity: upper/lower clothing colours, upper-body pattern (solid, stripes, open
  jacket, logo, two-tone yoke), sleeve length, trousers/shorts/skirt, shoe colour,
  skin tone, hair colour and length, build (height, width, leg ratio, head size),
  accessories (hat, backpack, cross-body bag).
* Image: view (front, back, left, right), stride, arm swing, detection-box
  misalignment (scale, shift), occluders (pole, low obstacle, passer-by), per-image
  gain and sensor noise.
* Camera: viewpoint-like affine distortion (scale, aspect, shear, shift), gain,
  colour cast, vertical light fall-off, extra blur and its own background scene.
* Domain: colour-palette priors for clothing, a colour matrix, saturation, gamma and
  contrast, blur and down-sampling, noise level, JPEG quality, crop tightness, and
  the background style (indoor-like for ``duke``, outdoor-like for ``market``).

Everything is deterministic for a given seed: each image draws from its own random
generator keyed by ``(seed, domain, purpose, pid, index)``, so the output does not
depend on the order in which images are rendered.

Modules (each imports only from those listed before it):

* ``constants``: names, folders, default sizes and seeding keys of the layouts.
* ``styles``: appearance constants, :class:`DomainStyle` and the per-domain styles.
* ``scene``: identities, poses, cameras and their background panoramas.
* ``render``: drawing one image (person, placement, occluders, photometry).
* ``layout``: file names, planning the splits and writing the domain folders.

Example:
    >>> from fastreid_mmt_lab.synthetic import write_pair
    >>> counts = write_pair("datasets", source="duke", target="market")
"""

from __future__ import annotations

from .constants import (
    BACKGROUND_PID, DEFAULT_HEIGHT, DEFAULT_IMAGES_PER_ID, DEFAULT_NUM_IDS, DEFAULT_NUM_QUERY_IDS, DEFAULT_SEED,
    DEFAULT_SOURCE, DEFAULT_TARGET, DEFAULT_WIDTH, DOMAINS, DUKE, DUKE_FOLDER, GALLERY_DIR, MARKET, MARKET_FOLDER,
    MIN_HEIGHT, MIN_IMAGES_PER_ID, MIN_WIDTH, QUERY_DIR, SPLIT_DIRS, TRAIN_DIR)
from .as_folders import TEST_CAMERA_REGEX, write_folder_layouts
from .layout import domain_dir, write_domain, write_pair
from .styles import DOMAIN_STYLES, DomainStyle

# The public API; the drawing constants stay in their modules.
__all__ = [
    "write_pair", "write_domain", "write_folder_layouts", "TEST_CAMERA_REGEX", "domain_dir", "DomainStyle", "DOMAIN_STYLES",
    "MARKET", "DUKE", "DOMAINS", "MARKET_FOLDER", "DUKE_FOLDER", "TRAIN_DIR", "QUERY_DIR", "GALLERY_DIR",
    "SPLIT_DIRS", "BACKGROUND_PID", "DEFAULT_HEIGHT", "DEFAULT_WIDTH", "DEFAULT_NUM_IDS", "DEFAULT_IMAGES_PER_ID",
    "DEFAULT_NUM_QUERY_IDS", "DEFAULT_SEED", "DEFAULT_SOURCE", "DEFAULT_TARGET", "MIN_HEIGHT", "MIN_WIDTH",
    "MIN_IMAGES_PER_ID",
]
