"""Procedural cross-domain person re-ID data in the Market-1501 / DukeMTMC-reID layouts.

This module draws small cartoon "persons" with PIL and writes them as JPEG files in
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

Example:
    >>> from fastreid_mmt.data.synthetic import write_pair
    >>> counts = write_pair("datasets", source="duke", target="market")
"""

from __future__ import annotations

import dataclasses
import math
import multiprocessing
import os
import re
import shutil
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

# ---------------------------------------------------------------------------
# Public constants
# ---------------------------------------------------------------------------

MARKET = "market"
DUKE = "duke"
DOMAINS = (MARKET, DUKE)

TRAIN_DIR = "bounding_box_train"
QUERY_DIR = "query"
GALLERY_DIR = "bounding_box_test"
SPLIT_DIRS = (TRAIN_DIR, QUERY_DIR, GALLERY_DIR)

MARKET_FOLDER = "Market-1501-v15.09.15"
DUKE_FOLDER = "DukeMTMC-reID"

DEFAULT_HEIGHT = 128
DEFAULT_WIDTH = 64
DEFAULT_NUM_IDS = 200
DEFAULT_IMAGES_PER_ID = 12
DEFAULT_NUM_QUERY_IDS = 100
DEFAULT_SEED = 0
DEFAULT_SOURCE = DUKE
DEFAULT_TARGET = MARKET

MIN_HEIGHT = 32
MIN_WIDTH = 16
MIN_IMAGES_PER_ID = 2
BACKGROUND_PID = 0

# fast-reid parses (pid, camid) with this regex applied to the full image path.
FASTREID_PATH_PATTERN = re.compile(r"([-\d]+)_c(\d)")

# ---------------------------------------------------------------------------
# Layout constants
# ---------------------------------------------------------------------------

MIN_CAMS_PER_ID = 2
MAX_CAMS_PER_ID = 4
MAX_QUERY_CAMS = 2
MARKET_NUM_SEQUENCES = 6
MARKET_MAX_BBOX_INDEX = 3
FRAME_START_MIN = 100
FRAME_START_MAX = 120000
FRAME_STEP_MIN = 5
FRAME_STEP_MAX = 60
BACKGROUND_FRAME_START = 200
BACKGROUND_FRAME_STEP = 97
BACKGROUND_BBOX_INDEX = 1
JPEG_EXTENSION = ".jpg"

# Seeding: stable integer codes (never Python's randomised ``hash``).
_DOMAIN_CODES = {MARKET: 1501, DUKE: 1404}
_PURPOSE_LAYOUT = 1
_PURPOSE_CAMERA = 2
_PURPOSE_IDENTITY = 3
_PURPOSE_PLAN = 4
_PURPOSE_IMAGE = 5
_PURPOSE_BACKGROUND = 6

# ---------------------------------------------------------------------------
# Appearance constants
# ---------------------------------------------------------------------------

SUPERSAMPLE = 2
UINT8_MAX = 255.0
RGB_CHANNELS = 3
ALPHA_CHANNEL = 3

CLOTHING_COLOURS: Dict[str, Tuple[int, int, int]] = {
    "black": (25, 25, 28),
    "charcoal": (60, 60, 66),
    "grey": (128, 128, 128),
    "white": (232, 232, 226),
    "navy": (30, 40, 92),
    "blue": (40, 90, 200),
    "light_blue": (130, 180, 230),
    "red": (190, 30, 35),
    "pink": (230, 140, 170),
    "yellow": (235, 205, 50),
    "green": (40, 140, 60),
    "olive": (108, 110, 50),
    "brown": (110, 70, 40),
    "beige": (210, 190, 150),
    "purple": (110, 50, 140),
    "orange": (235, 120, 30),
}
_COLOUR_NAMES = tuple(CLOTHING_COLOURS)
_COLOUR_TABLE = np.array([CLOTHING_COLOURS[n] for n in _COLOUR_NAMES], dtype=np.float32)

SKIN_TONES = ((250, 215, 190), (232, 190, 160), (200, 150, 115), (150, 100, 70), (95, 62, 45))
HAIR_COLOURS = ((20, 18, 18), (55, 35, 25), (105, 70, 40), (200, 170, 110), (150, 150, 150))
HAIR_COLOUR_PROBS = (0.45, 0.25, 0.15, 0.1, 0.05)
SHOE_COLOURS = ((20, 20, 20), (240, 240, 240), (90, 60, 40), (60, 60, 80), (180, 40, 40))
COLOUR_JITTER = 14.0
SKIN_JITTER = 8.0

UPPER_PATTERNS = ("solid", "hstripes", "vstripes", "jacket", "logo", "yoke")
UPPER_PATTERN_PROBS = (0.38, 0.14, 0.08, 0.16, 0.14, 0.10)
LOWER_STYLES = ("trousers", "shorts", "skirt")
STRIPES_MIN = 3
STRIPES_MAX = 6

# Body proportions, as fractions of the person's height P (or of head height).
PERSON_HEIGHT_RANGE = (0.80, 0.92)
BUILD_RANGE = (0.82, 1.22)
LEG_FRACTION_RANGE = (0.44, 0.52)
HEAD_SCALE_RANGE = (0.9, 1.1)
FEET_Y_FRACTION = 0.97
HEAD_HEIGHT = 0.13
HEAD_ASPECT = 0.78
NECK_LENGTH = 0.025
SHOULDER_HALF_WIDTH = 0.125
HIP_HALF_WIDTH = 0.095
SIDE_WIDTH_FACTOR = 0.6
ARM_WIDTH = 0.055
ARM_LENGTH = 0.36
LEG_WIDTH = 0.075
LEG_SPREAD = 0.045
SHORTS_FRACTION = 0.42
SHORT_SLEEVE_FRACTION = 0.4
SKIRT_FLARE = 1.5
SHOE_LENGTH = 1.35
SHOE_HEIGHT = 0.55
LONG_HAIR_LENGTH = 0.14
HAT_FRACTION = 0.42
HAT_BRIM = 0.35
BACKPACK_WIDTH = 0.72
BACKPACK_HEIGHT = 0.62
BACKPACK_DEPTH = 0.55
STRAP_WIDTH = 0.018
BAG_WIDTH = 0.11
BAG_HEIGHT = 0.09
BEHIND_SHADE = 0.78
JACKET_BAND = (0.38, 0.62)
JACKET_SIDE_BAND = 0.19
LOGO_SIZE = 0.32
LOGO_Y = 0.35
YOKE_FRACTION = 0.38
# Joint positions and small part sizes, as fractions of the part they attach to.
FOREARM_TAPER = 0.85
BARE_LEG_TAPER = 0.8
HIP_JOINT_OFFSET = 0.5
FRONT_STRIDE_FACTOR = 0.3
SHOE_TOE_SHIFT = 0.5
SHOULDER_JOINT_OFFSET = 0.92
HAND_OUTWARD = 0.3
HAND_RADIUS = 0.55
FRONT_SWING_FACTOR = 0.3
WAIST_OVERLAP = 0.3
LONG_HAIR_HALF_WIDTH = 0.55
LONG_HAIR_TOP = 0.5
BACKPACK_TOP = 0.025
CORNER_RADIUS = 0.3
STRAP_TOP_OFFSET = 0.55
STRAP_BOTTOM_OFFSET = 0.5
STRAP_LENGTH = 0.5
BAG_OUTSET = 0.3
BAG_STRAP_SHOULDER = 0.7
BAG_STRAP_SHADE = 0.7
NECK_HALF_WIDTH = 0.35
NECK_OVERLAP = 0.1
FACE_SIDE_SHIFT = 0.15
FACE_INSET = 0.12
HAIRLINE = 0.3
HAT_CROWN = 0.05
HAT_FRONT_BRIM = 0.3
HAT_BRIM_THICKNESS = 0.08

VIEWS = ("front", "back", "left", "right")
VIEW_PROBS = (0.35, 0.35, 0.15, 0.15)
MAX_STRIDE = 0.14
MAX_ARM_SWING = 0.35
BODY_X_JITTER = 0.04

# Per-image photometric jitter.
IMAGE_GAIN_JITTER = 0.08
OCCLUDER_TYPES = ("pole", "low", "passerby")
OCCLUDER_PROBS = (0.35, 0.35, 0.30)
POLE_WIDTH_RANGE = (0.08, 0.2)
LOW_OCCLUDER_TOP_RANGE = (0.68, 0.86)
PASSERBY_WIDTH_RANGE = (0.18, 0.34)
PASSERBY_TOP_RANGE = (0.05, 0.25)
PASSERBY_WAIST_RANGE = (0.45, 0.6)
LOW_OCCLUDER_SHIFT = 0.3
HALF = 0.5

