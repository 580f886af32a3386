"""Contact sheets of rankings (PIL): one row per query, the query then its top-k, the distance
under each; green / red frames for correct / wrong matches and the query's AP where identities
are known. :func:`draw_before_after_sheet` shows two models' rows for each query, one above the
other (e.g. direct transfer, then MMT).
"""

import math
from dataclasses import dataclass

from PIL import Image, ImageDraw, ImageFont

from fastreid.data.data_utils import read_image

# Thumbnail size (height, width) in pixels: person crops are about twice as high as wide.
THUMB_HEIGHT, THUMB_WIDTH = 128, 64
FRAME = 3  # frame width around each thumbnail
GAP = 6  # space between thumbnails and between rows
QUERY_GAP = 18  # extra space between a query and its matches
GROUP_GAP = 16  # extra space between two queries' before / after rows
LABEL_WIDTH = 96  # left column: the row's label and AP
TEXT_HEIGHT = 14  # one line of text under a thumbnail
DEFAULT_MAX_ROWS = 20
BACKGROUND, TEXT = (255, 255, 255), (0, 0, 0)
QUERY_COLOUR, CORRECT, WRONG, UNKNOWN = (40, 90, 220), (0, 170, 0), (210, 0, 0), (170, 170, 170)
BEFORE, AFTER = "before", "after"


@dataclass
class SheetRow:
    """One query's ranking as drawn.

    Attributes:
        query (str): the query image.
        gallery (list[str]): its top-k gallery images, nearest first.
        distances (list[float]): their distances.
        correct (list[bool] | None): whether each has the query's identity; None when the
            identities are unknown (grey frames).
        ap (float | None): the query's average precision over the whole gallery (NaN: no
            relevant gallery item; None: identities unknown).
        label (str): text at the start of the row (e.g. ``before`` / ``after``).
    """

    query: str
    gallery: list
    distances: list
    correct: list = None
    ap: float = None
    label: str = ""


def rows_from_ranking(query_paths, gallery_paths, distances, indices, correct=None, ap=None, label="",
                      max_rows=DEFAULT_MAX_ROWS):
    """The first ``max_rows`` queries' :class:`SheetRow`.

    Args:
        query_paths (Sequence[str]): ``Q`` query images.
        gallery_paths (Sequence[str]): ``G`` gallery images.
        distances (Tensor): ``[Q, k]`` ascending distances.
        indices (Tensor): ``[Q, k]`` gallery indices (negative: empty slot, not drawn).
        correct (Tensor | None): ``[Q, k]`` bool, or None when identities are unknown.
        ap (Tensor | None): ``[Q]`` average precision, or None.
        label (str): the label of every row.
        max_rows (int): how many queries to draw.
    """
    rows = []
    for q in range(min(int(max_rows), len(query_paths))):
        keep = [j for j, index in enumerate(indices[q].tolist()) if index >= 0]
        rows.append(SheetRow(
            query=query_paths[q], gallery=[gallery_paths[int(indices[q, j])] for j in keep],
            distances=[float(distances[q, j]) for j in keep],
            correct=None if correct is None else [bool(correct[q, j]) for j in keep],
            ap=None if ap is None else float(ap[q]), label=label))
    return rows


def _thumbnail(path):
    return read_image(path).convert("RGB").resize((THUMB_WIDTH, THUMB_HEIGHT), Image.Resampling.BILINEAR)


def _row_text(row):
    lines = [row.label] if row.label else []
    if row.ap is not None:
        lines.append("AP n/a" if math.isnan(row.ap) else f"AP {row.ap:.3f}")
    return "\n".join(lines)


def _paste(canvas, draw, font, path, x, y, colour, caption):
    """Draw one framed thumbnail with its caption at ``(x, y)`` (the frame's top left)."""
    draw.rectangle([x, y, x + THUMB_WIDTH + 2 * FRAME - 1, y + THUMB_HEIGHT + 2 * FRAME - 1], fill=colour)
    canvas.paste(_thumbnail(path), (x + FRAME, y + FRAME))
    draw.text((x, y + THUMB_HEIGHT + 2 * FRAME + 1), caption, fill=TEXT, font=font)


def draw_rows(rows, path, group_size=1):
    """Draw ``rows`` into the image file ``path``, one above the other, with a larger gap after
    every ``group_size`` rows. Returns ``path``."""
    if not rows:
        raise ValueError("a contact sheet needs at least one row")
    cell_w, cell_h = THUMB_WIDTH + 2 * FRAME + GAP, THUMB_HEIGHT + 2 * FRAME + TEXT_HEIGHT + GAP
    k = max(len(row.gallery) for row in rows)
    width = LABEL_WIDTH + QUERY_GAP + (k + 1) * cell_w
    groups = math.ceil(len(rows) / group_size)
    height = len(rows) * cell_h + (groups - 1) * GROUP_GAP * (group_size > 1) + GAP
    canvas = Image.new("RGB", (width, height), BACKGROUND)
    draw, font = ImageDraw.Draw(canvas), ImageFont.load_default()
    y = GAP
    for i, row in enumerate(rows):
        if i and group_size > 1 and i % group_size == 0:
            y += GROUP_GAP
        draw.multiline_text((GAP, y + GAP), _row_text(row), fill=TEXT, font=font)
        _paste(canvas, draw, font, row.query, LABEL_WIDTH, y, QUERY_COLOUR, "query")
        x = LABEL_WIDTH + cell_w + QUERY_GAP
        for j, (image, dist) in enumerate(zip(row.gallery, row.distances)):
            colour = UNKNOWN if row.correct is None else (CORRECT if row.correct[j] else WRONG)
            _paste(canvas, draw, font, image, x, y, colour, f"{dist:.3f}")
            x += cell_w
        y += cell_h
    canvas.save(path)
    return path


def draw_sheet(rows, path):
    """The contact sheet of one model's ranking (rows from :func:`rows_from_ranking`)."""
    return draw_rows(rows, path)


def draw_before_after_sheet(before_rows, after_rows, path, labels=(BEFORE, AFTER)):
    """For each query, its ranking by the "before" model, then by the "after" model, labelled.

    Args:
        before_rows (list[SheetRow]): rows of the first model (e.g. direct transfer).
        after_rows (list[SheetRow]): rows of the second model (e.g. MMT), same queries in the
            same order.
        path (str): the image file to write.
        labels (tuple[str, str]): the two rows' labels.

    Returns:
        str: ``path``.
    """
    if [r.query for r in before_rows] != [r.query for r in after_rows]:
        raise ValueError("before and after rows must show the same queries in the same order")
    rows = []
    for before, after in zip(before_rows, after_rows):
        rows += [SheetRow(**{**vars(before), "label": labels[0]}), SheetRow(**{**vars(after), "label": labels[1]})]
    return draw_rows(rows, path, group_size=2)
