"""Many processes: torchrun's environment, the process group, and rank-0-only side effects."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from ..errors import UserError


@dataclass(frozen=True)
class Dist:
    """This process's place in the job (rank 0 of 1 when not launched by torchrun)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

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
    return Dist(rank, world, local)


def all_mean(value: torch.Tensor, d: Dist) -> torch.Tensor:
    """The mean of ``value`` over all processes (itself when alone)."""
    if d.enabled:
        value = value.clone()
        dist.all_reduce(value)
        value /= d.world_size
    return value


def any_flag(flag: bool, d: Dist, device: torch.device) -> bool:
    """True on every process if ``flag`` is true on any (e.g. Ctrl-C seen by one process)."""
    if not d.enabled:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(t)
    return bool(t.item() > 0)


def broadcast_int(value: int, d: Dist, device: torch.device) -> int:
    """Rank 0's ``value`` on every process (e.g. a step count that rank 0 planned)."""
    if not d.enabled:
        return value
    t = torch.tensor([value], dtype=torch.int64, device=device)
    dist.broadcast(t, src=0)
    return int(t.item())


def shutdown(d: Dist) -> None:
    if d.enabled and dist.is_initialized():
        dist.destroy_process_group()