# Camera geometry.
CAMERA_SCALE_JITTER = 0.06
CAMERA_ASPECT_JITTER = 0.06
CAMERA_SHEAR_MAX = 0.12
CAMERA_SHIFT_MAX = 0.05
CAMERA_SHADE_MAX = 0.18
CAMERA_BLUR_EXTRA_MAX = 0.35
PANORAMA_WIDTH_FACTOR = 4
PANORAMA_HEIGHT_MARGIN = 0.12

# Partial-person background images (Market pid 0).
PARTIAL_PERSON_PROB = 0.6
PARTIAL_SHIFT_RANGE = (0.45, 0.75)


@dataclasses.dataclass(frozen=True)
class DomainStyle:
    """Everything that makes one domain look systematically different from the other.

    Attributes:
        name: Domain key, ``"market"`` or ``"duke"``.
        folder: Data-set folder under the root, as fast-reid expects it.
        num_cams: Number of cameras (file names use ``c1`` .. ``c<num_cams>``).
        max_pid: Largest person id that may appear in a file name.
        background_kind: ``"indoor"`` or ``"outdoor"`` background scenes.
        upper_weights: Prior over :data:`CLOTHING_COLOURS` for upper clothing.
        lower_weights: Prior over :data:`CLOTHING_COLOURS` for lower clothing.
        lower_style_probs: Probabilities of trousers, shorts and skirt.
        long_sleeve_prob: Probability of long sleeves.
        hat_prob: Probability of a hat.
        backpack_prob: Probability of a backpack.
        bag_prob: Probability of a cross-body bag.
        long_hair_prob: Probability of long hair.
        colour_matrix: 3x3 RGB mixing matrix (the domain's colour cast).
        saturation: Saturation factor after the colour matrix.
        contrast: Contrast factor around mid grey.
        gamma: Gamma applied to the normalised image.
        blur_radius: Range of the Gaussian blur radius at the output size.
        downsample: Resolution factor of a down-then-up resampling (1 = none).
        noise_sigma: Standard deviation of the additive sensor noise (0..255 scale).
        jpeg_quality: JPEG quality used to save the images.
        crop_scale: Range of the detection-box scale (person size factor).
        crop_shift: Maximum detection-box shift, as a fraction of the image size.
        occlusion_prob: Probability that an image has an occluder.
        camera_gain: Range of the per-camera gain.
        camera_cast: Maximum per-channel camera colour cast (fraction).
        background_fraction: pid-0 background images per labelled gallery image.
        gallery_only_fraction: Gallery-only identities per query identity.
    """

    name: str
    folder: str
    num_cams: int
    max_pid: int
    background_kind: str
    upper_weights: Tuple[float, ...]
    lower_weights: Tuple[float, ...]
    lower_style_probs: Tuple[float, float, float]
    long_sleeve_prob: float
    hat_prob: float
    backpack_prob: float
    bag_prob: float
    long_hair_prob: float
    colour_matrix: Tuple[Tuple[float, float, float], ...]
    saturation: float
    contrast: float
    gamma: float
    blur_radius: Tuple[float, float]
    downsample: float
    noise_sigma: float
    jpeg_quality: int
    crop_scale: Tuple[float, float]
    crop_shift: float
    occlusion_prob: float
    camera_gain: Tuple[float, float]
    camera_cast: float
    background_fraction: float
    gallery_only_fraction: float


# Colour priors follow the order of CLOTHING_COLOURS:
# black charcoal grey white navy blue light_blue red pink yellow green olive brown beige purple orange
DOMAIN_STYLES: Dict[str, DomainStyle] = {
    # Winter-like clothing, sharp, warm indoor-like scenes, tight hand-drawn boxes.
    DUKE: DomainStyle(
        name=DUKE,
        folder=DUKE_FOLDER,
        num_cams=8,
        max_pid=7140,
        background_kind="indoor",
        upper_weights=(3.0, 2.0, 1.5, 1.0, 2.0, 1.0, 0.6, 1.0, 0.5, 0.5, 0.7, 1.0, 1.5, 1.0, 0.6, 0.5),
        lower_weights=(4.0, 2.0, 1.5, 0.4, 2.5, 2.0, 0.6, 0.3, 0.2, 0.2, 0.3, 0.8, 1.2, 1.0, 0.2, 0.1),
        lower_style_probs=(0.85, 0.07, 0.08),
        long_sleeve_prob=0.85,
        hat_prob=0.25,
        backpack_prob=0.4,
        bag_prob=0.2,
        long_hair_prob=0.3,
        colour_matrix=((1.06, 0.03, 0.0), (0.01, 1.0, 0.0), (0.0, 0.02, 0.88)),
        saturation=1.05,
        contrast=1.08,
        gamma=0.95,
        blur_radius=(0.0, 0.25),
        downsample=1.0,
        noise_sigma=2.0,
        jpeg_quality=95,
        crop_scale=(0.95, 1.05),
        crop_shift=0.03,
        occlusion_prob=0.2,
        camera_gain=(0.85, 1.15),
        camera_cast=0.05,
        background_fraction=0.0,
        gallery_only_fraction=0.2,
    ),
    # Summer-like clothing, cool, blurry, noisy outdoor-like scenes, loose detector boxes.
    MARKET: DomainStyle(
        name=MARKET,
        folder=MARKET_FOLDER,
        num_cams=6,
        max_pid=1501,
        background_kind="outdoor",
        upper_weights=(1.0, 0.6, 1.2, 2.5, 0.6, 1.5, 1.5, 1.5, 1.3, 1.3, 1.2, 0.5, 0.4, 0.8, 1.0, 1.0),
        lower_weights=(2.5, 0.8, 1.5, 1.0, 1.2, 2.0, 1.0, 0.3, 0.3, 0.3, 0.4, 0.8, 0.6, 1.5, 0.2, 0.2),
        lower_style_probs=(0.55, 0.3, 0.15),
        long_sleeve_prob=0.35,
        hat_prob=0.1,
        backpack_prob=0.35,
        bag_prob=0.25,
        long_hair_prob=0.35,
        colour_matrix=((0.86, 0.06, 0.04), (0.03, 0.97, 0.05), (0.02, 0.08, 1.12)),
        saturation=0.78,
        contrast=0.9,
        gamma=1.12,
        blur_radius=(0.6, 1.1),
        downsample=0.7,
        noise_sigma=6.5,
        jpeg_quality=72,
        crop_scale=(0.85, 1.1),
        crop_shift=0.08,
        occlusion_prob=0.3,
        camera_gain=(0.7, 1.2),
        camera_cast=0.09,
        background_fraction=0.1,
        gallery_only_fraction=0.0,
    ),
}

# Background palettes.
INDOOR_WALLS = ((214, 196, 168), (230, 220, 200), (190, 170, 150), (200, 190, 185), (175, 150, 120))
INDOOR_FLOORS = ((150, 110, 80), (120, 115, 110), (170, 150, 120), (95, 80, 70), (180, 175, 165))
INDOOR_PANELS = ((120, 80, 50), (160, 130, 95), (90, 90, 95), (210, 205, 190))
OUTDOOR_TOPS = ((196, 206, 214), (170, 168, 160), (150, 110, 90), (210, 205, 195))
OUTDOOR_GREENS = ((45, 90, 40), (90, 130, 60))
OUTDOOR_GROUNDS = ((130, 130, 128), (150, 95, 80), (165, 160, 150), (105, 105, 100))
OCCLUDER_COLOURS = ((80, 80, 85), (150, 150, 150), (60, 45, 35), (200, 200, 195), (40, 60, 90))
INDOOR_HORIZON_RANGE = (0.5, 0.78)
OUTDOOR_TOP_RANGE = (0.25, 0.45)
OUTDOOR_GREEN_RANGE = (0.12, 0.25)
INDOOR_PANEL_COUNT = (3, 8)
INDOOR_PANEL_WIDTH = (0.15, 0.5)
INDOOR_PANEL_TOP_RANGE = (0.05, 0.5)
INDOOR_TILE_LINE_SHADE = 0.8
INDOOR_TILE_ROW_EXPONENT = 1.6
INDOOR_VANISHING_X_RANGE = (0.3, 0.7)
INDOOR_TILE_CONVERGENCE = 0.35
INDOOR_LAMP_Y_RANGE = (0.0, 0.3)
INDOOR_LAMP_RADIUS_RANGE = (0.5, 1.2)
INDOOR_TILE_ROWS = (4, 8)
INDOOR_TILE_COLUMNS = (6, 14)
INDOOR_LAMP_GAIN = (0.1, 0.3)
OUTDOOR_WINDOW_ROWS = (2, 4)
OUTDOOR_WINDOW_COLUMNS = (6, 16)
OUTDOOR_TRUNK_COUNT = (1, 5)
OUTDOOR_BRICK_ROWS = (6, 12)
OUTDOOR_BRICK_COLUMNS = (10, 24)
TEXTURE_CELLS = (6, 24)
INDOOR_TEXTURE_AMPLITUDE = 0.05
OUTDOOR_TEXTURE_AMPLITUDE = 0.14
OUTDOOR_GRAIN_AMPLITUDE = 10.0
OUTDOOR_WINDOW_SHADE = 0.55
OUTDOOR_WINDOW_MARGIN = 0.2
OUTDOOR_WINDOW_SIZE = 0.5
OUTDOOR_MORTAR_SHADE = 0.75
OUTDOOR_RAGGEDNESS = 0.5
OUTDOOR_TRUNK_OVERHANG = 0.05
OUTDOOR_TRUNK_WIDTH = (0.04, 0.1)
OUTDOOR_TRUNK_COLOUR = (70, 50, 35)
LINE_WIDTH = 1
NOISE_CENTRE = 0.5


