"""The fast-reid 1.4.0 compatibility shims (``fastreid_mmt/compat.py``), one section per shim.

For each shim: (a) the break still exists in *unpatched* fast-reid, shown in a fresh process
that imports fastreid without ever importing ``fastreid_mmt`` (so the day an upgrade fixes a
break, its test says so and the shim can go), and (b) the patched path works in this process,
where ``conftest.py`` has imported ``fastreid_mmt``.

The unpatched checks run in the background (see ``_FORKING_RUNNER``), started the first time a
test asks for one; each test waits for its own check's JSON report and asserts on it here.

Last: fast-reid's ``Checkpointer`` under torch's weights-only ``torch.load`` default (no
shim needed: the test shows the round trip works and why).
"""

import collections
import collections.abc
import inspect
import json
import logging
import os
import pickle
import subprocess
import sys
import textwrap
import time
import warnings

import numpy as np
import pytest
import torch

import fastreid_mmt
from fastreid_mmt import compat

from .conftest import scratch_dir

CPU_ONLY = not torch.cuda.is_available()
needs_cpu_only = pytest.mark.skipif(not CPU_ONLY, reason="this shim only acts on a machine without CUDA")
STEPS = 4  # training steps on the fixed batch (3 optimizer updates are seen by the 4th loss)


# ------------------------------------------------------------------------------------------
# Helpers shared by this process and the unpatched interpreters: they only use torch and
# fastreid (``torch`` is imported first in the children too), import fastreid inside their
# bodies, and travel to the children as source
# (``inspect.getsource``), so both sides train exactly the same thing.
# ------------------------------------------------------------------------------------------
def build_baseline(extra=()):
    """fast-reid's own ``Baseline``: ResNet-18 backbone, 512-d features, 64x32 input, no
    pretrained weights, on the CPU, cross-entropy only, Adam, 4 classes."""
    import torch
    from fastreid.config import get_cfg
    from fastreid.modeling.meta_arch import build_model

    cfg = get_cfg()
    cfg.merge_from_list([
        "MODEL.META_ARCHITECTURE", "Baseline", "MODEL.DEVICE", "cpu",
        "MODEL.BACKBONE.NAME", "build_resnet_backbone", "MODEL.BACKBONE.DEPTH", "18x",
        "MODEL.BACKBONE.FEAT_DIM", 512, "MODEL.BACKBONE.PRETRAIN", False,
        "MODEL.HEADS.NUM_CLASSES", 4, "MODEL.LOSSES.NAME", ("CrossEntropyLoss",),
        "INPUT.SIZE_TRAIN", [64, 32], "INPUT.SIZE_TEST", [64, 32],
        "SOLVER.OPT", "Adam", "SOLVER.BASE_LR", 1e-3, "SOLVER.AMP.ENABLED", False,
    ] + list(extra))
    torch.manual_seed(0)
    return build_model(cfg), cfg


def fixed_batches():
    """The same batch forever: 8 random 64x32 images, 4 identities x 2."""
    import torch

    generator = torch.Generator().manual_seed(0)
    images = torch.rand(8, 3, 64, 32, generator=generator) * 255
    targets = torch.arange(4).repeat_interleave(2)
    while True:
        # Baseline.preprocess_image normalises the images in place: hand out a fresh copy.
        yield {"images": images.clone(), "targets": targets.clone()}


def train_steps(model, optimizer, param_wrapper, steps, trainer_cls=None, batches=None):
    """Run ``steps`` steps of fast-reid's own ``SimpleTrainer.run_step`` (zero_grad, backward,
    step); returns the ``total_loss`` each step logged (computed before its update)."""
    from fastreid.engine.train_loop import SimpleTrainer
    from fastreid.utils.events import EventStorage

    trainer = (trainer_cls or SimpleTrainer)(model, batches or fixed_batches(), optimizer, param_wrapper)
    losses = []
    with EventStorage(0) as storage:
        for step in range(steps):
            storage.iter = trainer.iter = step
            trainer.run_step()
            losses.append(storage.latest()["total_loss"][0])
    return losses


def snapshot(model):
    return {name: param.detach().clone() for name, param in model.named_parameters()}


def changed_parameters(model, before):
    import torch

    return sorted(name for name, param in model.named_parameters() if not torch.equal(param.detach(), before[name]))


