"""Datasets of unlabelled target images: one view for feature extraction, two independently
augmented views for MMT training."""

from torch.utils.data import Dataset

from fastreid.data.data_utils import read_image


class TargetImages(Dataset):
    """Target training images with their camera ids and **no identity label**.

    Args:
        img_paths (list[str]): image files.
        camids (list[int]): camera index of each image (known on a target domain).
        transform (callable): fast-reid transform applied to each PIL image.
    """

    def __init__(self, img_paths, camids, transform=None):
        if len(img_paths) != len(camids):
            raise ValueError(f"{len(img_paths)} images but {len(camids)} camera ids")
        self.img_paths = list(img_paths)
        self.camids = list(camids)
        self.transform = transform

    def __len__(self):
        return len(self.img_paths)

    def _load(self, index):
        try:
            return read_image(self.img_paths[index])
        except Exception as err:  # name the file (PIL's messages often do not)
            raise OSError(f"cannot read target image {self.img_paths[index]}: {err}") from err

    def __getitem__(self, index):
        img = self._load(index)
        return {"images": self.transform(img), "camids": self.camids[index], "index": index}


class TwoViewDataset(TargetImages):
    """Each image loaded once and augmented twice independently, with its pseudo label.

    Item: ``images`` (view 1, for net1/mean_net1), ``images2`` (view 2, for net2/mean_net2),
    ``targets`` (pseudo label), ``camids``, ``index`` (position in the full target set).

    Args:
        img_paths, camids: as :class:`TargetImages`, for the images that have a pseudo label.
        labels (list[int]): pseudo label of each image, in ``[0, num_classes)``.
        indices (list[int]): index of each image in the full target set.
        transform (callable): the training augmentation, drawn anew for each view.
    """

    def __init__(self, img_paths, camids, labels, indices, transform):
        super().__init__(img_paths, camids, transform)
        if len(labels) != len(self.img_paths) or len(indices) != len(self.img_paths):
            raise ValueError("labels, indices and images must have the same length")
        self.labels = [int(x) for x in labels]
        self.indices = [int(x) for x in indices]

    @property
    def num_classes(self):
        return len(set(self.labels))

    def __getitem__(self, index):
        img = self._load(index)
        return {
            "images": self.transform(img),
            "images2": self.transform(img),
            "targets": self.labels[index],
            "camids": self.camids[index],
            "index": self.indices[index],
        }
