from .mmt import MMT
from .source import SourceBaseline

__all__ = ["MMT", "SourceBaseline"]