class TinyRegressor(torch.nn.Module):
    """A fast-reid-style model (a dict of losses from a dict batch), small enough for AMP tests."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.fc = torch.nn.Linear(4, 1)

    def forward(self, batch):
        return {"loss_mse": torch.nn.functional.mse_loss(self.fc(batch["x"]), batch["y"])}


def tiny_batches():
    import torch

    x = torch.randn(16, 4, generator=torch.Generator().manual_seed(1))
    while True:
        yield {"x": x, "y": x.sum(1, keepdim=True)}


# ------------------------------------------------------------------------------------------
# Unpatched fast-reid: one fresh process per break
# ------------------------------------------------------------------------------------------
# Every check below runs in a process of its own that never imported fastreid or
# fastreid_mmt. A fresh Python spends seconds of CPU importing torch, torchvision,
# scikit-learn and faiss: too much, once per check, on 2 cores. So one fresh interpreter
# (``subprocess.Popen([sys.executable, "-c", _FORKING_RUNNER, ...])``) imports those
# third-party libraries, never fastreid, then forks one child per check: each child imports
# fastreid from scratch (a tenth of a second), runs its check and reports ``RESULT`` as JSON
# through a pipe; the runner writes it to ``<check>.json`` as soon as it is done, so a test
# waits only for its own check. The assertions stay in the tests.
_FORKING_RUNNER = r'''
import json, os, sys, traceback
import numpy, PIL.Image, sklearn.metrics, torch, torchvision  # fast-reid's heavy imports
try:
    import faiss
except ImportError:
    pass
assert not any(m.split(".")[0] in ("fastreid", "fastreid_mmt") for m in sys.modules)
with open(sys.argv[1]) as f:
    checks = json.load(f)
for name, source in checks.items():
    sys.stdout.flush()
    sys.stderr.flush()
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the check: a fresh fastreid in a process of its own
        os.close(read_end)
        try:
            namespace = {"__name__": "unpatched_" + name}
            exec(compile(source, "<unpatched " + name + ">", "exec"), namespace)
            report = {"result": namespace["RESULT"]}
        except BaseException:
            report = {"traceback": traceback.format_exc()}
        report["fastreid_mmt_imported"] = any(m.split(".")[0] == "fastreid_mmt" for m in sys.modules)
        with os.fdopen(write_end, "w") as pipe:
            pipe.write(json.dumps(report, default=str))
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end) as pipe:
        text = pipe.read()
    status = os.waitpid(pid, 0)[1]
    if not text:
        text = json.dumps({"traceback": "the check's process died: wait status %d" % status})
    with open(os.path.join(sys.argv[2], name + ".json.tmp"), "w") as f:
        f.write(text)
    os.replace(os.path.join(sys.argv[2], name + ".json.tmp"), os.path.join(sys.argv[2], name + ".json"))
'''

_CHECK_HEAD = '''
import sys
import torch
def caught(fn, *args, **kwargs):
    """Call fn; describe the exception it raised (SystemExit included), or None."""
    try:
        fn(*args, **kwargs)
    except BaseException as exc:
        return {"error": type(exc).__name__, "message": str(exc),
                "name": getattr(exc, "name", None), "code": getattr(exc, "code", None)}
    return {"error": None}
torch.set_num_threads(1)  # as in the tests: see single_torch_thread
RESULT = {}
STEPS = %d
''' % STEPS

# Gets an unpatched process past the two import-time breaks (each shown by its own check) by
# hand, so that the later breaks can be reached at all. Deliberately not fastreid_mmt.
_PAST_IMPORT_BREAKS = '''
import collections, collections.abc, sys, types
for _name in ("Mapping", "MutableMapping", "Sequence", "Iterable"):
    setattr(collections, _name, getattr(collections.abc, _name))
_six = types.ModuleType("torch._six")
_six.string_classes = (str, bytes)
sys.modules["torch._six"] = _six
'''

_UNPATCHED = {
    # The torch._six break is worked around so that the import reaches the collections line.
    "collections_abc": ((), '''
import importlib, types
_six = types.ModuleType("torch._six"); _six.string_classes = (str, bytes); sys.modules["torch._six"] = _six
import collections
RESULT["alias_present"] = hasattr(collections, "Mapping")
RESULT["fastreid.data"] = caught(importlib.import_module, "fastreid.data")
RESULT["fastreid.evaluation"] = caught(importlib.import_module, "fastreid.evaluation")
'''),
    # The collections break is worked around so that the import reaches the torch._six line.
    "torch_six": ((), '''
import collections, collections.abc, importlib, importlib.util
for _name in ("Mapping", "MutableMapping", "Sequence", "Iterable"):
    setattr(collections, _name, getattr(collections.abc, _name))
import torch
RESULT["torch_six_exists"] = importlib.util.find_spec("torch._six") is not None
RESULT["fastreid.data"] = caught(importlib.import_module, "fastreid.data")
'''),
    "faiss_long_ptr": ((), '''
import faiss, torch
RESULT["has_old_name"] = hasattr(faiss, "cast_integer_to_long_ptr")
RESULT["has_new_name"] = hasattr(faiss, "cast_integer_to_idx_t_ptr")
from fastreid.utils import faiss_utils
RESULT["long_ptr"] = caught(faiss_utils.swig_ptr_from_LongTensor, torch.zeros(4, dtype=torch.int64))
'''),
    "dataloaderx": ((), _PAST_IMPORT_BREAKS + '''
import torch
from fastreid.data.data_utils import DataLoaderX
RESULT["cuda"] = torch.cuda.is_available()
RESULT["build"] = caught(DataLoaderX, 0, dataset=[{"x": torch.zeros(2)}] * 4, batch_size=2)
'''),
    "contiguous_params": ((build_baseline, fixed_batches, train_steps, snapshot, changed_parameters),
                          _PAST_IMPORT_BREAKS + '''
import inspect
import fastreid.solver
from fastreid.engine import DefaultTrainer
RESULT["default_contiguous"] = inspect.signature(fastreid.solver.build_optimizer).parameters["contiguous"].default
model, cfg = build_baseline()
optimizer, param_wrapper = DefaultTrainer.build_optimizer(cfg, model)
RESULT["param_wrapper"] = type(param_wrapper).__name__
before = snapshot(model)
RESULT["losses"] = train_steps(model, optimizer, param_wrapper, STEPS)
RESULT["changed"] = changed_parameters(model, before)
RESULT["num_params"] = len(before)
# the mechanism: zero_grad() set the flat buffers' grads to None, so step() skipped them
RESULT["flat_grads_none"] = all(p.grad is None for g in optimizer.param_groups for p in g["params"])
'''),
    "amp": ((TinyRegressor, tiny_batches), _PAST_IMPORT_BREAKS + '''
import warnings
import torch
from fastreid.engine.train_loop import AMPTrainer
from fastreid.utils.events import EventStorage
def build_and_step():
    model = TinyRegressor()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # GradScaler: deprecated alias / "CUDA not available"
        trainer = AMPTrainer(model, tiny_batches(), torch.optim.SGD(model.parameters(), lr=0.05), None)
    with EventStorage(0):
        trainer.run_step()
RESULT["cuda"] = torch.cuda.is_available()
RESULT["step"] = caught(build_and_step)
'''),
    # Never let the unpatched compile succeed: it would write into the installed package.
    # PATH is an empty folder (no make), then a folder holding only make (no python3).
    "rank_compile": ((), _PAST_IMPORT_BREAKS + '''
import os, shutil, tempfile
from fastreid.config import get_cfg
from fastreid.evaluation import rank_cylib
from fastreid.evaluation.reid_evaluation import ReidEvaluator
package = os.path.dirname(rank_cylib.__file__)
def built():
    return sorted(f for f in os.listdir(package) if f.endswith((".so", ".pyd", ".c")))
make = shutil.which("make")
work = tempfile.mkdtemp(prefix="rank-", dir=os.getcwd())  # the runner's pytest tmp folder
os.chdir(work)
empty, only_make = os.path.join(work, "empty"), os.path.join(work, "only-make")
os.mkdir(empty)
os.mkdir(only_make)
if make:
    os.symlink(make, os.path.join(only_make, "make"))
else:  # no make here at all: a make that fails the way a missing python3 makes it fail
    with open(os.path.join(only_make, "make"), "w") as f:
        f.write("#!/bin/sh\\necho 'python3: not found' >&2\\nexit 2\\n")
    os.chmod(os.path.join(only_make, "make"), 0o755)
RESULT["real_make"] = bool(make)
RESULT["built_before"] = built()
os.environ["PATH"] = empty
RESULT["no_make"] = caught(ReidEvaluator, get_cfg(), 1)
os.environ["PATH"] = only_make
RESULT["no_python3"] = caught(ReidEvaluator, get_cfg(), 1)
RESULT["built_after"] = built()
'''),
    # DefaultTrainer.__init__'s own call when comm.get_world_size() > 1, on a CPU model, in
    # a one-process gloo group (enough for torch to check the arguments)
    "ddp_on_cpu": ((), _PAST_IMPORT_BREAKS + '''
import os, tempfile, warnings
import torch.distributed as dist
from fastreid.engine import defaults
store = os.path.join(tempfile.mkdtemp(dir=os.getcwd()), "store")  # in the runner's pytest tmp folder
dist.init_process_group("gloo", init_method="file://" + store, rank=0, world_size=1)
with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # broadcast_buffers is deprecated
    RESULT["wrap"] = caught(defaults.DistributedDataParallel, torch.nn.Linear(4, 1), device_ids=[0],
                            broadcast_buffers=False)
dist.destroy_process_group()
'''),
}


def _check_source(helpers, body):
    sources = "\n\n".join(textwrap.dedent(inspect.getsource(helper)) for helper in helpers)
    return _CHECK_HEAD + sources + "\n" + body


class _UnpatchedRun:
    """The forking runner, started in the background; ``result(name)`` waits for one check."""

    def __init__(self, work):
        self.work = work
        checks = {name: _check_source(helpers, body) for name, (helpers, body) in _UNPATCHED.items()}
        (work / "checks.json").write_text(json.dumps(checks))
        (work / "results").mkdir()
        self.stdout, self.stderr = open(work / "stdout.txt", "w"), open(work / "stderr.txt", "w")
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _FORKING_RUNNER, str(work / "checks.json"), str(work / "results")],
            cwd=str(work), env=dict(os.environ), stdout=self.stdout, stderr=self.stderr)

    def output(self):
        return "{}\n{}".format((self.work / "stdout.txt").read_text()[-3000:],
                               (self.work / "stderr.txt").read_text()[-6000:])

    def result(self, name, timeout=300):
        path = self.work / "results" / f"{name}.json"
        deadline = time.monotonic() + timeout
        while not path.exists():
            if self.proc.poll() is not None and not path.exists():
                pytest.fail(f"the unpatched runner ended (rc {self.proc.returncode}) without a result "
                            f"for {name!r}:\n{self.output()}")
            if time.monotonic() > deadline:
                pytest.fail(f"no result for unpatched check {name!r} after {timeout} s:\n{self.output()}")
            time.sleep(0.05)
        report = json.loads(path.read_text())
        assert "result" in report, f"unpatched check {name!r} raised:\n{report['traceback']}\n{self.output()}"
        assert report["fastreid_mmt_imported"] is False, f"unpatched check {name!r} imported fastreid_mmt"
        return report["result"]

    def close(self):
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            pass
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            self.stdout.close()
            self.stderr.close()


@pytest.fixture(scope="module")
def unpatched(tmp_path_factory):
    """All unpatched checks, started on first use (they run while other tests do)."""
    with scratch_dir(tmp_path_factory, "unpatched") as folder:
        run = _UnpatchedRun(folder)
        yield run
        run.close()


def unpatched_result(unpatched, name):
    return unpatched.result(name)


@pytest.fixture(autouse=True)
def single_torch_thread():
    """One intra-op thread: the tiny models here train several times faster (and burn far
    less CPU) than with threads spinning on 2 shared cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_every_shim_is_applied_once_and_has_a_test_here():
    names = [shim.__name__ for shim in compat._SHIMS]
    assert compat.apply() == names  # conftest imported fastreid_mmt: all applied, in order
    assert compat.apply() == names  # idempotent
    assert fastreid_mmt.compat is compat
    tested = {name[len("test_"):].split("__")[0] for name in globals() if name.startswith("test_")}
    missing = [name for name in names if name.replace("_shim_", "", 1) not in tested]
    assert not missing, f"shims without a test_<shim>__... test: {missing}"


