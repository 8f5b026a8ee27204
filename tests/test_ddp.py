"""Many processes (gloo on CPU): the same run as one process with the same global batch — with gradient
accumulation and dropout — and a stop signal to one process stops them all at the same step."""

from __future__ import annotations

import csv
import os
import resource
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import torch

from conftest import tiny_args
from tinydiffusion import checkpoint
from tinydiffusion.cli.main import main
from tinydiffusion.train.rundir import RunDirectoryLock

STEPS = 4
#: dropout and two accumulation steps: the masks and the micro-batches must not depend on the split
EXACT = ("optim.lr_schedule=constant", "model.dropout=0.2")


def losses(run: Path) -> list[float]:
    with open(run / "log.csv", newline="") as f:
        return [float(r["loss"]) for r in csv.DictReader(f)]


def files(run: Path) -> set[str]:
    return {str(p.relative_to(run)) for p in run.rglob("*") if p.is_file() and "tb" not in p.parts}


def kill_job(tag: str) -> None:
    """SIGKILL every process whose environment carries ``TINYDIFFUSION_TEST_JOB=tag``: the launcher and the
    workers it starts (torchrun puts each worker in a session of its own, out of reach of the launcher's group)."""
    marker = f"TINYDIFFUSION_TEST_JOB={tag}".encode()
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            if marker in environ.read_bytes().split(b"\0"):
                os.kill(int(environ.parent.name), signal.SIGKILL)
        except (OSError, ValueError):
            pass  # gone already, or not ours to read


def torchrun(args: list[str], timeout: float = 300) -> tuple[int, str]:
    """``torchrun --standalone --nproc_per_node 2 -m tinydiffusion ARGS``; on a timeout the launcher and both
    workers are killed and the test fails with what they printed.

    ``--local-addr 127.0.0.1``: without it the standalone rendezvous hands the workers this machine's
    hostname, and where that does not resolve (a sandbox, a CI runner) they retry it forever.
    """
    tag = uuid.uuid4().hex
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TINYDIFFUSION_TEST_JOB": tag}
    proc = subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--standalone", "--local-addr", "127.0.0.1",
                             "--nproc_per_node", "2", "-m", "tinydiffusion", *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, env=env)
    try:
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_job(tag)
        _, err = proc.communicate()
        pytest.fail(f"torchrun did not finish in {timeout} s:\n{err[-3000:]}")
    return proc.returncode, err


@pytest.mark.slow
def test_two_processes_with_accumulation_and_dropout_match_one(tmp_path: Path) -> None:
    code, err = torchrun(tiny_args(tmp_path / "ddp", STEPS, *EXACT, "optim.grad_accum=2"))
    assert code == 0, err[-3000:]
    assert err.count("tinydiffusion train: quickstart ->") == 1, "only rank 0 talks"
    assert "x 2 processes" in err

    assert main(tiny_args(tmp_path / "one", STEPS, *EXACT)) == 0  # one process, one batch of 8 per step
    one, two = losses(tmp_path / "one"), losses(tmp_path / "ddp")
    assert len(one) == len(two) == STEPS
    assert one == pytest.approx(two, rel=1e-4, abs=1e-5)
    a = checkpoint.latest_state(tmp_path / "one")[1]["model"]
    b = checkpoint.latest_state(tmp_path / "ddp")[1]["model"]
    # Weights agree to round-off amplified by Adam: parameters whose true gradient is 0 (attention key
    # biases: softmax ignores a constant shift) get unit-size steps from round-off-size gradients.
    for key in a:
        assert torch.allclose(a[key], b[key], atol=1e-3), key
    # Only rank 0 writes: the run directory holds exactly what a one-process run holds.
    assert files(tmp_path / "ddp") == files(tmp_path / "one")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _launch(args: list[str], world: int = 2, main_file_limit: int | None = None) -> list[subprocess.Popen]:
    """The processes torchrun would start, started here so that each one's pid and exit status are ours.

    ``main_file_limit``: rank 0 cannot write files larger than this many bytes (RLIMIT_FSIZE; Python ignores
    SIGXFSZ, so such a write fails with EFBIG as it would on a full disk).
    """
    port = _free_port()
    procs = []
    for rank in range(world):
        env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1", "RANK": str(rank),
               "LOCAL_RANK": str(rank), "WORLD_SIZE": str(world), "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)}
        limit = main_file_limit if rank == 0 else None
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "tinydiffusion", *args], env=env, text=True, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, start_new_session=True,
            preexec_fn=None if limit is None else lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))))
    return procs


