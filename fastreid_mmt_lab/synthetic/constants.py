"""Public names, folder layout, default sizes and seeding keys of the synthetic data."""

from __future__ import annotations

from fastreid_mmt.data.checks import FILE_NAME_PATTERN, SPLIT_FOLDERS

# ---------------------------------------------------------------------------
# Public constants
# ---------------------------------------------------------------------------

MARKET = "market"
DUKE = "duke"
DOMAINS = (MARKET, DUKE)

# The split folders of the layouts fast-reid reads, as the input checks know them.
SPLIT_DIRS = SPLIT_FOLDERS
TRAIN_DIR, QUERY_DIR, GALLERY_DIR = SPLIT_DIRS

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
FASTREID_PATH_PATTERN = FILE_NAME_PATTERN

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