# ------------------------------------------------------------------------------------------
# collections ABC aliases
# ------------------------------------------------------------------------------------------
def test_collections_abc__break_still_exists_unpatched(unpatched):
    result = unpatched_result(unpatched, "collections_abc")
    assert result["alias_present"] is False
    for module in ("fastreid.data", "fastreid.evaluation"):
        assert result[module]["error"] == "ImportError", result[module]
        assert "cannot import name 'Mapping' from 'collections'" in result[module]["message"]


def test_collections_abc__patched():
    import fastreid.data  # noqa: F401
    from fastreid.data.build import fast_batch_collator
    from fastreid.evaluation.testing import flatten_results_dict

    assert collections.Mapping is collections.abc.Mapping
    # both users of the alias: the batch collator (dict samples) and the results flattener
    batch = fast_batch_collator([{"images": torch.ones(2), "targets": 1}, {"images": torch.zeros(2), "targets": 2}])
    assert torch.equal(batch["images"], torch.tensor([[1.0, 1.0], [0.0, 0.0]]))
    assert torch.equal(batch["targets"], torch.tensor([1, 2]))
    assert flatten_results_dict({"Market1501": {"mAP": 50.0, "Rank-1": 70.0}, "lr": 0.1}) == {
        "Market1501/mAP": 50.0, "Market1501/Rank-1": 70.0, "lr": 0.1}


