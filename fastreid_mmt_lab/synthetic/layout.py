"""File names, planning of identities and background images, and writing the domain folders."""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
import shutil
from typing import Dict, List, Optional, Sequence

import numpy as np
from PIL import Image

from .constants import (
    BACKGROUND_BBOX_INDEX, BACKGROUND_FRAME_START, BACKGROUND_FRAME_STEP, BACKGROUND_PID, DEFAULT_HEIGHT,
    DEFAULT_IMAGES_PER_ID, DEFAULT_NUM_IDS, DEFAULT_NUM_QUERY_IDS, DEFAULT_SEED, DEFAULT_SOURCE, DEFAULT_TARGET,
    DEFAULT_WIDTH, FASTREID_PATH_PATTERN, FRAME_START_MAX, FRAME_START_MIN, FRAME_STEP_MAX, FRAME_STEP_MIN,
    GALLERY_DIR, JPEG_EXTENSION, MARKET, MARKET_MAX_BBOX_INDEX, MARKET_NUM_SEQUENCES, MAX_CAMS_PER_ID, MAX_QUERY_CAMS,
    MIN_CAMS_PER_ID, MIN_HEIGHT, MIN_IMAGES_PER_ID, MIN_WIDTH, QUERY_DIR, SPLIT_DIRS, TRAIN_DIR, _PURPOSE_BACKGROUND,
    _PURPOSE_CAMERA, _PURPOSE_IDENTITY, _PURPOSE_IMAGE, _PURPOSE_LAYOUT, _PURPOSE_PLAN)
from .styles import PARTIAL_PERSON_PROB, DomainStyle, _style
from .scene import _Person, _make_camera, _rng, _sample_person
from .render import _render

# ---------------------------------------------------------------------------
# Layout planning
# ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Job:
    """One image to render and write."""

    split: str
    filename: str
    pid: int
    cam: int
    index: int


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
