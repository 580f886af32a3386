"""Randomly initialised networks saved as stand-ins for source pre-training (tests and speed
benchmarks need MMT's two source checkpoints, not trained ones)."""

import os

import torch

from fastreid_mmt.modeling.meta_arch.mmt import build_base_network


def save_base_networks(cfg, folder, seeds=(1, 2)):
    """Save randomly initialised networks of ``cfg``'s architecture, one per seed, as stand-ins
    for source pre-training (tests, speed benchmarks). Returns their paths."""
    os.makedirs(folder, exist_ok=True)
    paths = []
    for seed in seeds:
        torch.manual_seed(seed)
        path = os.path.join(str(folder), f"random-seed{seed}.pth")
        torch.save({"model": build_base_network(cfg).state_dict()}, path)
        paths.append(path)
    return paths
