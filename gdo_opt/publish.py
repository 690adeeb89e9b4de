"""Publish a run's outputs as one set: readers see the old folder or the new one, never a mix.

Why: moving files into place one by one let a kill leave one goal's ``gdo_1x.jsonl`` beside another
run's ``report.json``. Here the outputs are written into a staging folder *beside* the target
(``.NAME.staging-PID-RANDOM``), then swapped in with one rename:

* Linux ``renameat2(RENAME_EXCHANGE)`` (via ctypes) swaps a new folder with an existing one
  atomically; a target that does not exist yet is created by a plain ``rename`` (atomic everywhere).
* Elsewhere (or on a file system without RENAME_EXCHANGE) the fallback writes the files into the
  target and a manifest (``.gdo-set.json``) last, after removing the old one: a reader trusts the
  folder only when ``read_manifest`` finds a complete manifest whose files all exist.

A lock file ``.NAME.lock`` (``flock``, holding the writer's pid) refuses a second concurrent writer
with a clear message. Leftovers of killed runs (staging folders whose pid is dead, the old
``NAME/.staging-*`` scratch) are removed by the next run that publishes there.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from gdo_opt.errors import GdoError

MANIFEST = ".gdo-set.json"
_RENAME_EXCHANGE = 2
_AT_FDCWD = -100
_renameat2 = None


def _load_renameat2():
    global _renameat2
    if _renameat2 is None:
        _renameat2 = False
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
            fn = libc.renameat2
            fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
            fn.restype = ctypes.c_int
            _renameat2 = fn
        except (OSError, AttributeError):  # not glibc >= 2.28 / not Linux
            pass
    return _renameat2 or None


def exchange(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """Atomically swap two existing paths; False when the platform or file system cannot."""
    fn = _load_renameat2()
    if fn is None:
        return False
    if fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(b))


def pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _staging_pid(name: str) -> int:
    try:
        return int(name.rsplit(".staging-", 1)[1].split("-", 1)[0])
    except (IndexError, ValueError):
        return -1


def clean_stale(target: Path) -> list[str]:
    """Remove staging folders of dead writers beside ``target`` and the old in-folder scratch."""
    removed = []
    parent = target.parent
    if parent.is_dir():
        for entry in parent.glob(f".{target.name}.staging-*"):
            if not pid_alive(_staging_pid(entry.name)):
                shutil.rmtree(entry, ignore_errors=True)
                removed.append(entry.name)
    if target.is_dir():
        for entry in target.glob(".staging-*"):  # written inside the folder by older versions
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry.name)
    return removed


@contextlib.contextmanager
def writer_lock(target: Path) -> Iterator[Path]:
    """Exclusive lock for writing ``target``; a second writer gets a GdoError naming the holder."""
    import fcntl

    lock = target.parent / f".{target.name}.lock"
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "?"
            raise GdoError(f"{target}: another gdo-opt run (pid {holder}) is writing this output; "
                           "wait for it to finish or choose another --out") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        try:
            yield lock
        finally:
            with contextlib.suppress(OSError):
                os.unlink(lock)
    finally:
        os.close(fd)


def _check_target(target: Path) -> None:
    if target.exists() and not target.is_dir():
        raise GdoError(f"{target}: exists and is not a folder (--out must be a folder)")
    parent = target.parent
    if parent.exists() and not parent.is_dir():
        raise GdoError(f"{parent}: is not a folder")
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise GdoError(f"{parent}: cannot create the output folder ({error.strerror})") from None
    if not os.access(parent, os.W_OK | os.X_OK):
        raise GdoError(f"{parent}: not writable (outputs are staged beside {target.name} and swapped in)")
    if target.is_dir() and not os.access(target, os.W_OK | os.X_OK):
        raise GdoError(f"{target}: not writable")


def _fallback_publish(stage: Path, target: Path, owned) -> None:
    """Manifest-last publication: drop the old manifest, move files in, write the manifest last;
    our files of the old set that the new one lacks are removed, foreign entries are left alone."""
    target.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(target / MANIFEST)
    names = sorted(p.name for p in stage.iterdir())
    for old in target.iterdir():
        if old.name not in names and old.name != MANIFEST and owned(old.name) and not old.name.startswith("."):
            shutil.rmtree(old) if old.is_dir() and not old.is_symlink() else old.unlink()
    for name in names:
        dest = target / name
        if dest.is_dir() and not dest.is_symlink():
            shutil.rmtree(dest)
        os.replace(stage / name, dest)
    from gdo_opt.atomic import write_json

    write_json(target / MANIFEST, {"files": names, "pid": os.getpid()})


def read_manifest(folder: str | os.PathLike) -> list[str] | None:
    """Files of a set published by the fallback, or None when the set is incomplete / absent."""
    path = Path(folder) / MANIFEST
    try:
        files = json.loads(path.read_text(encoding="utf-8"))["files"]
    except (OSError, ValueError, KeyError):
        return None
    return files if all((Path(folder) / f).exists() for f in files) else None


@contextlib.contextmanager
def publish_set(target: str | os.PathLike, owned=None, use_exchange: bool = True) -> Iterator[Path]:
    """Yield a staging folder; when the block succeeds it replaces ``target`` as one set.

    On an exception nothing changes at ``target`` and the staging folder is removed. ``owned(name)``
    says which entries of ``target`` belong to our outputs (default: all). A folder that also holds
    foreign entries (``--out .``) is never swapped away: it gets the manifest-last publication.
    """
    owned = owned or (lambda name: True)
    target = Path(os.path.abspath(target))
    _check_target(target)
    with writer_lock(target):
        clean_stale(target)
        stage = Path(tempfile.mkdtemp(prefix=f".{target.name}.staging-{os.getpid()}-", dir=target.parent))
        os.chmod(stage, 0o777 & ~_umask())
        try:
            yield stage
            foreign = target.is_dir() and any(
                not owned(e.name) and e.name != MANIFEST and not e.name.startswith(".staging-")
                for e in target.iterdir())
            if not target.exists():
                os.rename(stage, target)
            elif not foreign and use_exchange and exchange(stage, target):
                shutil.rmtree(stage, ignore_errors=True)  # now holds the old set
            else:
                _fallback_publish(stage, target, owned)
        finally:
            if stage.exists():
                shutil.rmtree(stage, ignore_errors=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
