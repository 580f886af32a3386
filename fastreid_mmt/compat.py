"""Compatibility shims for fast-reid 1.4.0 on Python 3.11 / torch 2.x / faiss 1.15.

fast-reid 1.4.0 (the only release on PyPI) was written for Python 3.8 and torch 1.x. This
module makes it import, train and evaluate on today's stack **without editing its installed
files**: every shim patches a module attribute at import time of ``fastreid_mmt``. Each shim
names the break it fixes; ``tests/test_compat.py`` shows, for each, that the break still
exists in unpatched fast-reid (where that can be shown cheaply) and that the patched path works.

:func:`apply` must run before anything imports ``fastreid.data`` or ``fastreid.evaluation``,
which is why ``fastreid_mmt/__init__.py`` calls it first.
"""

import collections
import collections.abc
import importlib.util
import logging
import sys
import types
import warnings

import torch

logger = logging.getLogger(__name__)

_APPLIED = []


def _shim_collections_abc():
    """Break: ``from collections import Mapping`` in ``fastreid/data/build.py`` and
    ``fastreid/evaluation/testing.py``: the ABC aliases left ``collections`` in Python 3.10,
    so importing ``fastreid.data`` raises ImportError. Fix: restore the aliases."""
    for name in ("Mapping", "MutableMapping", "Sequence", "Iterable"):
        if not hasattr(collections, name):
            setattr(collections, name, getattr(collections.abc, name))


def _shim_torch_six():
    """Break: ``from torch._six import string_classes`` in ``fastreid/data/build.py``:
    ``torch._six`` was removed in torch 2.0 (ModuleNotFoundError). Fix: provide a tiny
    ``torch._six`` module with the one name fast-reid uses."""
    if importlib.util.find_spec("torch._six") is None:
        six = types.ModuleType("torch._six")
        six.string_classes = (str, bytes)
        sys.modules["torch._six"] = six
        torch._six = six


def _shim_dataloaderx_without_cuda():
    """Break: ``fastreid.data.data_utils.DataLoaderX`` creates a CUDA stream in ``__init__``
    and moves batches with ``torch.cuda.stream`` in ``__next__``: every train and test loader
    crashes on a machine without CUDA. Fix: without CUDA, ``DataLoaderX`` behaves as a plain
    ``torch.utils.data.DataLoader`` (no prefetch thread, no stream, no pinned memory)."""
    from fastreid.data import data_utils

    if torch.cuda.is_available():
        return
    loader_cls = data_utils.DataLoaderX
    if getattr(loader_cls, "_fastreid_mmt_cpu", False):
        return
    base = torch.utils.data.DataLoader

    def __init__(self, local_rank, **kwargs):
        kwargs["pin_memory"] = False
        base.__init__(self, **kwargs)
        self.local_rank = local_rank

    loader_cls.__init__ = __init__
    loader_cls.__iter__ = base.__iter__
    loader_cls.shutdown = lambda self: None
    loader_cls._fastreid_mmt_cpu = True


def _shim_contiguous_params():
    """Break: ``fastreid.solver.build_optimizer(cfg, model, contiguous=True)`` (the default
    that ``DefaultTrainer.build_optimizer`` uses) wraps parameters in ``ContiguousParams``;
    on torch >= 2.0 ``optimizer.zero_grad()`` sets the flat gradient buffers to None, the
    per-parameter views stop aliasing them, and **training silently does nothing** (weights
    never change; fast-reid issues 700, 704). Fix: ``contiguous`` defaults to False."""
    from fastreid import solver
    from fastreid.engine import defaults
    from fastreid.solver import build as solver_build

    original = solver_build.build_optimizer
    if getattr(original, "_fastreid_mmt_shim", False):
        return

    def build_optimizer(cfg, model, contiguous=False):
        return original(cfg, model, contiguous=contiguous)

    build_optimizer._fastreid_mmt_shim = True
    build_optimizer.__doc__ = original.__doc__
    solver_build.build_optimizer = build_optimizer
    solver.build_optimizer = build_optimizer
    defaults.build_optimizer = build_optimizer