# ------------------------------------------------------------------------------------------
# torch._six
# ------------------------------------------------------------------------------------------
def test_torch_six__break_still_exists_unpatched(unpatched):
    result = unpatched_result(unpatched, "torch_six")
    assert result["torch_six_exists"] is False
    assert result["fastreid.data"]["error"] == "ModuleNotFoundError", result["fastreid.data"]
    assert result["fastreid.data"]["name"] == "torch._six"


def test_torch_six__patched():
    import torch._six
    from fastreid.data.build import fast_batch_collator

    assert torch._six.string_classes == (str, bytes)
    # the one use: image paths (strings) are collated into a plain list
    batch = fast_batch_collator([{"img_paths": "a.jpg", "camids": 0}, {"img_paths": "b.jpg", "camids": 3}])
    assert batch["img_paths"] == ["a.jpg", "b.jpg"]
    assert torch.equal(batch["camids"], torch.tensor([0, 3]))


# ------------------------------------------------------------------------------------------
# faiss.cast_integer_to_long_ptr
# ------------------------------------------------------------------------------------------
def test_faiss_long_ptr__break_still_exists_unpatched(unpatched):
    result = unpatched_result(unpatched, "faiss_long_ptr")
    assert result["has_old_name"] is False and result["has_new_name"] is True
    assert result["long_ptr"]["error"] == "AttributeError", result["long_ptr"]
    assert "cast_integer_to_long_ptr" in result["long_ptr"]["message"]


