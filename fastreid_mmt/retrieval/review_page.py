"""The blind review page of a pool: one HTML file (its CSS, script and the pool's queries
inlined; no framework, no network) and an ``images`` folder beside it.

The page shows, for each query, its pooled candidates in the pool's shuffled order, and
nothing else: no model name, no rank, no distance. The images are copied under neutral names
(numbered in the order they are shown), since an original path may tell the identity (a
labelled folder) or hint at the answer. The page opens from disk (``file://``) or from any
static server, e.g. ``python -m http.server`` in its folder.
"""

import json
import os
import re
import shutil

# The page's template, style and script, shipped with the package.
ASSETS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "review_assets")
TEMPLATE, STYLE, SCRIPT = "review.html", "review.css", "review.js"
# Placeholders of the template, each replaced once.
PLACEHOLDER = re.compile(r"/\*(CSS|JS|DATA)\*/")
# What the page is written as, and its image folder.
PAGE = "review.html"
IMAGE_FOLDER = "images"
# Digits of the copied images' numbers.
_NAME_DIGITS = 5


def _read_asset(name):
    with open(os.path.join(ASSETS, name), encoding="utf-8") as f:
        return f.read()


def _extension(path):
    return os.path.splitext(path)[1].lower() or ".jpg"


def neutral_names(pool):
    """Neutral file names of the shown images, numbered in the order the page shows them.

    Returns:
        tuple: a name for each query (list) and for each shown gallery index (dict).
    """
    query_names, gallery_names = [], {}
    for query in pool.queries:
        query_names.append(f"{IMAGE_FOLDER}/{len(query_names) + len(gallery_names):0{_NAME_DIGITS}d}"
                           f"{_extension(query.path)}")
        for g in query.candidates:
            if g not in gallery_names:
                gallery_names[g] = (f"{IMAGE_FOLDER}/{len(query_names) + len(gallery_names):0{_NAME_DIGITS}d}"
                                    f"{_extension(pool.gallery[g])}")
    return query_names, gallery_names


def page_data(pool, query_names, gallery_names):
    """What the page embeds: the pool id, the models' checkpoint hashes (sorted, so that they
    tell no order), and each query's image and candidates (gallery index and image)."""
    return {"pool_id": pool.pool_id, "models": pool.model_hashes(),
            "queries": [{"image": name, "candidates": [{"g": g, "image": gallery_names[g]} for g in query.candidates]}
                        for name, query in zip(query_names, pool.queries)]}


def render_page(data):
    """The page's HTML with its style, script and ``data`` inlined."""
    # "<" as a JSON escape: no "</script>" or "<!--" can end the data block early.
    parts = {"CSS": _read_asset(STYLE), "JS": _read_asset(SCRIPT),
             "DATA": json.dumps(data, separators=(",", ":")).replace("<", "\\u003c")}
    return PLACEHOLDER.sub(lambda match: parts[match.group(1)], _read_asset(TEMPLATE))


def copy_images(pool, folder, query_names, gallery_names):
    """Copy the shown images into ``folder`` under their neutral names."""
    os.makedirs(os.path.join(folder, IMAGE_FOLDER), exist_ok=True)
    sources = [(query.path, name) for query, name in zip(pool.queries, query_names)]
    sources += [(pool.gallery[g], name) for g, name in gallery_names.items()]
    for source, name in sources:
        if not os.path.isfile(source):
            raise FileNotFoundError(f"--images: image not found (moved or deleted since ranking?): {source}")
        shutil.copyfile(source, os.path.join(folder, name))


def write_review_page(pool, folder):
    """Write ``review.html`` and its ``images`` folder into ``folder``; returns the page's path."""
    query_names, gallery_names = neutral_names(pool)
    copy_images(pool, folder, query_names, gallery_names)
    path = os.path.join(folder, PAGE)
    with open(path, "w", encoding="utf-8") as f:
        f.write(render_page(page_data(pool, query_names, gallery_names)))
    return path
