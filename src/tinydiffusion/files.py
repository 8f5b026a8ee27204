"""Writing files so that nothing a user had is ever lost: atomic replacement, write probes, stale temporaries.

Every file the package writes (checkpoints, ``config.toml``, pictures, GIFs, ``.npz`` samples, HTML,
JSON) goes through :func:`atomic_write`: the bytes go to ``.NAME.tmp-PID`` in the same folder, are
flushed and fsynced, and the temporary file is renamed over ``NAME`` (``os.replace`` is atomic on
POSIX and Windows). A crash, ``kill -9``, Ctrl-C or a full disk leaves either the old file or the
complete new one, never a mixture; a failed write is one :class:`~tinydiffusion.errors.UserError`
line that says what was kept. :func:`check_writable` tries a folder before long work starts, and
:func:`remove_stale_temporaries` deletes the temporary files of writers that were killed.
"""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path
from typing import BinaryIO

from .errors import UserError

_TMP_MARK = ".tmp-"


def temporary_name(path: Path) -> Path:
    """The temporary file :func:`atomic_write` uses for ``path``: ``.NAME.tmp-PID`` beside it."""
    return path.with_name(f".{path.name}{_TMP_MARK}{os.getpid()}")


def _write_stream(f: BinaryIO, data: bytes) -> None:
    """Write ``data`` to an open file (one call; kept separate so tests can slow it down or fill the disk)."""
    f.write(data)


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc)


def atomic_write(path: Path, data: bytes, *, kept: str | None = None) -> None:
    """Write ``data`` to ``path`` so that readers only ever see the old or the complete new file.

    A failed write raises one UserError line that names the file, the reason and what was kept:
    ``kept`` when given (e.g. "the previous checkpoint is intact"), else whether ``path`` was left as it
    was or nothing was written.
    """
    path = Path(path)
    existed = path.exists()
    tmp = temporary_name(path)
    created = False
    try:
        with open(tmp, "wb") as f:
            created = True
            _write_stream(f, data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        what = kept or (f"{path} was left as it was" if existed else "nothing was written")
        left = "" if not created or _discard(tmp) else f" (the partial file {tmp} could not be removed; delete it)"
        raise UserError(f"could not write {path}: {_reason(exc)}; {what}{left}") from None
    except BaseException:  # Ctrl-C between creating and renaming: leave no temporary file behind
        if created:
            _discard(tmp)
        raise
    _sync_folder(path.parent)


def _discard(tmp: Path) -> bool:
    """Delete a temporary file; False when the filesystem refuses (read-only, …), so callers can say so."""
    try:
        tmp.unlink(missing_ok=True)
    except OSError:
        return False
    return True


def _sync_folder(folder: Path) -> None:
    """Make a rename durable; a no-op where a folder cannot be fsynced (some filesystems, Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        return
    finally:
        os.close(fd)


def ensure_folder(folder: Path) -> Path:
    """Create ``folder`` (and its parents) if needed; one UserError line when that is not possible."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create the folder {folder}: {_reason(exc)}; nothing was written there") from None
    return folder


def check_writable(folder: Path, what: str) -> None:
    """Fail early, with one line, when files cannot be created in ``folder`` (read-only, no permission, full).

    The probe creates and deletes a temporary file, so it also holds for root (for whom permission bits
    do not stop writes) and for read-only mounts.
    """
    folder = Path(folder)
    try:
        with tempfile.TemporaryFile(dir=folder, prefix=".tinydiffusion-probe-"):
            pass
    except FileNotFoundError:
        raise UserError(f"{what}: the folder {folder} does not exist; create it first") from None
    except OSError as exc:
        hint = " (read-only filesystem)" if exc.errno == errno.EROFS else ""
        raise UserError(f"{what}: cannot write in {folder}: {_reason(exc)}{hint}; choose a writable folder; "
                        "nothing was written") from None


def remove_stale_temporaries(folder: Path) -> list[Path]:
    """Delete the ``.NAME.tmp-PID`` files in ``folder`` whose writer process is gone; returns them."""
    removed = []
    if not Path(folder).is_dir():
        return removed
    for tmp in Path(folder).glob(f".*{_TMP_MARK}*"):
        pid = tmp.name.rsplit(_TMP_MARK, 1)[-1]
        if pid.isdigit() and int(pid) > 0 and not pid_alive(int(pid)) and _discard(tmp):
            removed.append(tmp)
    return removed


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this machine (always True on Windows, where signal 0 is not a probe)."""
    if os.name == "nt":
        return True
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError, ValueError):
        return False
    except PermissionError:  # it exists, but belongs to someone else
        return True
    return True
