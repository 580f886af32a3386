"""Appearance constants, the per-domain styles (:class:`DomainStyle`) and background palettes."""

from __future__ import annotations

import dataclasses
from typing import Dict, Tuple

import numpy as np

from .constants import DOMAINS, DUKE, DUKE_FOLDER, MARKET, MARKET_FOLDER

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


def _style(domain: str) -> DomainStyle:
    """Looks up a domain's style, with a clear error for unknown names."""
    if domain not in DOMAIN_STYLES:
        raise ValueError(f"unknown domain {domain!r}; expected one of {DOMAINS}")
    return DOMAIN_STYLES[domain]


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