def test_faiss_long_ptr__patched():
    faiss = pytest.importorskip("faiss")
    from fastreid.utils.faiss_utils import swig_ptr_from_FloatTensor, swig_ptr_from_LongTensor

    assert faiss.cast_integer_to_long_ptr is faiss.cast_integer_to_idx_t_ptr
    # fast-reid's pointer helpers drive a real faiss search that writes into torch tensors
    # (search_index_pytorch itself calls torch.cuda.synchronize, so do its three lines here)
    generator = torch.Generator().manual_seed(0)
    base, queries = torch.randn(50, 8, generator=generator), torch.randn(5, 8, generator=generator)
    index = faiss.IndexFlatL2(8)
    index.add(base.numpy())
    distances = torch.empty(5, 3, dtype=torch.float32)
    neighbours = torch.full((5, 3), -1, dtype=torch.int64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # fast-reid uses the deprecated Tensor.storage()
        index.search_c(5, swig_ptr_from_FloatTensor(queries), 3, swig_ptr_from_FloatTensor(distances),
                       swig_ptr_from_LongTensor(neighbours))
    expected = torch.cdist(queries, base).topk(3, largest=False)
    assert torch.equal(neighbours, expected.indices)
    torch.testing.assert_close(distances, expected.values ** 2, rtol=1e-4, atol=1e-4)


# ------------------------------------------------------------------------------------------
# DataLoaderX without CUDA
# ------------------------------------------------------------------------------------------
@needs_cpu_only
def test_dataloaderx_without_cuda__break_still_exists_unpatched(unpatched):
    result = unpatched_result(unpatched, "dataloaderx")
    assert result["cuda"] is False
    assert result["build"]["error"] in ("RuntimeError", "AssertionError"), result["build"]  # no driver / no CUDA build


@needs_cpu_only
def test_dataloaderx_without_cuda__patched(tmp_path):
    from PIL import Image
    from fastreid.config import get_cfg
    from fastreid.data import CommDataset, build_reid_test_loader, build_reid_train_loader, samplers
    from fastreid.data.data_utils import DataLoaderX
    from fastreid.data.transforms import build_transforms

    items = []
    for pid in range(3):
        for cam in range(2):
            path = tmp_path / f"{pid:04d}_c{cam + 1}.jpg"
            Image.new("RGB", (32, 64), (40 * pid, 100 * cam, 50)).save(path)
            items.append((str(path), pid, cam))
    cfg = get_cfg()
    cfg.merge_from_list(["INPUT.SIZE_TEST", [64, 32]])
    transforms = build_transforms(cfg, is_train=False)

    # fast-reid's own builders, called the way DefaultTrainer calls them
    train_loader = build_reid_train_loader(
        train_set=CommDataset(items, transforms, relabel=True), sampler=samplers.TrainingSampler(len(items)),
        total_batch_size=4, num_workers=0)
    assert isinstance(train_loader, DataLoaderX) and train_loader.pin_memory is False
    batches = iter(train_loader)  # TrainingSampler is infinite: take two batches
    for _ in range(2):
        batch = next(batches)
        assert batch["images"].shape == (4, 3, 64, 32) and batch["images"].device.type == "cpu"
        assert set(batch["targets"].tolist()) <= {0, 1, 2}

    test_loader, num_query = build_reid_test_loader(
        test_set=CommDataset(items, transforms, relabel=False), test_batch_size=4, num_query=2, num_workers=1)
    assert isinstance(test_loader, DataLoaderX) and num_query == 2
    for _ in range(2):  # iterable twice (one worker process), every image once, in order
        batches = list(test_loader)
        assert [len(b["img_paths"]) for b in batches] == [4, 2]
        assert sum((b["img_paths"] for b in batches), []) == [item[0] for item in items]
        assert torch.cat([b["targets"] for b in batches]).tolist() == [item[1] for item in items]
    test_loader.shutdown()  # called by fast-reid's inference loop: a no-op now


# ------------------------------------------------------------------------------------------
# ContiguousParams: training that silently does nothing
# ------------------------------------------------------------------------------------------
def test_contiguous_params__break_still_exists_unpatched(unpatched):
    result = unpatched_result(unpatched, "contiguous_params")
    assert result["default_contiguous"] is True
    assert result["param_wrapper"] == "ContiguousParams"
    assert result["changed"] == [], "unpatched fast-reid trained: the ContiguousParams break is gone"
    assert result["flat_grads_none"] is True
    losses = result["losses"]
    assert len(losses) == STEPS and max(losses) - min(losses) < 1e-5 * abs(losses[0]), losses  # flat


def test_contiguous_params__patched_training_changes_weights_and_lowers_loss():
    from fastreid.engine import DefaultTrainer
    from fastreid.solver import build_optimizer
    from fastreid.utils.params import ContiguousParams

    assert inspect.signature(build_optimizer).parameters["contiguous"].default is False
    model, cfg = build_baseline()
    optimizer, param_wrapper = DefaultTrainer.build_optimizer(cfg, model)
    assert not isinstance(param_wrapper, ContiguousParams)
    before = snapshot(model)
    losses = train_steps(model, optimizer, param_wrapper, STEPS)
    changed = changed_parameters(model, before)
    trainable = sorted(name for name, param in model.named_parameters() if param.requires_grad)
    assert changed == trainable, sorted(set(trainable) - set(changed))  # every trainable weight moved
    assert "backbone.conv1.weight" in changed and "heads.weight" in changed
    assert losses[-1] < 0.9 * losses[0], losses
    assert all(later < earlier for earlier, later in zip(losses, losses[1:])), losses


# ------------------------------------------------------------------------------------------
# AMP requested without CUDA
# ------------------------------------------------------------------------------------------
@needs_cpu_only
def test_amp_without_cuda__break_still_exists_unpatched(unpatched):
    result = unpatched_result(unpatched, "amp")
    assert result["cuda"] is False
    assert result["step"]["error"] == "AssertionError", result["step"]
    assert "CUDA is required" in result["step"]["message"]


@needs_cpu_only
def test_amp_without_cuda__patched_warns_and_trains_in_fp32():
    from fastreid.engine.train_loop import AMPTrainer

    model = TinyRegressor()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    before = snapshot(model)
    with pytest.warns(UserWarning, match="CUDA is not available"):
        trainer = AMPTrainer(model, tiny_batches(), optimizer, None)
    assert trainer.grad_scaler is None  # what fast-reid's LRScheduler hook checks
    losses = train_steps(model, optimizer, None, STEPS, trainer_cls=lambda *args: trainer)
    assert changed_parameters(model, before) == ["fc.bias", "fc.weight"]
    assert all(later < earlier for earlier, later in zip(losses, losses[1:])), losses
    assert all(p.dtype == torch.float32 for p in model.parameters())

    # and fast-reid's Baseline, as DefaultTrainer builds it when SOLVER.AMP.ENABLED is set
    from fastreid.engine import DefaultTrainer

    baseline, cfg = build_baseline(["SOLVER.AMP.ENABLED", True])
    optimizer, param_wrapper = DefaultTrainer.build_optimizer(cfg, baseline)
    with pytest.warns(UserWarning, match="CUDA is not available"):
        trainer = AMPTrainer(baseline, fixed_batches(), optimizer, param_wrapper)
    before = snapshot(baseline)
    losses = train_steps(baseline, optimizer, param_wrapper, 2, trainer_cls=lambda *args: trainer)
    assert "backbone.conv1.weight" in changed_parameters(baseline, before)
    assert losses[1] < losses[0], losses


# ------------------------------------------------------------------------------------------
# The Cython ranking compile (sys.exit on failure)
# ------------------------------------------------------------------------------------------
def test_rank_cython_compile__break_still_exists_unpatched(unpatched):
    result = unpatched_result(unpatched, "rank_compile")
    assert result["no_make"]["error"] == "FileNotFoundError", result["no_make"]  # no make on PATH: crash
    assert result["no_python3"]["error"] == "SystemExit", result["no_python3"]  # make fails: sys.exit(1)
    assert result["no_python3"]["code"] == 1
    assert result["built_before"] == result["built_after"] == []  # and nothing was written


def _evaluate(evaluator, features, pids, camids, batch_size=5):
    evaluator.reset()
    for start in range(0, len(pids), batch_size):
        stop = start + batch_size
        evaluator.process({"targets": torch.tensor(pids[start:stop]), "camids": torch.tensor(camids[start:stop])},
                          features[start:stop])
    return evaluator.evaluate()


def test_rank_cython_compile__patched_no_exit_and_python_ranking_is_right(tmp_path, monkeypatch, caplog):
    from fastreid.config import get_cfg
    from fastreid.evaluation import ReidEvaluator, rank

    empty = tmp_path / "empty-path"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))  # no make, no python3: the unpatched call would exit
    monkeypatch.chdir(tmp_path)
    cfg = get_cfg()
    cfg.merge_from_list(["TEST.METRIC", "cosine"])
    with caplog.at_level(logging.INFO, logger="fastreid_mmt.compat"):
        evaluator = ReidEvaluator(cfg, num_query=2)  # __init__ calls _compile_dependencies
        ReidEvaluator._compile_dependencies(evaluator)
    assert "using its Python ranking" in caplog.text
    assert rank.IS_CYTHON_AVAI is False  # so evaluate_rank takes fast-reid's evaluate_py

    # 2 queries (pids 0, 1; camera 0), then 10 gallery images (pids 0-9; camera 1); one-hot
    # features per identity. Perfect features: mAP 100, Rank-1 100.
    pids = [0, 1] + list(range(10))
    camids = [0, 0] + [1] * 10
    features = torch.eye(16)[pids]
    results = _evaluate(evaluator, features, pids, camids)
    for key in ("Rank-1", "Rank-5", "Rank-10", "mAP", "mINP", "metric"):
        assert results[key] == pytest.approx(100.0), (key, results)

    # Now query 1's match ranks 2nd: gallery pid 2 gets exactly query 1's feature, the true
    # pid-1 image only a 0.8 cosine. Query 0: AP 1; query 1: AP 1/2, INP 1/2, miss at rank 1.
    features = features.clone()
    features[2 + 2] = torch.eye(16)[1]
    features[2 + 1] = 0.8 * torch.eye(16)[1] + 0.6 * torch.eye(16)[15]
    results = _evaluate(evaluator, features, pids, camids)
    assert results["mAP"] == pytest.approx(75.0)
    assert results["mINP"] == pytest.approx(75.0)
    assert results["Rank-1"] == pytest.approx(50.0)
    assert results["Rank-5"] == pytest.approx(100.0)
    assert results["metric"] == pytest.approx((75.0 + 50.0) / 2)


