"""Batched feature extraction of image files with fast-reid's test transforms."""

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from fastreid.data.data_utils import read_image


class ImageReadError(OSError):
    """An image file that cannot be decoded; the message names it."""


class ImageFiles(Dataset):
    """Image files, each read with fast-reid's ``read_image`` and transformed.

    An unreadable file is not raised inside the (possibly worker) process: its item carries the
    reason instead, and :func:`extract_features` raises in the main process, naming the file.

    Args:
        paths (Sequence[str]): image files.
        transform (callable): PIL image -> ``[3, H, W]`` float tensor (0-255).
    """

    def __init__(self, paths, transform):
        self.paths = list(paths)
        self.transform = transform

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, index):
        try:
            return self.transform(read_image(self.paths[index])), None
        except Exception as err:  # PIL's messages often do not name the file: keep the reason
            return None, f"{type(err).__name__}: {err}"


def collate_images(items):
    """Stack the readable images of a batch; keep the failures as ``(position, reason)``.

    Returns:
        tuple: ``[b, 3, H, W]`` images (None when none was readable) and the failures.
    """
    images = [image for image, _ in items if image is not None]
    failures = [(i, reason) for i, (_, reason) in enumerate(items) if reason is not None]
    return (torch.stack(images) if images else None), failures


@torch.no_grad()
def extract_features(model, paths, transform, batch_size, device, num_workers=0, key="images"):
    """L2-normalised features of image files, in the order of ``paths``.

    Args:
        model (nn.Module): ``[B, 3, H, W]`` 0-255 images -> ``[B, C]`` features, in eval mode
            on ``device`` (see :func:`~fastreid_mmt.retrieval.weights.load_feature_model`).
        paths (Sequence[str]): image files.
        transform (callable): fast-reid's ``build_transforms(cfg, is_train=False)``.
        batch_size (int): images per forward.
        device (str or torch.device): where the model is.
        num_workers (int): data loader processes decoding the images.
        key (str): the option that named the images (for messages).

    Returns:
        Tensor: ``[N, C]`` float32 features on the CPU, each row of unit L2 norm.

    Raises:
        ImageReadError: an unreadable image (its path and the decoder's reason).
        ValueError: no image.
    """
    if not paths:
        raise ValueError(f"{key}: no image to extract features from")
    loader = DataLoader(ImageFiles(paths, transform), batch_size=int(batch_size), shuffle=False,
                        num_workers=int(num_workers), collate_fn=collate_images)
    chunks, start = [], 0
    for images, failures in loader:
        if failures:
            position, reason = failures[0]
            others = f" (and {len(failures) - 1} more in the same batch)" if len(failures) > 1 else ""
            raise ImageReadError(f"{key}: cannot read image {paths[start + position]}: {reason}{others}")
        start += images.shape[0]
        feats = model(images.to(device))
        chunks.append(F.normalize(feats.float(), dim=1).cpu())
    return torch.cat(chunks)
