"""Draws one image: the person, its camera placement, occluders and the photometric pipeline."""

from __future__ import annotations

import math
from typing import Optional, Sequence, Tuple

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from .styles import (
    ALPHA_CHANNEL, ARM_LENGTH, ARM_WIDTH, BACKPACK_DEPTH, BACKPACK_HEIGHT, BACKPACK_TOP, BACKPACK_WIDTH, BAG_HEIGHT,
    BAG_OUTSET, BAG_STRAP_SHADE, BAG_STRAP_SHOULDER, BAG_WIDTH, BARE_LEG_TAPER, BEHIND_SHADE, COLOUR_JITTER,
    CORNER_RADIUS, FACE_INSET, FACE_SIDE_SHIFT, FEET_Y_FRACTION, FOREARM_TAPER, FRONT_STRIDE_FACTOR,
    FRONT_SWING_FACTOR, HAIRLINE, HALF, HAND_OUTWARD, HAND_RADIUS, HAT_BRIM, HAT_BRIM_THICKNESS, HAT_CROWN,
    HAT_FRACTION, HAT_FRONT_BRIM, HEAD_ASPECT, HEAD_HEIGHT, HIP_HALF_WIDTH, HIP_JOINT_OFFSET, IMAGE_GAIN_JITTER,
    JACKET_BAND, JACKET_SIDE_BAND, LEG_SPREAD, LEG_WIDTH, LOGO_SIZE, LOGO_Y, LONG_HAIR_HALF_WIDTH, LONG_HAIR_LENGTH,
    LONG_HAIR_TOP, LOW_OCCLUDER_SHIFT, LOW_OCCLUDER_TOP_RANGE, NECK_HALF_WIDTH, NECK_LENGTH, NECK_OVERLAP,
    OCCLUDER_COLOURS, OCCLUDER_PROBS, OCCLUDER_TYPES, PARTIAL_SHIFT_RANGE, PASSERBY_TOP_RANGE, PASSERBY_WAIST_RANGE,
    PASSERBY_WIDTH_RANGE, POLE_WIDTH_RANGE, RGB_CHANNELS, SHOE_HEIGHT, SHOE_LENGTH, SHOE_TOE_SHIFT, SHORTS_FRACTION,
    SHORT_SLEEVE_FRACTION, SHOULDER_HALF_WIDTH, SHOULDER_JOINT_OFFSET, SIDE_WIDTH_FACTOR, SKIRT_FLARE,
    STRAP_BOTTOM_OFFSET, STRAP_LENGTH, STRAP_TOP_OFFSET, STRAP_WIDTH, SUPERSAMPLE, UINT8_MAX, WAIST_OVERLAP,
    YOKE_FRACTION, _COLOUR_TABLE, DomainStyle)
from .scene import _Camera, _Person, _Pose, _jitter_colour, _lerp, _sample_pose, _shade

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