# ------------------------------------------------------------------------------------------
# DistributedDataParallel around a CPU model
# ------------------------------------------------------------------------------------------
def test_ddp_on_cpu__break_still_exists_unpatched(unpatched):
    result = unpatched_result(unpatched, "ddp_on_cpu")
    assert result["wrap"]["error"] == "ValueError", result["wrap"]
    assert "device_ids" in result["wrap"]["message"]


def test_ddp_on_cpu__patched_wraps_and_trains(tmp_path):
    import torch.distributed as dist
    from fastreid.engine import defaults

    assert not dist.is_initialized()
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        model = TinyRegressor()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # broadcast_buffers is deprecated
            wrapped = defaults.DistributedDataParallel(model, device_ids=[0], broadcast_buffers=False)
        assert isinstance(wrapped, torch.nn.parallel.DistributedDataParallel)
        assert wrapped.device_ids is None and wrapped.module is model
        before = snapshot(model)
        losses = train_steps(wrapped, torch.optim.SGD(wrapped.parameters(), lr=0.05), None, STEPS,
                             batches=tiny_batches())
        assert changed_parameters(model, before) == ["fc.bias", "fc.weight"]
        assert all(later < earlier for earlier, later in zip(losses, losses[1:])), losses
    finally:
        dist.destroy_process_group()


