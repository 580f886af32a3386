"""Retrieval with a trained model: which gallery images it ranks first for each query.

Pure functions used by ``tools/rank.py`` (and importable by other tools, e.g. the demo):
``image_sets`` (query / gallery from files, folders or fast-reid data sets), ``weights`` (the
evaluated network of a checkpoint), ``features`` (batched extraction), ``ranking`` (blocked
top-k, average precision), ``retrieve`` (one model's whole retrieval and its files),
``outputs`` (the files) and ``sheet`` (contact sheets, including before / after).
"""

from .features import ImageReadError, extract_features
from .image_sets import ImageSet, read_image_set
from .ranking import average_precision, blocked_topk, encode_labels
from .retrieve import Ranking, check_topk, rank_gallery, save_ranking
from .sheet import SheetRow, draw_before_after_sheet, draw_sheet, rows_from_ranking
from .weights import load_feature_model

__all__ = ["ImageReadError", "ImageSet", "Ranking", "SheetRow", "average_precision", "blocked_topk", "check_topk",
           "draw_before_after_sheet", "draw_sheet", "encode_labels", "extract_features", "load_feature_model",
           "rank_gallery", "read_image_set", "rows_from_ranking", "save_ranking"]
