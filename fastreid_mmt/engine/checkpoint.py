"""Atomic checkpoints: a kill during a save never leaves an unreadable checkpoint or
``last_checkpoint`` tag."""

import os
import re

import torch

from fastreid.utils.checkpoint import Checkpointer


def _atomic_write(path, write):
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


# Periodic checkpoints fast-reid names ``model_<epoch>.pth`` (``model_final`` is never removed).
PERIODIC_NAME = re.compile(r"^model_\d{4,}\.pth$")


class AtomicCheckpointer(Checkpointer):
    """fast-reid's ``Checkpointer`` whose files appear whole or not at all (written to a
    temporary file, then renamed). Checkpoints hold tensors and plain Python numbers, so
    ``torch.load(weights_only=True)`` reads them.

    Args:
        keep (int): how many periodic ``model_XXXX.pth`` to keep, newest first (0: all). An
            MMT checkpoint holds four networks and Adam's moments (about 0.8 GB with ResNet-50)
            and MMT saves one per epoch, so keeping all of them can fill a disk mid-run.
    """

    def __init__(self, *args, keep=0, **kwargs):
        super().__init__(*args, **kwargs)
        self.keep = int(keep)

    def save(self, name, **kwargs):
        if not self.save_dir or not self.save_to_disk:
            return
        data = {"model": self.model.state_dict()}
        for key, obj in self.checkpointables.items():
            data[key] = obj.state_dict()
        data.update(kwargs)
        os.makedirs(self.save_dir, exist_ok=True)
        basename = f"{name}.pth"
        save_file = os.path.join(self.save_dir, basename)
        self.logger.info("Saving checkpoint to %s", save_file)
        _atomic_write(save_file, lambda f: torch.save(data, f))
        self.tag_last_checkpoint(basename)
        self.remove_old_checkpoints()

    def remove_old_checkpoints(self):
        """Delete periodic checkpoints beyond the ``keep`` newest (called after the new one is
        whole and tagged, so a kill at any point leaves a readable last checkpoint). Names are
        zero-padded epochs, so name order is age order."""
        if self.keep <= 0:
            return
        periodic = sorted(f for f in os.listdir(self.save_dir) if PERIODIC_NAME.match(f))
        for old in periodic[:-self.keep]:
            os.remove(os.path.join(self.save_dir, old))

    def tag_last_checkpoint(self, last_filename_basename):
        path = os.path.join(self.save_dir, "last_checkpoint")
        _atomic_write(path, lambda f: f.write(last_filename_basename.encode()))


def make_checkpointer_atomic(trainer, keep=0):
    """Replace a ``DefaultTrainer``'s checkpointer by an :class:`AtomicCheckpointer` holding
    the same model and checkpointables (call before the hooks are built)."""
    old = trainer.checkpointer
    trainer.checkpointer = AtomicCheckpointer(old.model, old.save_dir, save_to_disk=old.save_to_disk, keep=keep,
                                              **old.checkpointables)
