"""Files that appear whole or not at all, and a clear error when the disk fills up.

Every file a resumed run reads (checkpoints, ``last_checkpoint``) and every per-epoch artefact
(``pseudo_labels/epoch_XXX.npy``) is written through :func:`atomic_write`: to a temporary
sibling ``NAME.tmp-<pid>``, flushed and fsynced, then renamed over ``NAME``. A kill at any
moment leaves the old file or the new one under ``NAME``, never part of one; a failed write
(e.g. a full disk) removes its temporary file and leaves ``NAME`` untouched.
"""

import errno
import glob
import os
import shutil

from .faults import fault_point

# Errors that mean "no room left": device full, disk quota exceeded.
DISK_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)
# Temporary files are named NAME + TMP_MARK + pid.
TMP_MARK = ".tmp-"
MB = 1024 ** 2


class DiskFullError(OSError):
    """A write failed for lack of space; the file it would have replaced is untouched."""


def atomic_write(path, write, needed_bytes=0, advice=""):
    """Write ``path`` whole or not at all.

    Args:
        path (str): the file to (re)place.
        write (Callable[[BinaryIO], None]): writes the content into the open temporary file.
        needed_bytes (int): about how large the file will be (quoted when the disk is full).
        advice (str): appended to the :class:`DiskFullError` message.

    Raises:
        DiskFullError: the device holding ``path`` ran out of space (or quota); its message
            names the folder, the free space and the space needed.
    """
    remove_stale_temporaries(glob.escape(path) + TMP_MARK + "*")
    tmp = f"{path}{TMP_MARK}{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
            fault_point("write:" + os.path.basename(path))
        os.replace(tmp, path)
    except BaseException as err:
        if os.path.exists(tmp):
            os.remove(tmp)
        if is_disk_full(err):
            raise DiskFullError(errno.ENOSPC, disk_full_message(path, needed_bytes, advice)) from err
        raise
    fsync_folder(os.path.dirname(path) or ".")


def remove_stale_temporaries(pattern):
    """Delete temporary files matching ``pattern`` that other (killed) processes left behind:
    a checkpoint's can be as large as the checkpoint, and repeated preemptions would pile them
    up. Only one process writes a given file, so any other's temporary file is dead."""
    mine = TMP_MARK + str(os.getpid())
    for stale in glob.glob(pattern):
        if not stale.endswith(mine):
            try:
                os.remove(stale)
            except FileNotFoundError:
                pass


def is_disk_full(err):
    """Whether ``err`` or an error it was raised from is ENOSPC/EDQUOT (``torch.save``
    reports a full disk as a RuntimeError whose context is the OSError)."""
    seen = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        if isinstance(err, OSError) and err.errno in DISK_FULL_ERRNOS:
            return True
        err = err.__cause__ or err.__context__
    return False


def disk_full_message(path, needed_bytes, advice=""):
    folder = os.path.dirname(os.path.abspath(path))
    free = shutil.disk_usage(folder).free
    need = f"about {needed_bytes / MB:.1f} MB needed" if needed_bytes else "size unknown"
    message = (f"no space left to write {os.path.basename(path)} in {folder}: {free / MB:.1f} MB free there, "
               f"{need}")
    if needed_bytes > free:
        message += f" (free at least {(needed_bytes - free) / MB:.1f} MB more)"
    return f"{message}. {advice}".strip()


def fsync_folder(folder):
    """Make a rename in ``folder`` durable (survives a power cut, not only a kill)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
