from . import msmt17  # registers MSMT17TrainVal in fast-reid's DATASET_REGISTRY
from .target import TargetSet, build_extract_loader, build_pseudo_label_loader, dataset_root, load_target_set
from .sampler import CameraAwarePKSampler
from .two_view import TargetImages, TwoViewDataset

__all__ = ["CameraAwarePKSampler", "TargetImages", "TargetSet", "TwoViewDataset", "build_extract_loader",
           "build_pseudo_label_loader", "dataset_root", "load_target_set"]
