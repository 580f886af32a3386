"""``launch`` that also runs several CPU processes (gloo) where fast-reid's needs CUDA/NCCL.

With CUDA this is fast-reid's own ``launch`` (NCCL, one process per GPU). Without CUDA,
``--num-gpus N`` starts N CPU processes per machine with the gloo backend, using the same
ranks, ``--dist-url`` and local process groups; each process gets ``cores / N`` threads.

Shutdown when a process dies (preemption, OOM killer, a crash): if a rank dies, torch's
``spawn`` in the launcher terminates the other ranks (SIGTERM, then SIGKILL) and exits with an
error, so no rank waits forever in a collective; if the launcher dies, even by SIGKILL, Linux
kills its ranks (``PR_SET_PDEATHSIG``) instead of leaving them running as orphans.
"""

import ctypes
import functools
import importlib
import logging
import os
import signal
import sys

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from fastreid.utils import comm

# ``fastreid.engine.launch`` the module (the package re-exports a function of the same name).
fastreid_launch = importlib.import_module("fastreid.engine.launch")
logger = logging.getLogger(__name__)


def launch(main_func, num_gpus_per_machine, num_machines=1, machine_rank=0, dist_url=None, args=()):
    """Same signature and behaviour as ``fastreid.engine.launch``; CPU processes on gloo
    when CUDA is absent."""
    world_size = num_machines * num_gpus_per_machine
    if world_size == 1:
        return fastreid_launch.launch(main_func, num_gpus_per_machine, num_machines, machine_rank, dist_url, args)
    if torch.cuda.is_available():
        main_func = functools.partial(_die_with_launcher, os.getpid(), main_func)
        return fastreid_launch.launch(main_func, num_gpus_per_machine, num_machines, machine_rank, dist_url, args)
    if dist_url == "auto":
        if num_machines != 1:
            raise ValueError("--dist-url auto works on one machine only")
        dist_url = f"tcp://127.0.0.1:{fastreid_launch._find_free_port()}"
    logger.info("No CUDA: starting %d CPU processes per machine with gloo", num_gpus_per_machine)
    mp.spawn(_cpu_worker, nprocs=num_gpus_per_machine, daemon=False,
             args=(main_func, world_size, num_gpus_per_machine, machine_rank, dist_url, args, os.getpid()))


def cpu_threads_per_process(procs_per_machine, cores=None):
    """Share the machine's cores between its CPU processes: N processes each using every core
    oversubscribe the CPU (OpenMP threads then spin against each other and training slows
    several-fold)."""
    cores = cores or os.cpu_count() or 1
    return max(1, cores // procs_per_machine)


# prctl option: the signal a process receives when its parent dies (linux/prctl.h).
PR_SET_PDEATHSIG = 1


def die_with_parent(parent_pid):
    """Ask Linux to SIGKILL this process when its parent (the launcher) dies; exit now if it
    already has. No-op elsewhere than Linux."""
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        logger.warning("prctl(PR_SET_PDEATHSIG) failed (errno %d): this rank would outlive a killed launcher",
                       ctypes.get_errno())
    if os.getppid() != parent_pid:
        os.kill(os.getpid(), signal.SIGKILL)


def _die_with_launcher(parent_pid, main_func, *args):
    die_with_parent(parent_pid)
    return main_func(*args)


def _cpu_worker(local_rank, main_func, world_size, procs_per_machine, machine_rank, dist_url, args, parent_pid):
    die_with_parent(parent_pid)
    global_rank = machine_rank * procs_per_machine + local_rank
    if "OMP_NUM_THREADS" not in os.environ:  # the user's explicit choice wins
        torch.set_num_threads(cpu_threads_per_process(procs_per_machine))
    dist.init_process_group(backend="gloo", init_method=dist_url, world_size=world_size, rank=global_rank)
    comm.synchronize()
    for i in range(world_size // procs_per_machine):
        group = dist.new_group(list(range(i * procs_per_machine, (i + 1) * procs_per_machine)))
        if i == machine_rank:
            comm._LOCAL_PROCESS_GROUP = group
    main_func(*args)
    # An orderly exit: every rank done before any tears its gloo connections down (a rank whose
    # peer has already exited can abort in gloo's destructor).
    comm.synchronize()
    _release_process_groups()


def _release_process_groups():
    """Destroy every process group while the interpreter still runs. fast-reid's ``comm`` keeps
    references to two groups (``_LOCAL_PROCESS_GROUP`` and the cached ``_get_global_gloo_group``)
    that ``destroy_process_group`` cannot drop; a gloo group freed at interpreter exit instead
    aborted a rank ("terminate called without an active exception", SIGABRT) in about 1 of 10
    two-process runs of a check that only gathers, 0 of 40 with the references dropped first."""
    comm._LOCAL_PROCESS_GROUP = None
    comm._get_global_gloo_group.cache_clear()
    dist.destroy_process_group()
