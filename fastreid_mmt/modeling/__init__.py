from .ema import ema_momentum, ema_update
from .meta_arch import MMT, SourceBaseline

__all__ = ["MMT", "SourceBaseline", "ema_momentum", "ema_update"]
