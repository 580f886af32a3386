"""Argument checks shared by the clustering functions."""

import torch


def check_features(features):
    """Raise ValueError unless ``features`` is a non-empty 2-D tensor ``[N, D]``; return N."""
    if not isinstance(features, torch.Tensor):
        raise ValueError(f"features must be a 2-D torch.Tensor (N, D), got {type(features).__name__}")
    if features.dim() != 2:
        raise ValueError(f"features must be a 2-D torch.Tensor (N, D), got shape {tuple(features.shape)}")
    if features.shape[0] < 1:
        raise ValueError("features must contain at least one row")
    return features.shape[0]


def check_range(name, value, low, high, high_name="N"):
    """Raise ValueError naming ``name`` unless ``low <= value <= high``."""
    if not low <= value <= high:
        raise ValueError(f"{name} must satisfy {low} <= {name} <= {high_name}, got {name}={value} with "
                         f"{high_name}={high}")