def _shim_amp_without_cuda():
    """Break: ``AMPTrainer.run_step`` asserts CUDA, and fast-reid's base configs enable AMP:
    a run started on a machine without CUDA dies at its first step. Fix: without CUDA,
    ``AMPTrainer`` warns once and runs the plain fp32 step of ``SimpleTrainer``."""
    from fastreid.engine import train_loop

    if torch.cuda.is_available():
        return
    amp_cls = train_loop.AMPTrainer
    if getattr(amp_cls, "_fastreid_mmt_cpu", False):
        return

    def __init__(self, model, data_loader, optimizer, param_wrapper, grad_scaler=None):
        warnings.warn("SOLVER.AMP.ENABLED is set but CUDA is not available: training in fp32.")
        train_loop.SimpleTrainer.__init__(self, model, data_loader, optimizer, param_wrapper)
        self.grad_scaler = None

    amp_cls.__init__ = __init__
    amp_cls.run_step = train_loop.SimpleTrainer.run_step
    amp_cls._fastreid_mmt_cpu = True


def _shim_rank_cython_compile():
    """Break: ``ReidEvaluator._compile_dependencies`` runs ``make`` with whatever ``python3``
    is on PATH inside the installed package and calls ``sys.exit(1)`` when that fails (no
    Cython, another interpreter, a read-only site-packages): evaluation ends the process.
    Fix: never compile at run time; when the compiled ranking module is absent, fast-reid's
    own pure-Python ranking (``evaluation/rank.py``) is used, with one log line saying so."""
    from fastreid.evaluation import reid_evaluation

    if getattr(reid_evaluation.compile_helper, "_fastreid_mmt_shim", False):
        return

    def compile_helper():
        logger.info("fast-reid's Cython ranking module is not built: using its Python ranking.")

    compile_helper._fastreid_mmt_shim = True
    reid_evaluation.compile_helper = compile_helper


def _shim_faiss_long_ptr():
    """Break: ``fastreid/utils/faiss_utils.py`` calls ``faiss.cast_integer_to_long_ptr``,
    which faiss 1.15 no longer has (renamed ``cast_integer_to_idx_t_ptr``): fast-reid's GPU
    k-NN search raises AttributeError. Fix: restore the old name as an alias."""
    try:
        import faiss
    except ImportError:  # faiss is optional for the shims; clustering reports it when needed
        return
    if not hasattr(faiss, "cast_integer_to_long_ptr") and hasattr(faiss, "cast_integer_to_idx_t_ptr"):
        faiss.cast_integer_to_long_ptr = faiss.cast_integer_to_idx_t_ptr


def _shim_ddp_on_cpu():
    """Break: ``DefaultTrainer.__init__`` wraps the model in
    ``DistributedDataParallel(model, device_ids=[local_rank])`` whenever the world size is
    above 1; for a CPU model torch requires ``device_ids=None``, so multi-process training
    without GPUs (gloo) fails. Fix: drop ``device_ids`` when the model has no CUDA parameter."""
    from fastreid.engine import defaults

    ddp = defaults.DistributedDataParallel
    if getattr(ddp, "_fastreid_mmt_shim", False):
        return

    def distributed_data_parallel(module, *args, **kwargs):
        if not any(p.is_cuda for p in module.parameters()):
            kwargs.pop("device_ids", None)
        return torch.nn.parallel.DistributedDataParallel(module, *args, **kwargs)

    distributed_data_parallel._fastreid_mmt_shim = True
    defaults.DistributedDataParallel = distributed_data_parallel


_SHIMS = (
    _shim_collections_abc,
    _shim_torch_six,
    _shim_faiss_long_ptr,
    _shim_dataloaderx_without_cuda,
    _shim_contiguous_params,
    _shim_amp_without_cuda,
    _shim_rank_cython_compile,
    _shim_ddp_on_cpu,
)


def apply():
    """Apply every shim once (idempotent). Returns the names of the shims applied."""
    if not _APPLIED:
        for shim in _SHIMS:
            shim()
            _APPLIED.append(shim.__name__)
    return list(_APPLIED)
