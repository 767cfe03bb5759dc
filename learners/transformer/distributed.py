"""Data parallelism through ``torch.distributed`` (``torchrun --nproc-per-node N``: gloo on CPU,
NCCL on GPU). A single process needs none of it: every helper is a no-op when the world is 1."""
from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as tdist
from torch.nn.parallel import DistributedDataParallel


@dataclass
class Dist:
    """This process's place in the process group (rank 0 of 1 when not launched by torchrun)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_distributed(device: str) -> Dist:
    """Join the process group when launched by torchrun (``WORLD_SIZE`` > 1)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    backend = "nccl" if device.startswith("cuda") else "gloo"
    if not tdist.is_initialized():
        tdist.init_process_group(backend=backend)
    return Dist(rank=tdist.get_rank(), world=tdist.get_world_size(), local_rank=int(os.environ.get("LOCAL_RANK", "0")))


def barrier(d: Dist) -> None:
    if d.world > 1:
        tdist.barrier()


def wrap_model(model: torch.nn.Module, d: Dist, device: str) -> torch.nn.Module:
    """``model`` itself in one process; a DistributedDataParallel view of it in several."""
    if d.world <= 1:
        return model
    return DistributedDataParallel(model, device_ids=[d.local_rank] if device.startswith("cuda") else None,
                                   broadcast_buffers=False)


def no_sync_unless(ddp_model: torch.nn.Module, d: Dist, sync: bool) -> Any:
    """Skip DDP's gradient all-reduce for a micro-batch unless ``sync`` (the last one of an update)."""
    if d.world > 1 and not sync:
        return ddp_model.no_sync()
    return contextlib.nullcontext()


def sum_over_processes(d: Dist, *values: float) -> tuple[float, ...]:
    """The sums of ``values`` over every process (float64, so the sum does not depend on the split)."""
    if d.world <= 1:
        return values
    t = torch.tensor(values, dtype=torch.float64)
    tdist.all_reduce(t)
    return tuple(float(x) for x in t)


__all__ = ["Dist", "init_distributed", "barrier", "wrap_model", "no_sync_unless", "sum_over_processes"]
