"""Identities, poses, cameras with their background panoramas, and small random / colour helpers."""

from __future__ import annotations

import dataclasses
import math
from typing import Optional, Sequence, Tuple

import numpy as np
from PIL import Image, ImageDraw

from .constants import _DOMAIN_CODES
from .styles import (
    BODY_X_JITTER, BUILD_RANGE, CAMERA_ASPECT_JITTER, CAMERA_BLUR_EXTRA_MAX, CAMERA_SCALE_JITTER, CAMERA_SHADE_MAX,
    CAMERA_SHEAR_MAX, CAMERA_SHIFT_MAX, COLOUR_JITTER, HAIR_COLOURS, HAIR_COLOUR_PROBS, HEAD_SCALE_RANGE,
    INDOOR_FLOORS, INDOOR_HORIZON_RANGE, INDOOR_LAMP_GAIN, INDOOR_LAMP_RADIUS_RANGE, INDOOR_LAMP_Y_RANGE,
    INDOOR_PANELS, INDOOR_PANEL_COUNT, INDOOR_PANEL_TOP_RANGE, INDOOR_PANEL_WIDTH, INDOOR_TEXTURE_AMPLITUDE,
    INDOOR_TILE_COLUMNS, INDOOR_TILE_CONVERGENCE, INDOOR_TILE_LINE_SHADE, INDOOR_TILE_ROWS, INDOOR_TILE_ROW_EXPONENT,
    INDOOR_VANISHING_X_RANGE, INDOOR_WALLS, LEG_FRACTION_RANGE, LINE_WIDTH, LOWER_STYLES, MAX_ARM_SWING, MAX_STRIDE,
    NOISE_CENTRE, OUTDOOR_BRICK_COLUMNS, OUTDOOR_BRICK_ROWS, OUTDOOR_GRAIN_AMPLITUDE, OUTDOOR_GREENS,
    OUTDOOR_GREEN_RANGE, OUTDOOR_GROUNDS, OUTDOOR_MORTAR_SHADE, OUTDOOR_RAGGEDNESS, OUTDOOR_TEXTURE_AMPLITUDE,
    OUTDOOR_TOPS, OUTDOOR_TOP_RANGE, OUTDOOR_TRUNK_COLOUR, OUTDOOR_TRUNK_COUNT, OUTDOOR_TRUNK_OVERHANG,
    OUTDOOR_TRUNK_WIDTH, OUTDOOR_WINDOW_COLUMNS, OUTDOOR_WINDOW_MARGIN, OUTDOOR_WINDOW_ROWS, OUTDOOR_WINDOW_SHADE,
    OUTDOOR_WINDOW_SIZE, PANORAMA_HEIGHT_MARGIN, PANORAMA_WIDTH_FACTOR, PERSON_HEIGHT_RANGE, RGB_CHANNELS,
    SHOE_COLOURS, SKIN_JITTER, SKIN_TONES, STRIPES_MAX, STRIPES_MIN, TEXTURE_CELLS, UINT8_MAX, UPPER_PATTERNS,
    UPPER_PATTERN_PROBS, VIEWS, VIEW_PROBS, _COLOUR_NAMES, _COLOUR_TABLE, DomainStyle)

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
