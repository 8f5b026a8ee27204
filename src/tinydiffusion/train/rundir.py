"""One run directory, one writer: an exclusive lock taken before anything is written into it.

``RUN_DIR/.lock`` is locked with ``flock`` (``LOCK_EX | LOCK_NB``) by the training process (the main
process of a distributed run) before ``config.toml``, ``log.csv``, checkpoints or samples are written, and
held until training ends. A second training into the same directory gets one line naming the process
that holds it. The operating system drops the lock when the holder exits in any way, ``kill -9``
included, so a crashed run never leaves a stale lock behind. The lock file holds the holder's pid, for
the message only.

Under the lock, a new run checks that the directory does not already hold a run, and the temporary
files of writers that were killed are removed.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..checkpoint import MODEL_FILE, STATE_DIR, list_states
from ..errors import UserError
from ..files import remove_stale_temporaries

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

LOCK_FILE = ".lock"


def holds_run(path: Path) -> bool:
    """Whether ``path`` already holds (part of) a run: weights or resumable states."""
    return (path / MODEL_FILE).exists() or (path / STATE_DIR).is_dir()


class RunDirectoryLock:
    """The exclusive right to write into a run directory (see the module docstring).

    ``acquire`` creates the directory when needed; ``release`` unlocks and, when this writer created the
    directory and wrote nothing into it (a mistake found before the first step), removes it again.
    """

    def __init__(self, path: Path, *, resume: bool):
        self.path = Path(path)
        self.resume = resume
        self._fd: int | None = None
        self._created = False

    def acquire(self) -> "RunDirectoryLock":
        path = self.path
        if path.exists() and not path.is_dir():
            raise UserError(f"--out {path} is a file; give a folder for the run")
        if self.resume and not list_states(path):
            raise UserError(f"nothing to resume in {path}: it has no {STATE_DIR}/step-*.pt; drop --resume to start "
                            "a new run")
        try:
            if not path.exists():
                path.mkdir(parents=True)
                self._created = True
            self._fd = self._lock(path / LOCK_FILE)
        except OSError as exc:
            self.release()
            raise UserError(f"cannot write in {path}: {exc.strerror or exc}; choose a writable --out; "
                            "nothing was written") from None
        if not self.resume and holds_run(path):
            self.release()
            raise UserError(f"{path} already holds a run; add --resume to continue it or choose another --out")
        for folder in (path, path / STATE_DIR, path / "samples"):
            remove_stale_temporaries(folder)
        return self

    def _lock(self, lock_path: Path) -> int:
        """Open and lock ``lock_path``; retry when another writer replaced the file in between."""
        while True:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
            if fcntl is None:  # pragma: no cover - Windows: no advisory locks; one writer is the user's job
                return fd
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _read_pid(fd)
                os.close(fd)
                self.release()
                raise UserError(f"{self.path} is being written by another training ({holder}); wait for it to "
                                "finish or choose another --out") from None
            except BaseException:
                os.close(fd)
                raise
            same = os.fstat(fd).st_ino == _inode(lock_path)
            if same:
                os.ftruncate(fd, 0)
                os.write(fd, f"{os.getpid()}\n".encode())
                return fd
            os.close(fd)  # the file was removed or replaced while we waited: lock the new one

    def release(self) -> None:
        """Unlock; remove the directory again if this writer made it and put nothing in it."""
        if self._created and _only_lock_inside(self.path):
            try:
                (self.path / LOCK_FILE).unlink(missing_ok=True)
                self.path.rmdir()
            except OSError:  # an empty folder left behind is harmless; the error that got us here matters
                pass
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        self._created = False


def _read_pid(fd: int) -> str:
    text = os.pread(fd, 32, 0).decode(errors="replace").strip()
    return f"process {text}" if text.isdigit() else "another process"


def _inode(path: Path) -> int | None:
    try:
        return os.stat(path).st_ino
    except FileNotFoundError:
        return None


def _only_lock_inside(path: Path) -> bool:
    """Whether ``path`` is empty or holds only the lock file (False when it cannot be listed)."""
    try:
        return {p.name for p in path.iterdir()} <= {LOCK_FILE}
    except OSError:
        return False