# ------------------------------------------------------------------------------------------
# Checkpointer under torch.load(weights_only=True) (the default since torch 2.6): no shim
# ------------------------------------------------------------------------------------------
def _assert_same(a, b, where="state"):
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and torch.equal(a, b), where
    elif isinstance(a, dict):
        assert isinstance(b, dict) and set(a) == set(b), (where, set(a) ^ set(b))
        for key in a:
            _assert_same(a[key], b[key], f"{where}[{key!r}]")
    elif isinstance(a, (list, tuple)):
        assert type(a) is type(b) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_same(x, y, f"{where}[{i}]")
    else:
        assert a == b, (where, a, b)


def _trainer_objects(solver_opts):
    """Model, optimizer and LR schedulers built the way DefaultTrainer builds them."""
    from fastreid.engine import DefaultTrainer

    model, cfg = build_baseline(solver_opts)
    optimizer, param_wrapper = DefaultTrainer.build_optimizer(cfg, model)
    schedulers = DefaultTrainer.build_lr_scheduler(cfg, optimizer, iters_per_epoch=2)
    return model, optimizer, param_wrapper, schedulers


def test_checkpointer_weights_only_round_trip_with_optimizer_and_schedulers(tmp_path):
    from fastreid.solver.lr_scheduler import WarmupLR
    from fastreid.utils.checkpoint import Checkpointer

    opts = ["SOLVER.SCHED", "MultiStepLR", "SOLVER.STEPS", [1, 2], "SOLVER.GAMMA", 0.5,
            "SOLVER.WARMUP_ITERS", 3, "SOLVER.WARMUP_FACTOR", 0.1, "SOLVER.MAX_EPOCH", 4]
    model, optimizer, param_wrapper, schedulers = _trainer_objects(opts)
    assert isinstance(schedulers["warmup_sched"], WarmupLR)
    assert isinstance(schedulers["lr_sched"], torch.optim.lr_scheduler.MultiStepLR)
    # 2 epochs x 2 steps, stepping the schedulers the way fast-reid's LRScheduler hook does
    batches = fixed_batches()
    for epoch in range(2):
        train_steps(model, optimizer, param_wrapper, 2, batches=batches)
        for step in range(2):
            if epoch * 2 + step + 1 <= 3:
                schedulers["warmup_sched"].step()
        schedulers["lr_sched"].step()
    assert optimizer.state  # Adam moments exist

    # what PeriodicCheckpointer.step saves: epoch and metric (a float: EventStorage casts it)
    Checkpointer(model, str(tmp_path), optimizer=optimizer, **schedulers).save("model_0001", epoch=1, metric=62.5)
    path = tmp_path / "model_0001.pth"
    assert torch.serialization.get_unsafe_globals_in_checkpoint(str(path)) == []

    fresh_model, fresh_optimizer, _, fresh_schedulers = _trainer_objects(opts)
    checkpointer = Checkpointer(fresh_model, str(tmp_path), optimizer=fresh_optimizer, **fresh_schedulers)
    assert checkpointer.has_checkpoint() and checkpointer.get_checkpoint_file() == str(path)
    extra = checkpointer.resume_or_load("", resume=True)  # DefaultTrainer.resume_or_load's call
    assert extra == {"epoch": 1, "metric": 62.5}
    _assert_same(model.state_dict(), fresh_model.state_dict(), "model")
    _assert_same(optimizer.state_dict(), fresh_optimizer.state_dict(), "optimizer")
    for name in schedulers:
        _assert_same(schedulers[name].state_dict(), fresh_schedulers[name].state_dict(), name)
    assert [g["lr"] for g in fresh_optimizer.param_groups] == [g["lr"] for g in optimizer.param_groups]

    # and training goes on identically from the restored state
    losses = train_steps(model, optimizer, param_wrapper, 1)
    fresh_losses = train_steps(fresh_model, fresh_optimizer, param_wrapper, 1)
    assert fresh_losses == pytest.approx(losses)
    _assert_same(model.state_dict(), fresh_model.state_dict(), "model after a step")


def test_checkpointer_weights_only_guard_is_live_and_fastreid_saves_plain_floats(tmp_path):
    """Why no shim is needed: the weights-only guard is on, but the one non-tensor value
    fast-reid itself saves, the eval metric, is a Python float by the time it is saved."""
    from fastreid.utils.checkpoint import Checkpointer
    from fastreid.utils.events import EventStorage

    model = torch.nn.Linear(2, 1)
    Checkpointer(model, str(tmp_path)).save("numpy_metric", metric=np.float64(50.0))
    with pytest.raises(pickle.UnpicklingError, match="weights_only|Weights only"):
        Checkpointer(model, str(tmp_path)).load(str(tmp_path / "numpy_metric.pth"))

    # ReidEvaluator returns numpy scalars, EvalHook stores them, PeriodicCheckpointer reads
    # storage.latest(): EventStorage.put_scalar has made them floats on the way.
    with EventStorage(0) as storage:
        storage.put_scalars(metric=np.float64(62.5), smoothing_hint=False)
        value = storage.latest()["metric"][0]
    assert type(value) is float
