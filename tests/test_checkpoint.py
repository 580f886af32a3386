"""Atomic checkpoints: a save killed half-way, or failing on a full disk, leaves the previous
files readable."""

import errno
import os

import pytest
import torch
from torch import nn

from fastreid.utils.checkpoint import Checkpointer

from fastreid_mmt.engine.atomic import DiskFullError, atomic_write, is_disk_full
from fastreid_mmt.engine.checkpoint import AtomicCheckpointer
from fastreid_mmt.engine.faults import ENV as FAULT_ENV
from fastreid_mmt.engine.faults import parse


def test_checkpoint_is_weights_only_loadable_and_tagged(tmp_path):
    model = nn.Linear(3, 2)
    opt = torch.optim.Adam(model.parameters())
    ckpt = AtomicCheckpointer(model, str(tmp_path), optimizer=opt)
    ckpt.save("model_0000", epoch=0)
    data = torch.load(tmp_path / "model_0000.pth", weights_only=True)
    assert data["epoch"] == 0 and "optimizer" in data
    assert (tmp_path / "last_checkpoint").read_text() == "model_0000.pth"
    assert Checkpointer(nn.Linear(3, 2), str(tmp_path)).has_checkpoint()


def test_kill_during_save_keeps_previous_checkpoint(tmp_path, monkeypatch):
    model = nn.Linear(3, 2)
    ckpt = AtomicCheckpointer(model, str(tmp_path))
    ckpt.save("model_0000", epoch=0)
    good = (tmp_path / "model_0000.pth").read_bytes()

    def dies_half_way(data, f):
        f.write(b"partial")
        raise KeyboardInterrupt  # stands for the process being killed mid-write

    monkeypatch.setattr(torch, "save", dies_half_way)
    with pytest.raises(KeyboardInterrupt):
        ckpt.save("model_0000", epoch=1)
    with pytest.raises(KeyboardInterrupt):
        ckpt.save("model_0001", epoch=1)
    monkeypatch.undo()
    assert (tmp_path / "model_0000.pth").read_bytes() == good
    assert not os.path.exists(tmp_path / "model_0001.pth")
    assert (tmp_path / "last_checkpoint").read_text() == "model_0000.pth"
    loaded = Checkpointer(nn.Linear(3, 2), str(tmp_path)).resume_or_load("", resume=True)
    assert loaded["epoch"] == 0
    assert [p.name for p in tmp_path.iterdir() if ".tmp-" in p.name] == []


def test_only_the_newest_periodic_checkpoints_are_kept(tmp_path):
    ckpt = AtomicCheckpointer(nn.Linear(3, 2), str(tmp_path), keep=2)
    for epoch in range(4):
        ckpt.save(f"model_{epoch:04d}", epoch=epoch)
    ckpt.save("model_final", epoch=4)
    assert sorted(p.name for p in tmp_path.glob("*.pth")) == ["model_0002.pth", "model_0003.pth", "model_final.pth"]
    assert (tmp_path / "last_checkpoint").read_text() == "model_final.pth"
    AtomicCheckpointer(nn.Linear(3, 2), str(tmp_path / "all")).save("model_0000")  # keep=0: nothing removed
    everything = AtomicCheckpointer(nn.Linear(3, 2), str(tmp_path / "all"))
    everything.save("model_0001")
    assert len(list((tmp_path / "all").glob("model_*.pth"))) == 2


def test_full_disk_fails_the_save_naming_folder_and_room_previous_intact(tmp_path, monkeypatch):
    model = nn.Linear(300, 200)
    ckpt = AtomicCheckpointer(model, str(tmp_path), keep=2)
    ckpt.save("model_0000", epoch=0)
    good = (tmp_path / "model_0000.pth").read_bytes()
    monkeypatch.setenv(FAULT_ENV, "enospc@write:model_0001.pth")
    with pytest.raises(DiskFullError) as err:
        ckpt.save("model_0001", epoch=1)
    message = str(err.value)
    assert f"no space left to write model_0001.pth in {tmp_path}: " in message and "MB free there" in message
    assert "about 0.2 MB needed" in message  # (300 x 200 + 200) float32 weights
    assert "previous checkpoint model_0000.pth and last_checkpoint are intact" in message
    assert "MMT.KEEP_CHECKPOINTS = 2" in message and "--resume" in message
    assert (tmp_path / "model_0000.pth").read_bytes() == good
    assert (tmp_path / "last_checkpoint").read_text() == "model_0000.pth"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last_checkpoint", "model_0000.pth"]


def test_torch_save_on_a_full_disk_is_recognised():
    """torch.save reports ENOSPC as a RuntimeError raised while handling the OSError."""
    try:
        try:
            raise OSError(errno.ENOSPC, "No space left on device")
        except OSError:
            raise RuntimeError("[enforce fail at inline_container.cc] unexpected pos 704 vs 598")
    except RuntimeError as err:
        assert is_disk_full(err)
    assert not is_disk_full(RuntimeError("other")) and not is_disk_full(OSError(errno.EACCES, "denied"))


def test_temporaries_of_killed_saves_are_removed_by_the_next_save(tmp_path):
    stale = [tmp_path / "model_0003.pth.tmp-999999", tmp_path / "model_final.pth.tmp-1"]
    for path in stale:
        path.write_bytes(b"partial checkpoint of a killed process")
    AtomicCheckpointer(nn.Linear(3, 2), str(tmp_path)).save("model_0000")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last_checkpoint", "model_0000.pth"]


def test_atomic_write_then_fault_spec_errors(tmp_path):
    target = tmp_path / "labels.npy"
    (tmp_path / "labels.npy.tmp-12345").write_bytes(b"half")
    atomic_write(str(target), lambda f: f.write(b"whole"))
    assert target.read_bytes() == b"whole" and [p.name for p in tmp_path.iterdir()] == ["labels.npy"]
    assert parse("kill@extracted:1#1") == ("kill", "extracted:1", 1)
    for bad in ("kill", "explode@x", "kill@", "kill@x#one"):
        with pytest.raises(ValueError, match=FAULT_ENV):
            parse(bad)
