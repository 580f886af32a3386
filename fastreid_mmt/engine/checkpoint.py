"""Atomic checkpoints: a kill during a save never leaves an unreadable checkpoint or
``last_checkpoint`` tag, and a full disk fails the save with a message saying how much room
it needs, the previous checkpoint intact."""

import glob
import os
import re

import torch

from fastreid.utils.checkpoint import Checkpointer

from .atomic import TMP_MARK, atomic_write, remove_stale_temporaries

# Periodic checkpoints fast-reid names ``model_<epoch>.pth`` (``model_final`` is never removed).
PERIODIC_NAME = re.compile(r"^model_\d{4,}\.pth$")


def state_nbytes(obj):
    """Bytes of the tensors in a (nested) checkpoint dict: about its size on disk."""
    if isinstance(obj, torch.Tensor):
        return obj.numel() * obj.element_size()
    if isinstance(obj, dict):
        return sum(state_nbytes(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return sum(state_nbytes(v) for v in obj)
    return 0


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
        """Write ``<save_dir>/<name>.pth``, tag it in ``last_checkpoint``, drop old ones.

        Raises:
            DiskFullError: no room for the checkpoint; nothing already on disk was changed.
        """
        if not self.save_dir or not self.save_to_disk:
            return
        data = {"model": self.model.state_dict()}
        for key, obj in self.checkpointables.items():
            data[key] = obj.state_dict()
        data.update(kwargs)
        os.makedirs(self.save_dir, exist_ok=True)
        # A kill during an earlier save left its temporary file: as large as a checkpoint.
        remove_stale_temporaries(os.path.join(glob.escape(self.save_dir), "*.pth" + TMP_MARK + "*"))
        basename = f"{name}.pth"
        save_file = os.path.join(self.save_dir, basename)
        self.logger.info("Saving checkpoint to %s", save_file)
        atomic_write(save_file, lambda f: torch.save(data, f), state_nbytes(data), self._disk_full_advice())
        self.tag_last_checkpoint(basename)
        self.remove_old_checkpoints()

    def _disk_full_advice(self):
        last = self.get_checkpoint_file() if self.has_checkpoint() else ""
        kept = f" (MMT.KEEP_CHECKPOINTS = {self.keep} periodic checkpoints are kept)" if self.keep else ""
        if not last:
            return f"No checkpoint was saved before this one: free space{kept} and rerun."
        return (f"The previous checkpoint {os.path.basename(last)} and last_checkpoint are intact: free space{kept}, "
                f"then rerun with --resume to continue from it.")

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
        atomic_write(path, lambda f: f.write(last_filename_basename.encode()), len(last_filename_basename),
                     self._disk_full_advice())


def make_checkpointer_atomic(trainer, keep=0):
    """Replace a ``DefaultTrainer``'s checkpointer by an :class:`AtomicCheckpointer` holding
    the same model and checkpointables (call before the hooks are built)."""
    old = trainer.checkpointer
    trainer.checkpointer = AtomicCheckpointer(old.model, old.save_dir, save_to_disk=old.save_to_disk, keep=keep,
                                              **old.checkpointables)

