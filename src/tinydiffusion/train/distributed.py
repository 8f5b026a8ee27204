"""Many processes: torchrun's environment, the process group, and rank-0-only side effects."""

from __future__ import annotations

import atexit
import os
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, TypeVar

import torch
import torch.distributed as dist
from torch import nn

from ..errors import UserError

T = TypeVar("T")


@dataclass(frozen=True)
class Dist:
    """This process's place in the job (rank 0 of 1 when not launched by torchrun)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    #: a gloo group over the same processes, for small host-side agreements (stop signals) without a GPU sync;
    #: None: use the default group (already gloo on CPU)
    host_group: Any = field(default=None, compare=False)

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Only the main process writes files, logs and progress bars."""
        return self.rank == 0


def init_distributed(device_kind: str) -> Dist:
    """Join the process group that ``torchrun`` describes in RANK / WORLD_SIZE / LOCAL_RANK (NCCL on CUDA, gloo on CPU)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    if "MASTER_ADDR" not in os.environ:
        raise UserError("WORLD_SIZE is set but MASTER_ADDR is not: launch many processes with "
                        "torchrun --nproc_per_node N -m tinydiffusion train ...")
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        backend = "nccl" if device_kind == "cuda" else "gloo"
        if device_kind == "cuda":
            torch.cuda.set_device(local)
        dist.init_process_group(backend, rank=rank, world_size=world)
    host_group = dist.new_group(backend="gloo") if dist.get_backend() != "gloo" else None
    return Dist(rank, world, local, host_group)


def all_mean(value: torch.Tensor, d: Dist) -> torch.Tensor:
    """The mean of ``value`` over all processes (itself when alone)."""
    if d.enabled:
        value = value.clone()
        dist.all_reduce(value)
        value /= d.world_size
    return value


def agree_on_signal(signum: int, d: Dist) -> int:
    """The largest signal number any process has seen (0: none), the same on every process.

    Called by every process at the end of every step, so that all stop together at the same step and
    none enters a collective (a checkpoint's health check, the next step's gradient all-reduce) alone.
    """
    return max_over_processes(signum, d)


def max_over_processes(value: int, d: Dist) -> int:
    """The largest of ``value`` over all processes, the same on every process (itself when alone).

    One all-reduce of one integer on the CPU (a gloo group beside NCCL): no GPU synchronisation.
    """
    if not d.enabled:
        return value
    t = torch.tensor([value], dtype=torch.int64)
    dist.all_reduce(t, op=dist.ReduceOp.MAX, group=d.host_group)
    return int(t.item())


def on_main(action: Callable[[], T], d: Dist, what: str) -> T | None:
    """``action()`` on rank 0 only (its writes: the run lock, checkpoints, previews, logs); every process
    calls this at the same point and learns whether the action failed with a :class:`UserError`.

    A failure then stops every process with one line and exit status 2 (rank 0's own message; the others
    say that rank 0 could not ``what``) instead of leaving them in a collective rank 0 never joins. The
    agreement is one all-reduce of one integer on the host. Returns the action's result (None elsewhere).
    """
    result, refused = None, None
    if d.is_main:
        try:
            result = action()
        except UserError as exc:
            refused = exc
    if max_over_processes(int(refused is not None), d):
        raise refused or UserError(f"rank 0 could not {what} (its message says why); process {d.rank} stops too")
    return result


def sync_batchnorm(model: nn.Module, device: torch.device, d: Dist) -> nn.Module:
    """BatchNorm over the global batch under DDP, as one process computes it (SyncBatchNorm; CUDA only).

    On CPU processes (gloo) PyTorch has no SyncBatchNorm: each process normalises by the statistics of
    its own B/N samples (and DDP copies rank 0's running statistics to the others), so a BatchNorm
    network trained by N CPU processes differs from one process; a warning says so.
    """
    if not d.enabled or not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules()):
        return model
    if device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(model)
    if d.is_main:
        warnings.warn(f"BatchNorm statistics are per process on the CPU (PyTorch's SyncBatchNorm needs CUDA): "
                      f"each of the {d.world_size} processes normalises by its own 1/{d.world_size} of the batch, "
                      "so the run differs from one process with the whole batch", stacklevel=2)
    return model


def broadcast_int(value: int, d: Dist, device: torch.device) -> int:
    """Rank 0's ``value`` on every process (e.g. a step count that rank 0 planned)."""
    if not d.enabled:
        return value
    t = torch.tensor([value], dtype=torch.int64, device=device)
    dist.broadcast(t, src=0)
    return int(t.item())


#: Process groups that :func:`shutdown` ended, kept until the interpreter begins to exit.
_ENDED_GROUPS: list[Any] = []
atexit.register(_ENDED_GROUPS.clear)


def shutdown(d: Dist) -> None:
    """Leave the process group (every process, at the end of training, however it ended).

    The group object itself is kept until exit. Whoever drops its last reference runs its destructor,
    which joins gloo's worker threads; DDP's reducer (freed when the trainer is) would do that while it
    holds the GIL, and a worker thread that still has to release a finished collective's tensor needs
    the GIL, so both would wait forever (seen after a stop signal). Dropped here at exit, the group's own
    Python wrapper releases the GIL first.
    """
    if d.enabled and dist.is_initialized():
        _ENDED_GROUPS.extend(g for g in (dist.group.WORLD, d.host_group) if g is not None)
        dist.destroy_process_group()