def _finish(procs: list[subprocess.Popen], timeout: float = 120) -> list[str]:
    """Each process's stderr once it exits (all are killed if one is still running after ``timeout`` s)."""
    try:
        return [p.communicate(timeout=timeout)[1] for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()


@pytest.mark.slow
def test_sigterm_to_one_process_stops_every_process_at_the_same_step(tmp_path: Path) -> None:
    """The processes agree on a stop at every step, not only at the log steps (every 3rd here): a process
    that stopped alone would wait forever in the checkpoint's collective while the others train on."""
    run, every = tmp_path / "ddp", 3
    logging = (*EXACT, f"log.every={every}", "log.checkpoint_every=100000")
    procs = _launch(tiny_args(run, 100_000, *logging))
    try:
        start = time.time()
        while not ((run / "log.csv").exists() and len(losses(run)) >= 1):
            assert time.time() - start < 120 and all(p.poll() is None for p in procs), "training did not start"
            time.sleep(0.05)
        procs[1].send_signal(signal.SIGTERM)  # not the main process: the one that saves must hear of it
        errs = [p.communicate(timeout=60)[1] for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    assert [p.returncode for p in procs] == [128 + signal.SIGTERM] * 2, errs
    stopped = {line.split("stopped at step ", 1)[1].split("/", 1)[0] for e in errs for line in e.splitlines()
               if "stopped at step" in line}
    assert len(stopped) == 1, errs  # every process names the same step
    step = int(stopped.pop())
    assert [s for s, _ in checkpoint.list_states(run)] == [step]  # saved once, by rank 0
    assert len(losses(run)) == step // every and "Traceback" not in "".join(errs)

    # --resume (here in one process: N processes compute what one computes) continues exactly. Each row of
    # log.csv is the mean over the steps since the row before, so the first row after the resume covers fewer
    # steps than the uninterrupted run's; the rows before the stop and after that one must be equal.
    total = (step // every + 3) * every
    assert main(tiny_args(run, total, *logging) + ["--resume"]) == 0
    assert main(tiny_args(tmp_path / "one", total, *logging)) == 0
    resumed, one = losses(run), losses(tmp_path / "one")
    assert len(resumed) == len(one) == total // every
    keep = [i for i in range(len(one)) if not step < (i + 1) * every < step + every]
    assert [resumed[i] for i in keep] == pytest.approx([one[i] for i in keep], rel=1e-4, abs=1e-5)


@pytest.mark.slow
def test_a_run_directory_another_training_holds_stops_every_process_with_one_line(tmp_path: Path) -> None:
    """Rank 0 alone takes the lock; the others must learn of its refusal instead of failing in a collective."""
    run = tmp_path / "busy"
    held = RunDirectoryLock(run, resume=False).acquire()  # another training writing into it
    try:
        procs = _launch(tiny_args(run, STEPS))
        errs = _finish(procs)
        assert sorted(p.name for p in run.iterdir()) == [".lock"]  # nothing written
    finally:
        held.release()
    assert [p.returncode for p in procs] == [2, 2], errs
    assert errs[0].splitlines()[-1] == (f"tinydiffusion train: error: {run} is being written by another training "
                                        f"(process {os.getpid()}); wait for it to finish or choose another --out")
    assert errs[1].splitlines()[-1] == (f"tinydiffusion train: error: rank 0 could not take {run} (its message says "
                                        "why); process 1 stops too")
    assert "Traceback" not in "".join(errs)


@pytest.mark.slow
def test_a_checkpoint_rank_0_cannot_write_stops_every_process_with_one_line(tmp_path: Path) -> None:
    """A full disk on rank 0 (here: a file-size limit) at the first checkpoint: every process ends with one
    line and exit status 2 at the same step, not the others with a traceback from a broken collective."""
    run = tmp_path / "full"
    procs = _launch(tiny_args(run, STEPS, "log.every=1", "log.checkpoint_every=2"), main_file_limit=64 * 1024)
    errs = _finish(procs)
    assert [p.returncode for p in procs] == [2, 2], errs
    assert errs[0].splitlines()[-1].startswith(f"tinydiffusion train: error: could not write {run}"), errs[0]
    assert "File too large" in errs[0].splitlines()[-1]
    assert errs[1].splitlines()[-1] == ("tinydiffusion train: error: rank 0 could not write the checkpoint of step "
                                        "2 (its message says why); process 1 stops too")
    assert "Traceback" not in "".join(errs)
    assert len(losses(run)) == 2  # the rows before the failed save are kept
