"""Atomic checkpoints: a save killed half-way leaves the previous files readable."""

import os

import pytest
import torch
from torch import nn

from fastreid.utils.checkpoint import Checkpointer

from fastreid_mmt.engine.checkpoint import AtomicCheckpointer


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