# ---------------------------------------------------------------------------
# Internal data structures
# ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Person:
    """Identity-defining attributes of one synthetic person."""

    upper: Tuple[int, int, int]
    pattern: str
    pattern_colour: Tuple[int, int, int]
    stripes: int
    long_sleeves: bool
    lower: Tuple[int, int, int]
    lower_style: str
    shoes: Tuple[int, int, int]
    skin: Tuple[int, int, int]
    hair: Tuple[int, int, int]
    long_hair: bool
    hat: Optional[Tuple[int, int, int]]
    backpack: Optional[Tuple[int, int, int]]
    bag: Optional[Tuple[int, int, int]]
    bag_side: int
    height_frac: float
    build: float
    leg_frac: float
    head_scale: float


@dataclasses.dataclass(frozen=True)
class _Pose:
    """Per-image pose of a person."""

    view: str
    stride: float
    swing: float
    x_offset: float


@dataclasses.dataclass(frozen=True)
class _Camera:
    """Per-camera geometry, photometry and background scene."""

    scale: float
    aspect: float
    shear: float
    shift: Tuple[float, float]
    gain: float
    cast: np.ndarray
    shade: float
    blur_extra: float
    panorama: np.ndarray


@dataclasses.dataclass(frozen=True)
class _Job:
    """One image to render and write."""

    split: str
    filename: str
    pid: int
    cam: int
    index: int


# ---------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------


def _rng(seed: int, domain: str, purpose: int, *keys: int) -> np.random.Generator:
    """Returns a generator keyed by seed, domain, purpose and extra integer keys."""
    return np.random.default_rng([seed, _DOMAIN_CODES[domain], purpose, *keys])


def _jitter_colour(rng: np.random.Generator, base: Sequence[float], sigma: float) -> Tuple[int, int, int]:
    """Adds Gaussian jitter to an RGB colour and clips it to 0..255."""
    value = np.clip(np.asarray(base, dtype=np.float64) + rng.normal(0.0, sigma, RGB_CHANNELS), 0, UINT8_MAX)
    return tuple(int(round(v)) for v in value)


def _pick_colour(rng: np.random.Generator, weights: Sequence[float], avoid: int = -1) -> int:
    """Picks a palette index from unnormalised weights, optionally avoiding one index."""
    probs = np.asarray(weights, dtype=np.float64).copy()
    if 0 <= avoid < len(probs):
        probs[avoid] = 0.0
    return int(rng.choice(len(probs), p=probs / probs.sum()))


def _shade(colour: Sequence[int], factor: float) -> Tuple[int, int, int]:
    """Scales a colour's brightness by ``factor``."""
    return tuple(int(min(UINT8_MAX, c * factor)) for c in colour)


def _lerp(a: Tuple[float, float], b: Tuple[float, float], t: float) -> Tuple[float, float]:
    """Linear interpolation between two 2-D points."""
    return (a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t)


def _smooth_noise(rng: np.random.Generator, height: int, width: int, cells: Tuple[int, int]) -> np.ndarray:
    """Low-frequency noise in [0, 1] made by bicubic up-sampling of a small random grid."""
    grid = (rng.random((cells[0], cells[1])) * UINT8_MAX).astype(np.uint8)
    up = Image.fromarray(grid, mode="L").resize((width, height), Image.BICUBIC)
    return np.asarray(up, dtype=np.float32) / UINT8_MAX


def _check_root(root: str) -> None:
    """Rejects roots whose (absolute) path would confuse fast-reid's (pid, camid) regex."""
    path = os.path.abspath(root)
    match = FASTREID_PATH_PATTERN.search(path)
    if match:
        raise ValueError(
            f"root {path!r} contains {match.group(0)!r}, which fast-reid's regex "
            f"`{FASTREID_PATH_PATTERN.pattern}` (applied to the full image path) would read as a "
            "(pid, camera) pair; choose a root path without '<digits>_c<digit>'"
        )


def domain_dir(root: str, domain: str) -> str:
    """Returns the data-set folder of ``domain`` under ``root``.

    Args:
        root: Data-set root, the ``root`` that fast-reid's dataset classes take.
        domain: ``"market"`` or ``"duke"``.

    Returns:
        ``<root>/Market-1501-v15.09.15`` or ``<root>/DukeMTMC-reID``.

    Raises:
        ValueError: If ``domain`` is unknown.
    """
    return os.path.join(root, _style(domain).folder)


def _style(domain: str) -> DomainStyle:
    """Looks up a domain's style, with a clear error for unknown names."""
    if domain not in DOMAIN_STYLES:
        raise ValueError(f"unknown domain {domain!r}; expected one of {DOMAINS}")
    return DOMAIN_STYLES[domain]


# ---------------------------------------------------------------------------
# Identities, poses and cameras
# ---------------------------------------------------------------------------


def _sample_person(rng: np.random.Generator, style: DomainStyle) -> _Person:
    """Samples identity attributes from the domain's priors."""
    upper_idx = _pick_colour(rng, style.upper_weights)
    lower_idx = _pick_colour(rng, style.lower_weights, avoid=upper_idx)
    pattern = str(rng.choice(UPPER_PATTERNS, p=UPPER_PATTERN_PROBS))
    pattern_idx = _pick_colour(rng, np.ones(len(_COLOUR_NAMES)), avoid=upper_idx)
    skin_t = rng.random() * (len(SKIN_TONES) - 1)
    low = int(math.floor(skin_t))
    high = min(low + 1, len(SKIN_TONES) - 1)
    frac = skin_t - low
    skin = (1 - frac) * np.asarray(SKIN_TONES[low]) + frac * np.asarray(SKIN_TONES[high])
    hair = HAIR_COLOURS[int(rng.choice(len(HAIR_COLOURS), p=HAIR_COLOUR_PROBS))]
    shoes = SHOE_COLOURS[int(rng.integers(len(SHOE_COLOURS)))]
    hat = _jitter_colour(rng, _COLOUR_TABLE[_pick_colour(rng, style.upper_weights)], COLOUR_JITTER)
    backpack = _jitter_colour(rng, _COLOUR_TABLE[_pick_colour(rng, style.lower_weights)], COLOUR_JITTER)
    bag = _jitter_colour(rng, _COLOUR_TABLE[_pick_colour(rng, style.upper_weights)], COLOUR_JITTER)
    return _Person(
        upper=_jitter_colour(rng, _COLOUR_TABLE[upper_idx], COLOUR_JITTER),
        pattern=pattern,
        pattern_colour=_jitter_colour(rng, _COLOUR_TABLE[pattern_idx], COLOUR_JITTER),
        stripes=int(rng.integers(STRIPES_MIN, STRIPES_MAX + 1)),
        long_sleeves=bool(rng.random() < style.long_sleeve_prob),
        lower=_jitter_colour(rng, _COLOUR_TABLE[lower_idx], COLOUR_JITTER),
        lower_style=str(rng.choice(LOWER_STYLES, p=style.lower_style_probs)),
        shoes=_jitter_colour(rng, shoes, COLOUR_JITTER),
        skin=_jitter_colour(rng, skin, SKIN_JITTER),
        hair=_jitter_colour(rng, hair, SKIN_JITTER),
        long_hair=bool(rng.random() < style.long_hair_prob),
        hat=hat if rng.random() < style.hat_prob else None,
        backpack=backpack if rng.random() < style.backpack_prob else None,
        bag=bag if rng.random() < style.bag_prob else None,
        bag_side=int(rng.choice((-1, 1))),
        height_frac=float(rng.uniform(*PERSON_HEIGHT_RANGE)),
        build=float(rng.uniform(*BUILD_RANGE)),
        leg_frac=float(rng.uniform(*LEG_FRACTION_RANGE)),
        head_scale=float(rng.uniform(*HEAD_SCALE_RANGE)),
    )


