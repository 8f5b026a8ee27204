"""Helpers of the attack suite (``tests/test_attack_*.py``): run the CLI as a hostile user would and check
that every mistake or fault ends in one line, the right exit status, and nothing lost.

Every attack test carries ``@pytest.mark.attack(AREA, OUTCOME)``; ``test_attack_table.py`` counts the
cases by these marks and checks the table in ``docs/reliability.md`` against the count.
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tinydiffusion import files
from tinydiffusion.cli.main import main

#: What a case attacks (rows of the table in docs/reliability.md).
AREAS = {
    "flags": "bad flags and settings",
    "data": "bad data and data folders",
    "files": "tampered, truncated and pickled files",
    "faults": "kill -9, Ctrl-C, full disk, read-only folders, NaN",
    "writers": "two writers, resume history and logs",
}
#: How a case must end: one line and exit 2, a clean stop after Ctrl-C (130), or a run that recovers (0).
OUTCOMES = ("error", "interrupt", "recovers")


def attack(area: str, outcome: str = "error") -> pytest.MarkDecorator:
    assert area in AREAS and outcome in OUTCOMES
    return pytest.mark.attack(area, outcome)


def run_cli(args: list[str], capsys: pytest.CaptureFixture) -> tuple[int, str]:
    """Run the CLI in-process; returns (exit status, stderr)."""
    capsys.readouterr()
    try:
        code = main(args)
    except SystemExit as exc:  # argparse exits by itself
        code = exc.code
    return code, capsys.readouterr().err


def assert_clean_error(code: int, err: str, *needles: str, alone: bool = True) -> str:
    """Exit 2, no traceback, one error line (the only line when ``alone``; else the last, after progress
    lines); every needle in it. Returns the line."""
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, err
    assert "Traceback" not in err, err
    assert lines, "no message at all"
    if alone:
        assert len(lines) == 1, f"expected one line on stderr, got:\n{err}"
    errors = [line for line in lines if "error:" in line]
    assert errors == [lines[-1]], f"expected one error line at the end, got:\n{err}"
    for needle in needles:
        assert needle in lines[-1], lines[-1]
    return lines[-1]


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (relative path -> bytes), the lock file aside."""
    folder = Path(folder)
    if not folder.exists():
        return {}
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != ".lock"}


def assert_unchanged(before: dict[str, bytes], folder: Path) -> None:
    """The files of ``before`` are all still there, byte for byte, and no file was added."""
    after = snapshot(folder)
    assert sorted(after) == sorted(before), f"files changed: {sorted(set(after) ^ set(before))}"
    for name, data in before.items():
        assert after[name] == data, f"{name} changed"


def fail_writes(monkeypatch: pytest.MonkeyPatch, code: int, when: Callable[[str], bool] = lambda name: True,
                partial: bool = True) -> None:
    """Make :func:`tinydiffusion.files.atomic_write` hit ``OSError(code)`` (ENOSPC, EROFS, …) for temporary files
    whose name satisfies ``when``, after writing half the bytes (a full disk)."""
    real = files._write_stream

    def failing(f, data: bytes) -> None:  # noqa: ANN001
        if not when(f.name):
            return real(f, data)
        if partial:
            f.write(data[: len(data) // 2])
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(files, "_write_stream", failing)


@pytest.fixture
def read_only(monkeypatch: pytest.MonkeyPatch):  # noqa: ANN201
    """A function that makes a folder read-only: ``chmod`` where that stops writes, else (root ignores
    permission bits) by making every attempt to create or open a file for writing under it fail with
    ``EROFS``, as on a read-only mount. Permissions are restored afterwards."""
    changed: list[Path] = []

    def apply(folder: Path) -> None:
        folder = Path(folder)
        folder.chmod(0o555)
        changed.append(folder)
        probe = folder / ".probe"
        try:
            probe.write_bytes(b"")
        except PermissionError:
            return
        probe.unlink()
        _refuse_writes_under(monkeypatch, folder)

    yield apply
    for folder in changed:
        folder.chmod(0o755)


def _refuse_writes_under(monkeypatch: pytest.MonkeyPatch, folder: Path) -> None:
    inside = str(folder.resolve())

    def refuse(path: object) -> None:
        if str(Path(os.fspath(path)).resolve()).startswith(inside):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), os.fspath(path))

    real_tempfile, real_os_open = files.tempfile.TemporaryFile, os.open

    def fake_open(path, mode="r", *args, **kwargs):  # noqa: ANN001, ANN002, ANN003
        if any(c in mode for c in "wax+"):
            refuse(path)
        return open(path, mode, *args, **kwargs)

    def fake_tempfile(*args, dir=None, **kwargs):  # noqa: ANN001, ANN002, ANN003, A002
        refuse(Path(dir) / "probe")
        return real_tempfile(*args, dir=dir, **kwargs)

    def fake_os_open(path, flags, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            refuse(path)
        return real_os_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(files, "open", fake_open, raising=False)
    monkeypatch.setattr(files.tempfile, "TemporaryFile", fake_tempfile)
    monkeypatch.setattr(os, "open", fake_os_open)


def spawn(code: str, cwd: Path) -> subprocess.Popen:
    """A Python process running ``code`` (with this checkout's sources), stdout/stderr captured as text."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(predicate: Callable[[], bool], proc: subprocess.Popen | None = None, timeout: float = 120.0) -> None:
    """Poll until ``predicate()``; fail early (with its stderr) when ``proc`` exits first."""
    start = time.time()
    while not predicate():
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the process ended early ({proc.returncode}):\n{proc.stderr.read()}")
        if time.time() - start > timeout:
            raise TimeoutError("the process did not get there in time")
        time.sleep(0.05)
