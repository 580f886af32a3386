"""Atomic checkpoints: a kill during a save never leaves an unreadable checkpoint or
``last_checkpoint`` tag."""

import os

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


class AtomicCheckpointer(Checkpointer):
    """fast-reid's ``Checkpointer`` whose files appear whole or not at all (written to a
    temporary file, then renamed). Checkpoints hold tensors and plain Python numbers, so
    ``torch.load(weights_only=True)`` reads them."""

    def save(self, name, **kwargs):
        if not self.save_dir or not self.save_to_disk:
            return
        data = {"model": self.model.state_dict()}
        for key, obj in self.checkpointables.items():
            data[key] = obj.state_dict()
        data.update(kwargs)
        basename = f"{name}.pth"
        save_file = os.path.join(self.save_dir, basename)
        self.logger.info("Saving checkpoint to %s", save_file)
        _atomic_write(save_file, lambda f: torch.save(data, f))
        self.tag_last_checkpoint(basename)

    def tag_last_checkpoint(self, last_filename_basename):
        path = os.path.join(self.save_dir, "last_checkpoint")
        _atomic_write(path, lambda f: f.write(last_filename_basename.encode()))


def make_checkpointer_atomic(trainer):
    """Replace a ``DefaultTrainer``'s checkpointer by an :class:`AtomicCheckpointer` holding
    the same model and checkpointables (call before the hooks are built)."""
    old = trainer.checkpointer
    trainer.checkpointer = AtomicCheckpointer(old.model, old.save_dir, save_to_disk=old.save_to_disk,
                                              **old.checkpointables)