def _sample_pose(rng: np.random.Generator) -> _Pose:
    """Samples a per-image pose."""
    return _Pose(
        view=str(rng.choice(VIEWS, p=VIEW_PROBS)),
        stride=float(rng.uniform(0.0, MAX_STRIDE)),
        swing=float(rng.uniform(-MAX_ARM_SWING, MAX_ARM_SWING)),
        x_offset=float(rng.uniform(-BODY_X_JITTER, BODY_X_JITTER)),
    )


def _indoor_panorama(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Draws a warm indoor-like scene: walls with doors/panels, a tiled floor and a lamp."""
    wall = _jitter_colour(rng, INDOOR_WALLS[int(rng.integers(len(INDOOR_WALLS)))], COLOUR_JITTER)
    floor = _jitter_colour(rng, INDOOR_FLOORS[int(rng.integers(len(INDOOR_FLOORS)))], COLOUR_JITTER)
    horizon = int(rng.uniform(*INDOOR_HORIZON_RANGE) * height)
    img = Image.new("RGB", (width, height), wall)
    draw = ImageDraw.Draw(img)
    draw.rectangle((0, horizon, width, height), fill=floor)
    for _ in range(int(rng.integers(*INDOOR_PANEL_COUNT))):
        panel_w = rng.uniform(*INDOOR_PANEL_WIDTH) * height
        x0 = rng.uniform(0, width)
        top = rng.uniform(*INDOOR_PANEL_TOP_RANGE) * horizon
        colour = _jitter_colour(rng, INDOOR_PANELS[int(rng.integers(len(INDOOR_PANELS)))], COLOUR_JITTER)
        draw.rectangle((x0, top, x0 + panel_w, horizon), fill=colour)
    line = _shade(floor, INDOOR_TILE_LINE_SHADE)
    rows = int(rng.integers(*INDOOR_TILE_ROWS))
    for r in range(1, rows + 1):
        y = horizon + (height - horizon) * (r / rows) ** INDOOR_TILE_ROW_EXPONENT
        draw.line((0, y, width, y), fill=line, width=LINE_WIDTH)
    columns = int(rng.integers(*INDOOR_TILE_COLUMNS))
    vanish_x = rng.uniform(*INDOOR_VANISHING_X_RANGE) * width
    for c in range(columns + 1):
        x_bottom = width * c / columns
        x_top = vanish_x + (x_bottom - vanish_x) * INDOOR_TILE_CONVERGENCE
        draw.line((x_top, horizon, x_bottom, height), fill=line, width=LINE_WIDTH)
    arr = np.asarray(img, dtype=np.float32)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    lamp_x, lamp_y = rng.uniform(0, width), rng.uniform(*INDOOR_LAMP_Y_RANGE) * height
    radius = rng.uniform(*INDOOR_LAMP_RADIUS_RANGE) * height
    glow = 1.0 + rng.uniform(*INDOOR_LAMP_GAIN) * np.exp(-((xx - lamp_x) ** 2 + (yy - lamp_y) ** 2) / radius**2)
    texture = _smooth_noise(rng, height, width, (int(rng.integers(*TEXTURE_CELLS)),) * 2)
    arr *= (glow * (1.0 + INDOOR_TEXTURE_AMPLITUDE * (texture - NOISE_CENTRE)))[..., None]
    return arr


def _outdoor_panorama(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Draws an outdoor-like scene: a facade, greenery, tree trunks and brick pavement."""
    top_colour = _jitter_colour(rng, OUTDOOR_TOPS[int(rng.integers(len(OUTDOOR_TOPS)))], COLOUR_JITTER)
    ground = _jitter_colour(rng, OUTDOOR_GROUNDS[int(rng.integers(len(OUTDOOR_GROUNDS)))], COLOUR_JITTER)
    top_end = int(rng.uniform(*OUTDOOR_TOP_RANGE) * height)
    green_end = top_end + int(rng.uniform(*OUTDOOR_GREEN_RANGE) * height)
    img = Image.new("RGB", (width, height), top_colour)
    draw = ImageDraw.Draw(img)
    win_rows = int(rng.integers(*OUTDOOR_WINDOW_ROWS))
    win_cols = int(rng.integers(*OUTDOOR_WINDOW_COLUMNS))
    window = _shade(top_colour, OUTDOOR_WINDOW_SHADE)
    cell_w, cell_h = width / win_cols, top_end / win_rows
    for r in range(win_rows):
        for c in range(win_cols):
            x0 = (c + OUTDOOR_WINDOW_MARGIN) * cell_w
            y0 = (r + OUTDOOR_WINDOW_MARGIN) * cell_h
            draw.rectangle((x0, y0, x0 + OUTDOOR_WINDOW_SIZE * cell_w, y0 + OUTDOOR_WINDOW_SIZE * cell_h), fill=window)
    draw.rectangle((0, green_end, width, height), fill=ground)
    brick_rows = int(rng.integers(*OUTDOOR_BRICK_ROWS))
    brick_cols = int(rng.integers(*OUTDOOR_BRICK_COLUMNS))
    brick_w = width / brick_cols
    mortar = _shade(ground, OUTDOOR_MORTAR_SHADE)
    for r in range(brick_rows):
        y = green_end + (height - green_end) * r / brick_rows
        y1 = green_end + (height - green_end) * (r + 1) / brick_rows
        draw.line((0, y, width, y), fill=mortar, width=LINE_WIDTH)
        offset = (r % 2) * brick_w / 2  # running bond: every other row shifted by half a brick
        for c in range(brick_cols):
            x = offset + c * brick_w
            draw.line((x, y, x, y1), fill=mortar, width=LINE_WIDTH)
    arr = np.asarray(img, dtype=np.float32).copy()
    # Greenery: two greens mixed by smooth noise, with a ragged top edge.
    mix = _smooth_noise(rng, height, width, (int(rng.integers(*TEXTURE_CELLS)),) * 2)[..., None]
    greens = (1 - mix) * np.asarray(OUTDOOR_GREENS[0], np.float32) + mix * np.asarray(OUTDOOR_GREENS[1], np.float32)
    edge = _smooth_noise(rng, 1, width, (1, int(rng.integers(*TEXTURE_CELLS))))[0]
    ragged_top = (top_end - edge * OUTDOOR_RAGGEDNESS * top_end).astype(np.int64)
    rows = np.arange(height)[:, None]
    green_mask = (rows >= ragged_top[None, :]) & (rows < green_end)
    arr[green_mask] = greens[green_mask]
    trunk_bottom = green_end + int(OUTDOOR_TRUNK_OVERHANG * height)
    for _ in range(int(rng.integers(*OUTDOOR_TRUNK_COUNT))):
        x0 = int(rng.uniform(0, width))
        trunk_w = max(1, int(rng.uniform(*OUTDOOR_TRUNK_WIDTH) * height))
        arr[top_end:trunk_bottom, x0:x0 + trunk_w] = OUTDOOR_TRUNK_COLOUR
    texture = _smooth_noise(rng, height, width, (int(rng.integers(*TEXTURE_CELLS)),) * 2)
    arr *= (1.0 + OUTDOOR_TEXTURE_AMPLITUDE * (texture - NOISE_CENTRE))[..., None]
    arr += rng.normal(0.0, OUTDOOR_GRAIN_AMPLITUDE, arr.shape[:2])[..., None]
    return arr


def _make_camera(rng: np.random.Generator, style: DomainStyle, height: int, width: int) -> _Camera:
    """Samples one camera's parameters and renders its background panorama."""
    pano_h = int(round(height * (1 + PANORAMA_HEIGHT_MARGIN)))
    pano_w = width * PANORAMA_WIDTH_FACTOR
    if style.background_kind == "indoor":
        panorama = _indoor_panorama(rng, pano_h, pano_w)
    else:
        panorama = _outdoor_panorama(rng, pano_h, pano_w)
    return _Camera(
        scale=float(1.0 + rng.uniform(-CAMERA_SCALE_JITTER, CAMERA_SCALE_JITTER)),
        aspect=float(1.0 + rng.uniform(-CAMERA_ASPECT_JITTER, CAMERA_ASPECT_JITTER)),
        shear=float(rng.uniform(-CAMERA_SHEAR_MAX, CAMERA_SHEAR_MAX)),
        shift=(float(rng.uniform(-CAMERA_SHIFT_MAX, CAMERA_SHIFT_MAX)),
               float(rng.uniform(-CAMERA_SHIFT_MAX, CAMERA_SHIFT_MAX))),
        gain=float(rng.uniform(*style.camera_gain)),
        cast=(1.0 + rng.uniform(-style.camera_cast, style.camera_cast, RGB_CHANNELS)).astype(np.float32),
        shade=float(rng.uniform(-CAMERA_SHADE_MAX, CAMERA_SHADE_MAX)),
        blur_extra=float(rng.uniform(0.0, CAMERA_BLUR_EXTRA_MAX)),
        panorama=np.clip(panorama, 0, UINT8_MAX).astype(np.float32),
    )


# ---------------------------------------------------------------------------
# Rendering
# ---------------------------------------------------------------------------


def _draw_limb(draw: ImageDraw.ImageDraw, start: Tuple[float, float], end: Tuple[float, float], width: float,
               colour: Tuple[int, int, int], split: float = 1.0,
               lower_colour: Optional[Tuple[int, int, int]] = None) -> None:
    """Draws a limb as a thick line; the part beyond ``split`` uses ``lower_colour``."""
    joint = _lerp(start, end, split)
    draw.line((start, joint), fill=colour, width=max(1, int(round(width))))
    if split < 1.0 and lower_colour is not None:
        draw.line((joint, end), fill=lower_colour, width=max(1, int(round(width * FOREARM_TAPER))))


def _draw_torso_pattern(draw: ImageDraw.ImageDraw, person: _Person, view: str,
                        quad: Sequence[Tuple[float, float]], facing: int) -> None:
    """Draws the upper-clothing pattern clipped analytically to the torso trapezoid."""
    tl, tr, br, bl = quad
    colour = person.pattern_colour
    if person.pattern == "hstripes":
        n = person.stripes * 2
        for k in range(1, n, 2):
            t0, t1 = k / n, (k + 1) / n
            draw.polygon([_lerp(tl, bl, t0), _lerp(tr, br, t0), _lerp(tr, br, t1), _lerp(tl, bl, t1)], fill=colour)
    elif person.pattern == "vstripes":
        n = person.stripes * 2
        for k in range(1, n, 2):
            u0, u1 = k / n, (k + 1) / n
            draw.polygon([_lerp(tl, tr, u0), _lerp(tl, tr, u1), _lerp(bl, br, u1), _lerp(bl, br, u0)], fill=colour)
    elif person.pattern == "yoke":
        draw.polygon([tl, tr, _lerp(tr, br, YOKE_FRACTION), _lerp(tl, bl, YOKE_FRACTION)], fill=colour)
    elif person.pattern == "jacket" and view != "back":
        u0, u1 = JACKET_BAND
        if view in ("left", "right"):
            # The open front is seen at the edge the person faces.
            u0, u1 = (1 - JACKET_SIDE_BAND, 1.0) if facing > 0 else (0.0, JACKET_SIDE_BAND)
        draw.polygon([_lerp(tl, tr, u0), _lerp(tl, tr, u1), _lerp(bl, br, u1), _lerp(bl, br, u0)], fill=colour)
    elif person.pattern == "logo" and view == "front":
        cx = (tl[0] + tr[0]) / 2
        size = LOGO_SIZE * (tr[0] - tl[0]) / 2
        cy = tl[1] + (bl[1] - tl[1]) * LOGO_Y
        draw.rectangle((cx - size, cy - size, cx + size, cy + size), fill=colour)


def _draw_person(person: _Person, pose: _Pose, height: int, width: int) -> Image.Image:
    """Draws a person on a transparent supersampled RGBA canvas.

    All lengths are fractions of the person's height ``p`` (see the body-proportion
    constants), so the drawing scales with the requested image size.
    """
    canvas_h, canvas_w = height * SUPERSAMPLE, width * SUPERSAMPLE
    img = Image.new("RGBA", (canvas_w, canvas_h), (0, 0, 0, 0))
    draw = ImageDraw.Draw(img)
    p = person.height_frac * canvas_h
    feet_y = FEET_Y_FRACTION * canvas_h
    top = feet_y - p
    cx = canvas_w / 2 + pose.x_offset * canvas_w
    side = pose.view in ("left", "right")
    facing = 1 if pose.view == "right" else -1
    width_factor = SIDE_WIDTH_FACTOR if side else 1.0
    sh_half = SHOULDER_HALF_WIDTH * p * person.build * width_factor
    hip_half = HIP_HALF_WIDTH * p * person.build * width_factor
    head_h = HEAD_HEIGHT * p * person.head_scale
    head_w = head_h * HEAD_ASPECT
    y_neck = top + head_h
    y_sh = y_neck + NECK_LENGTH * p
    y_hip = top + (1 - person.leg_frac) * p
    torso_h = y_hip - y_sh
    arm_w = ARM_WIDTH * p * person.build
    leg_w = LEG_WIDTH * p * person.build
    arm_len = ARM_LENGTH * p
    strap = max(1, int(STRAP_WIDTH * p))

    # Legs and shoes.
    if side:
        hips = [(cx, y_hip), (cx, y_hip)]
        feet = [(cx + facing * pose.stride * p, feet_y), (cx - facing * pose.stride * p, feet_y)]
    else:
        spread = LEG_SPREAD * p + pose.stride * p * FRONT_STRIDE_FACTOR
        hips = [(cx - hip_half * HIP_JOINT_OFFSET, y_hip), (cx + hip_half * HIP_JOINT_OFFSET, y_hip)]
        feet = [(cx - spread, feet_y), (cx + spread, feet_y)]
    for hip, foot in zip(hips, feet):
        if person.lower_style == "trousers":
            _draw_limb(draw, hip, foot, leg_w, person.lower)
        elif person.lower_style == "shorts":
            _draw_limb(draw, hip, foot, leg_w, person.lower, SHORTS_FRACTION, person.skin)
        else:
            _draw_limb(draw, hip, foot, leg_w * BARE_LEG_TAPER, person.skin)
        sx, sy = leg_w * SHOE_LENGTH / 2, leg_w * SHOE_HEIGHT / 2
        toe = facing * sx * SHOE_TOE_SHIFT if side else 0.0
        draw.ellipse((foot[0] - sx + toe, foot[1] - sy, foot[0] + sx + toe, foot[1] + sy), fill=person.shoes)
    if person.lower_style == "skirt":
        y_knee = (y_hip + feet_y) / 2
        flare = hip_half * SKIRT_FLARE
        draw.polygon([(cx - hip_half, y_hip), (cx + hip_half, y_hip), (cx + flare, y_knee), (cx - flare, y_knee)],
                     fill=person.lower)

    def arm(sign: int, swing: float) -> Tuple[Tuple[float, float], Tuple[float, float]]:
        """Returns (shoulder, hand) of the arm on side ``sign`` (0 = centred, side views)."""
        shoulder = (cx + sign * sh_half * SHOULDER_JOINT_OFFSET, y_sh + arm_w / 2)
        hand = (shoulder[0] + sign * arm_w * HAND_OUTWARD + math.sin(swing) * arm_len,
                shoulder[1] + math.cos(swing) * arm_len)
        return shoulder, hand

    sleeve_split = 1.0 if person.long_sleeves else SHORT_SLEEVE_FRACTION
    if side:
        # The far arm is drawn behind the torso, slightly darker.
        far_s, far_h = arm(0, -facing * pose.swing)
        _draw_limb(draw, far_s, far_h, arm_w, _shade(person.upper, BEHIND_SHADE), sleeve_split,
                   _shade(person.skin, BEHIND_SHADE))

    hair_box = (cx - head_w * LONG_HAIR_HALF_WIDTH, y_neck - head_h * LONG_HAIR_TOP,
                cx + head_w * LONG_HAIR_HALF_WIDTH, y_sh + LONG_HAIR_LENGTH * p)
    if person.long_hair and pose.view == "front":
        draw.rectangle(hair_box, fill=person.hair)  # falls behind the shoulders

    if person.backpack is not None and side:
        back_x = cx - facing * sh_half
        depth = BACKPACK_DEPTH * sh_half / SIDE_WIDTH_FACTOR
        x0, x1 = sorted((back_x, back_x - facing * depth))
        draw.rounded_rectangle((x0, y_sh + BACKPACK_TOP * p, x1, y_sh + BACKPACK_HEIGHT * torso_h),
                               radius=max(1, int(depth * CORNER_RADIUS)), fill=person.backpack)

    # Torso (overlapping the top of the legs) and its pattern.
    y_waist = y_hip + leg_w * WAIST_OVERLAP
    quad = [(cx - sh_half, y_sh), (cx + sh_half, y_sh), (cx + hip_half, y_waist), (cx - hip_half, y_waist)]
    draw.polygon(quad, fill=person.upper)
    _draw_torso_pattern(draw, person, pose.view, quad, facing)

    if person.backpack is not None and pose.view == "back":
        half = BACKPACK_WIDTH * sh_half
        y0 = y_sh + BACKPACK_TOP * p
        draw.rounded_rectangle((cx - half, y0, cx + half, y0 + BACKPACK_HEIGHT * torso_h),
                               radius=max(1, int(half * CORNER_RADIUS)), fill=person.backpack)
    elif person.backpack is not None and pose.view == "front":
        for sign in (-1, 1):
            draw.line(((cx + sign * sh_half * STRAP_TOP_OFFSET, y_sh),
                       (cx + sign * sh_half * STRAP_BOTTOM_OFFSET, y_sh + STRAP_LENGTH * torso_h)),
                      fill=person.backpack, width=strap)

    if person.long_hair and pose.view == "back":
        draw.rectangle(hair_box, fill=person.hair)  # covers the upper back

    # Near arm(s) and hands.
    if side:
        near_s, near_h = arm(0, facing * pose.swing)
        _draw_limb(draw, near_s, near_h, arm_w, person.upper, sleeve_split, person.skin)
        hands = [near_h]
    else:
        hands = []
        for sign in (-1, 1):
            s, h = arm(sign, -sign * pose.swing * FRONT_SWING_FACTOR)
            _draw_limb(draw, s, h, arm_w, person.upper, sleeve_split, person.skin)
            hands.append(h)
    for hand in hands:
        r = arm_w * HAND_RADIUS
        draw.ellipse((hand[0] - r, hand[1] - r, hand[0] + r, hand[1] + r), fill=person.skin)

    # Cross-body bag: strap from the opposite shoulder, bag at the hip.
    if person.bag is not None:
        bag_side = facing if side else person.bag_side
        bx = cx + bag_side * (hip_half + BAG_WIDTH * p * BAG_OUTSET)
        by = y_hip
        draw.line(((cx - bag_side * sh_half * BAG_STRAP_SHOULDER, y_sh), (bx, by)),
                  fill=_shade(person.bag, BAG_STRAP_SHADE), width=strap)
        bw, bh = BAG_WIDTH * p / 2, BAG_HEIGHT * p / 2
        draw.rectangle((bx - bw, by - bh, bx + bw, by + bh), fill=person.bag)

    # Neck, head, hair and hat.
    neck_half = head_w * NECK_HALF_WIDTH
    draw.rectangle((cx - neck_half, y_neck - head_h * NECK_OVERLAP, cx + neck_half, y_sh + 1), fill=person.skin)
    head_box = (cx - head_w / 2, top, cx + head_w / 2, y_neck)
    draw.ellipse(head_box, fill=person.hair)
    if pose.view != "back":
        shift = facing * head_w * FACE_SIDE_SHIFT if side else 0.0
        inset = head_w * FACE_INSET
        draw.ellipse((head_box[0] + inset + shift, top + head_h * HAIRLINE, head_box[2] - inset + shift, y_neck),
                     fill=person.skin)
    if person.hat is not None:
        hat_bottom = top + HAT_FRACTION * head_h
        draw.rectangle((head_box[0] - 1, top - head_h * HAT_CROWN, head_box[2] + 1, hat_bottom), fill=person.hat)
        brim = HAT_BRIM * head_w
        if side:
            x0, x1 = sorted((cx + facing * head_w / 2, cx + facing * (head_w / 2 + brim)))
        else:
            x0, x1 = head_box[0] - brim * HAT_FRONT_BRIM, head_box[2] + brim * HAT_FRONT_BRIM
        draw.rectangle((x0, hat_bottom - head_h * HAT_BRIM_THICKNESS, x1, hat_bottom), fill=person.hat)
    return img


def _affine_coefficients(sx: float, sy: float, shear: float, tx: float, ty: float,
                         cx: float, cy: float) -> Tuple[float, ...]:
    """Inverse-map coefficients for PIL's AFFINE transform.

    The forward map scales by ``(sx, sy)`` about ``(cx, cy)``, shears x by
    ``shear`` per unit of y and shifts by ``(tx, ty)``.
    """
    a = 1.0 / sx
    b = -shear / sx
    c = cx - (cx + tx) / sx + shear * (cy + ty) / sx
    e = 1.0 / sy
    f = cy - (cy + ty) / sy
    return (a, b, c, 0.0, e, f)


def _place_person(person_img: Image.Image, cam: _Camera, style: DomainStyle, rng: np.random.Generator,
                  extra_shift: Tuple[float, float] = (0.0, 0.0)) -> Image.Image:
    """Applies camera viewpoint and detection-box jitter, then downsamples to the output size."""
    canvas_w, canvas_h = person_img.size
    box_scale = rng.uniform(*style.crop_scale)
    sy = cam.scale * box_scale
    sx = sy * cam.aspect
    tx = (cam.shift[0] + rng.uniform(-style.crop_shift, style.crop_shift) + extra_shift[0]) * canvas_w
    ty = (cam.shift[1] + rng.uniform(-style.crop_shift, style.crop_shift) + extra_shift[1]) * canvas_h
    coeffs = _affine_coefficients(sx, sy, cam.shear, tx, ty, canvas_w / 2, canvas_h / 2)
    warped = person_img.transform((canvas_w, canvas_h), Image.AFFINE, coeffs, resample=Image.BILINEAR)
    return warped.resize((canvas_w // SUPERSAMPLE, canvas_h // SUPERSAMPLE), Image.BOX)


def _background_crop(cam: _Camera, rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Takes a random window of the camera's background panorama."""
    pano_h, pano_w = cam.panorama.shape[:2]
    y0 = int(rng.integers(0, pano_h - height + 1))
    x0 = int(rng.integers(0, pano_w - width + 1))
    return cam.panorama[y0:y0 + height, x0:x0 + width].copy()


def _draw_occluder(img: Image.Image, rng: np.random.Generator) -> None:
    """Draws a pole, a low obstacle or a partial passer-by over the image in place."""
    width, height = img.size
    draw = ImageDraw.Draw(img)
    kind = str(rng.choice(OCCLUDER_TYPES, p=OCCLUDER_PROBS))
    colour = _jitter_colour(rng, OCCLUDER_COLOURS[int(rng.integers(len(OCCLUDER_COLOURS)))], COLOUR_JITTER)
    if kind == "pole":
        pole_w = rng.uniform(*POLE_WIDTH_RANGE) * width
        x0 = rng.uniform(-pole_w / 2, width - pole_w / 2)
        draw.rectangle((x0, 0, x0 + pole_w, height), fill=colour)
    elif kind == "low":
        y0 = rng.uniform(*LOW_OCCLUDER_TOP_RANGE) * height
        x0 = rng.uniform(-LOW_OCCLUDER_SHIFT, LOW_OCCLUDER_SHIFT) * width
        draw.rectangle((x0, y0, x0 + width, height), fill=colour)
    else:
        occ_w = rng.uniform(*PASSERBY_WIDTH_RANGE) * width
        x0, x1 = (0, occ_w) if rng.random() < HALF else (width - occ_w, width)
        clothes = _jitter_colour(rng, _COLOUR_TABLE[int(rng.integers(len(_COLOUR_TABLE)))], COLOUR_JITTER)
        y_top = rng.uniform(*PASSERBY_TOP_RANGE) * height
        y_waist = rng.uniform(*PASSERBY_WAIST_RANGE) * height
        draw.rectangle((x0, y_top, x1, y_waist), fill=clothes)
        draw.rectangle((x0, y_waist, x1, height), fill=colour)


def _photometric(arr: np.ndarray, cam: _Camera, style: DomainStyle, rng: np.random.Generator) -> np.ndarray:
    """Applies camera lighting, the domain colour transform, blur, noise; returns uint8."""
    height, width = arr.shape[:2]
    ramp = np.linspace(-HALF, HALF, height, dtype=np.float32)[:, None, None]
    gain = cam.gain * (1.0 + rng.uniform(-IMAGE_GAIN_JITTER, IMAGE_GAIN_JITTER))
    arr = arr * (gain * (1.0 + cam.shade * ramp)) * cam.cast
    arr = arr @ np.asarray(style.colour_matrix, dtype=np.float32).T
    grey = arr.mean(axis=2, keepdims=True)
    arr = grey + style.saturation * (arr - grey)
    mid = UINT8_MAX / 2
    arr = mid + style.contrast * (arr - mid)
    arr = UINT8_MAX * np.power(np.clip(arr / UINT8_MAX, 0.0, 1.0), style.gamma)
    img = Image.fromarray(arr.astype(np.uint8), mode="RGB")
    if style.downsample < 1.0:
        small = (max(1, int(width * style.downsample)), max(1, int(height * style.downsample)))
        img = img.resize(small, Image.BILINEAR).resize((width, height), Image.BILINEAR)
    radius = rng.uniform(*style.blur_radius) + cam.blur_extra
    if radius > 0:
        img = img.filter(ImageFilter.GaussianBlur(radius))
    out = np.asarray(img, dtype=np.float32) + rng.normal(0.0, style.noise_sigma, (height, width, RGB_CHANNELS))
    return np.clip(out, 0, UINT8_MAX).astype(np.uint8)


def _render(style: DomainStyle, cam: _Camera, person: Optional[_Person], rng: np.random.Generator,
            height: int, width: int, partial: bool = False) -> np.ndarray:
    """Renders one image: a person, or (``partial``) a junk crop of a person or of background."""
    background = _background_crop(cam, rng, height, width)
    composite = background
    if person is not None:
        pose = _sample_pose(rng)
        extra = (0.0, 0.0)
        if partial:
            shift = rng.uniform(*PARTIAL_SHIFT_RANGE) * rng.choice((-1, 1))
            extra = (shift, 0.0) if rng.random() < HALF else (0.0, shift)
        layer = _place_person(_draw_person(person, pose, height, width), cam, style, rng, extra)
        rgba = np.asarray(layer, dtype=np.float32)
        alpha = rgba[..., ALPHA_CHANNEL:ALPHA_CHANNEL + 1] / UINT8_MAX
        composite = background * (1.0 - alpha) + rgba[..., :RGB_CHANNELS] * alpha
    img = Image.fromarray(np.clip(composite, 0, UINT8_MAX).astype(np.uint8), mode="RGB")
    if rng.random() < style.occlusion_prob:
        _draw_occluder(img, rng)
    return _photometric(np.asarray(img, dtype=np.float32), cam, style, rng)


# ---------------------------------------------------------------------------
# Layout planning
# ---------------------------------------------------------------------------


def _filename(domain: str, pid: int, cam: int, frame: int, seq: int, bbox: int) -> str:
    """Formats a file name in the domain's convention."""
    if domain == MARKET:
        return f"{pid:04d}_c{cam}s{seq}_{frame:06d}_{bbox:02d}{JPEG_EXTENSION}"
    return f"{pid:04d}_c{cam}_f{frame:07d}{JPEG_EXTENSION}"


def _plan_identity(rng: np.random.Generator, domain: str, style: DomainStyle, pid: int, images_per_id: int,
                   role: str) -> List[_Job]:
    """Plans cameras, splits and file names of one identity's images.

    Args:
        rng: The identity's planning generator.
        domain: Domain key.
        style: Domain style.
        pid: Person id.
        images_per_id: Number of images of this identity.
        role: ``"train"``, ``"test"`` (query + gallery) or ``"gallery"`` (gallery only).

    Returns:
        One job per image. For ``"test"`` every query camera differs from at least
        one camera that holds gallery images of the same identity.
    """
    k_max = min(MAX_CAMS_PER_ID, style.num_cams, images_per_id)
    k = int(rng.integers(MIN_CAMS_PER_ID, k_max + 1))
    cams = np.sort(rng.choice(np.arange(1, style.num_cams + 1), size=k, replace=False))
    counts = 1 + rng.multinomial(images_per_id - k, rng.dirichlet(np.ones(k)))
    query_cams = set()
    if role == "test":
        n_query = int(rng.integers(1, min(MAX_QUERY_CAMS, k - 1) + 1))
        query_cams = set(int(c) for c in rng.choice(cams, size=n_query, replace=False))
    jobs = []
    index = 0
    for cam, count in zip(cams, counts):
        cam = int(cam)
        frame = int(rng.integers(FRAME_START_MIN, FRAME_START_MAX))
        seq = int(rng.integers(1, MARKET_NUM_SEQUENCES + 1))
        for shot in range(int(count)):
            frame += int(rng.integers(FRAME_STEP_MIN, FRAME_STEP_MAX))
            bbox = int(rng.integers(1, MARKET_MAX_BBOX_INDEX + 1))
            if role == "train":
                split = TRAIN_DIR
            elif shot == 0 and cam in query_cams:
                split = QUERY_DIR
            else:
                split = GALLERY_DIR
            jobs.append(_Job(split, _filename(domain, pid, cam, frame, seq, bbox), pid, cam, index))
            index += 1
    return jobs


def _plan_identities(domain: str, style: DomainStyle, num_ids: int, images_per_id: int, num_query_ids: int,
                     num_gallery_only_ids: int, seed: int) -> List[_Job]:
    """Plans the images of all labelled identities: train, test and gallery-only."""
    total = num_ids + num_query_ids + num_gallery_only_ids
    _check_pid_budget(style, total)
    pids = _rng(seed, domain, _PURPOSE_LAYOUT).choice(np.arange(1, style.max_pid + 1), size=total, replace=False)
    groups = (
        ("train", np.sort(pids[:num_ids])),
        ("test", np.sort(pids[num_ids:num_ids + num_query_ids])),
        ("gallery", np.sort(pids[num_ids + num_query_ids:])),
    )
    jobs: List[_Job] = []
    for role, group in groups:
        for pid in group:
            plan_rng = _rng(seed, domain, _PURPOSE_PLAN, int(pid))
            jobs.extend(_plan_identity(plan_rng, domain, style, int(pid), images_per_id, role))
    return jobs


def _plan_background(domain: str, style: DomainStyle, num_images: int, seed: int) -> List[_Job]:
    """Plans pid-0 junk gallery images with unique frame numbers."""
    rng = _rng(seed, domain, _PURPOSE_BACKGROUND)
    jobs = []
    for k in range(num_images):
        cam = int(rng.integers(1, style.num_cams + 1))
        seq = int(rng.integers(1, MARKET_NUM_SEQUENCES + 1))
        frame = BACKGROUND_FRAME_START + k * BACKGROUND_FRAME_STEP
        name = _filename(domain, BACKGROUND_PID, cam, frame, seq, BACKGROUND_BBOX_INDEX)
        jobs.append(_Job(GALLERY_DIR, name, BACKGROUND_PID, cam, k))
    return jobs


def _summarise(jobs: Sequence[_Job], style: DomainStyle, folder: str) -> Dict[str, object]:
    """Counts ids, images and cameras per split (labelled ids exclude pid 0)."""
    counts: Dict[str, object] = {"domain": style.name, "dataset_dir": folder, "num_cams": style.num_cams}
    for split, key in ((TRAIN_DIR, "train"), (QUERY_DIR, "query"), (GALLERY_DIR, "gallery")):
        chosen = [j for j in jobs if j.split == split]
        counts[f"{key}_images"] = len(chosen)
        counts[f"{key}_ids"] = len({j.pid for j in chosen if j.pid != BACKGROUND_PID})
        counts[f"{key}_cams"] = len({j.cam for j in chosen})
    counts["background_images"] = sum(1 for j in jobs if j.pid == BACKGROUND_PID)
    return counts


# ---------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------


def write_domain(
    root: str,
    domain: str,
    num_ids: int = DEFAULT_NUM_IDS,
    images_per_id: int = DEFAULT_IMAGES_PER_ID,
    num_query_ids: int = DEFAULT_NUM_QUERY_IDS,
    num_gallery_only_ids: Optional[int] = None,
    num_background_images: Optional[int] = None,
    height: int = DEFAULT_HEIGHT,
    width: int = DEFAULT_WIDTH,
    seed: int = DEFAULT_SEED,
    overwrite: bool = False,
    workers: int = 1,
) -> Dict[str, object]:
    """Writes one synthetic domain in the Market-1501 or DukeMTMC-reID layout.

    Train identities and test identities are disjoint. Each test identity gets one
    query image in each of one or two of its cameras, and gallery images in every
    other of its cameras, so each query has a cross-camera gallery match.

    Args:
        root: Data-set root (the ``root`` argument of fast-reid's dataset classes).
            Its absolute path must not contain ``<digits>_c<digit>``, which
            fast-reid would misparse.
        domain: ``"market"`` (6 cameras, pids <= 1501) or ``"duke"`` (8 cameras).
        num_ids: Number of training identities.
        images_per_id: Images per identity (train, test and gallery-only alike), >= 2.
        num_query_ids: Number of test identities (they appear in query and gallery).
        num_gallery_only_ids: Identities that appear only in the gallery (distractor
            ids, as in DukeMTMC-reID). ``None`` uses the domain default
            (``round(gallery_only_fraction * num_query_ids)``).
        num_background_images: pid-0 junk images in the gallery (Market's
            "background" convention; Market only). ``None`` uses the domain default
            (``round(background_fraction * labelled gallery images)``).
        height: Image height in pixels.
        width: Image width in pixels.
        seed: Non-negative seed; the output is a pure function of the arguments.
        workers: Processes drawing the images (the files do not depend on it).
        overwrite: Delete an existing non-empty domain folder first instead of
            raising.

    Returns:
        Counts: ``domain``, ``dataset_dir``, ``num_cams``;
        ``{train,query,gallery}_images``: all files in the split folder, i.e. what
        fast-reid loads (``gallery_images`` includes the pid-0 background images);
        ``{train,query,gallery}_ids``: labelled ids (pid 0 excluded, so fast-reid
        counts one more gallery id when there are background images);
        ``{train,query,gallery}_cams``; ``background_images``.

    Raises:
        ValueError: On an unknown domain, invalid sizes, too many identities, a
            root fast-reid would misparse, or background images for Duke.
        FileExistsError: If the domain folder exists, is not empty and
            ``overwrite`` is false.
    """
    style = _style(domain)
    _validate(num_ids, images_per_id, num_query_ids, height, width, seed)
    _check_root(root)
    if num_gallery_only_ids is None:
        num_gallery_only_ids = _default_gallery_only_ids(style, num_query_ids)
    if num_gallery_only_ids < 0:
        raise ValueError("num_gallery_only_ids must be >= 0")
    _check_pid_budget(style, num_ids + num_query_ids + num_gallery_only_ids)
    jobs = _plan_identities(domain, style, num_ids, images_per_id, num_query_ids, num_gallery_only_ids, seed)
    if num_background_images is None:
        labelled_gallery = sum(1 for j in jobs if j.split == GALLERY_DIR)
        num_background_images = int(round(style.background_fraction * labelled_gallery))
    if num_background_images < 0:
        raise ValueError("num_background_images must be >= 0")
    if num_background_images and domain != MARKET:
        raise ValueError("pid-0 background images follow the Market-1501 convention; use domain='market'")
    jobs += _plan_background(domain, style, num_background_images, seed)

    folder = domain_dir(root, domain)
    _prepare_folder(folder, overwrite)
    if workers > 1:
        # Every image depends only on seeded generators: any split of the jobs gives the same files.
        chunks = [(jobs[i::workers], domain, seed, height, width, folder) for i in range(workers)]
        with multiprocessing.get_context("spawn").Pool(workers) as pool:
            pool.map(_render_jobs, chunks)
    else:
        _render_jobs((jobs, domain, seed, height, width, folder))
    return _summarise(jobs, style, folder)


def _render_jobs(args) -> None:
    """Draw and save the images of ``jobs`` (one worker's share of a domain)."""
    jobs, domain, seed, height, width, folder = args
    style = _style(domain)
    cameras = {c: _make_camera(_rng(seed, domain, _PURPOSE_CAMERA, c), style, height, width)
               for c in sorted({job.cam for job in jobs})}
    people: Dict[int, _Person] = {}
    for job in jobs:
        if job.pid == BACKGROUND_PID:
            rng = _rng(seed, domain, _PURPOSE_BACKGROUND, job.index)
            person = _sample_person(rng, style) if rng.random() < PARTIAL_PERSON_PROB else None
            pixels = _render(style, cameras[job.cam], person, rng, height, width, partial=True)
        else:
            if job.pid not in people:
                people[job.pid] = _sample_person(_rng(seed, domain, _PURPOSE_IDENTITY, job.pid), style)
            rng = _rng(seed, domain, _PURPOSE_IMAGE, job.pid, job.index)
            pixels = _render(style, cameras[job.cam], people[job.pid], rng, height, width)
        Image.fromarray(pixels, mode="RGB").save(os.path.join(folder, job.split, job.filename), "JPEG",
                                                 quality=style.jpeg_quality)


def write_pair(
    root: str,
    source: str = DEFAULT_SOURCE,
    target: str = DEFAULT_TARGET,
    num_ids_source: int = DEFAULT_NUM_IDS,
    num_ids_target: int = DEFAULT_NUM_IDS,
    images_per_id: int = DEFAULT_IMAGES_PER_ID,
    num_query_ids_source: int = DEFAULT_NUM_QUERY_IDS,
    num_query_ids_target: int = DEFAULT_NUM_QUERY_IDS,
    height: int = DEFAULT_HEIGHT,
    width: int = DEFAULT_WIDTH,
    seed: int = DEFAULT_SEED,
    overwrite: bool = False,
    workers: int = 1,
) -> Dict[str, Dict[str, object]]:
    """Writes a source and a target domain under the same root.

    Both domain folders are checked before anything is written, so a refusal
    leaves the root untouched. Gallery-only ids and background images use the
    domain defaults of :func:`write_domain`.

    Args:
        root: Data-set root shared by both domains.
        source: Source domain key (labelled in MMT), ``"duke"`` by default.
        target: Target domain key (unlabelled in MMT), ``"market"`` by default.
        num_ids_source: Training identities of the source domain.
        num_ids_target: Training identities of the target domain.
        images_per_id: Images per identity in both domains.
        num_query_ids_source: Test identities of the source domain.
        num_query_ids_target: Test identities of the target domain.
        height: Image height in pixels.
        width: Image width in pixels.
        seed: Non-negative seed (each domain derives its own streams from it).
        overwrite: Replace existing non-empty domain folders instead of raising.
        workers: Processes drawing the images (the files do not depend on it).

    Returns:
        ``{"source": counts, "target": counts}`` with the counts of :func:`write_domain`.

    Raises:
        ValueError: If ``source == target`` or on invalid arguments.
        FileExistsError: If a domain folder is non-empty and ``overwrite`` is false.
    """
    _style(source)
    _style(target)
    if source == target:
        raise ValueError(f"source and target must differ, both are {source!r}")
    _check_root(root)
    if not overwrite:
        for domain in (source, target):
            _refuse_non_empty(domain_dir(root, domain))
    settings = ((source, num_ids_source, num_query_ids_source), (target, num_ids_target, num_query_ids_target))
    for domain, num_ids, num_query_ids in settings:
        _validate(num_ids, images_per_id, num_query_ids, height, width, seed)
        style = _style(domain)
        _check_pid_budget(style, num_ids + num_query_ids + _default_gallery_only_ids(style, num_query_ids))
    counts = {}
    for role, (domain, num_ids, num_query_ids) in zip(("source", "target"), settings):
        counts[role] = write_domain(root, domain, num_ids=num_ids, images_per_id=images_per_id,
                                    num_query_ids=num_query_ids, height=height, width=width, seed=seed,
                                    overwrite=overwrite, workers=workers)
    return counts


def _validate(num_ids: int, images_per_id: int, num_query_ids: int, height: int, width: int, seed: int) -> None:
    """Checks sizes and the seed."""
    if num_ids < 1 or num_query_ids < 1:
        raise ValueError("num_ids and num_query_ids must be >= 1")
    if images_per_id < MIN_IMAGES_PER_ID:
        raise ValueError(f"images_per_id must be >= {MIN_IMAGES_PER_ID} (images in two cameras per identity)")
    if height < MIN_HEIGHT or width < MIN_WIDTH:
        raise ValueError(f"image size must be at least {MIN_HEIGHT}x{MIN_WIDTH} (height x width)")
    if seed < 0:
        raise ValueError("seed must be >= 0")


def _default_gallery_only_ids(style: DomainStyle, num_query_ids: int) -> int:
    """Default number of gallery-only distractor identities of a domain."""
    return int(round(style.gallery_only_fraction * num_query_ids))


def _check_pid_budget(style: DomainStyle, total_ids: int) -> None:
    """Raises ValueError if ``total_ids`` distinct pids do not fit the domain's pid range."""
    if total_ids > style.max_pid:
        raise ValueError(f"{style.name}: {total_ids} identities requested but pids must lie in 1..{style.max_pid}")


def _refuse_non_empty(folder: str) -> None:
    """Raises FileExistsError if ``folder`` exists and is not empty."""
    if os.path.isdir(folder) and os.listdir(folder):
        raise FileExistsError(f"refusing to write into non-empty folder {folder!r} (overwrite=False)")
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise FileExistsError(f"{folder!r} exists and is not a folder")


def _prepare_folder(folder: str, overwrite: bool) -> None:
    """Creates the split folders, clearing an existing domain folder if allowed."""
    if overwrite and os.path.isdir(folder):
        shutil.rmtree(folder)
    _refuse_non_empty(folder)
    for split in SPLIT_DIRS:
        os.makedirs(os.path.join(folder, split), exist_ok=True)
