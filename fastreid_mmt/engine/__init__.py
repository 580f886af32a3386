from .hooks import MMTHook
from .trainer import MMTTrainer, SourceTrainer

__all__ = ["MMTHook", "MMTTrainer", "SourceTrainer"]
