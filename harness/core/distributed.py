"""Sharding evaluation across processes (torchrun or accelerate launch; gloo on CPU, NCCL on GPUs).

Each rank answers its share of the samples; rank 0 gathers the records, writes the store and the outputs.
"""

from __future__ import annotations

import os
from typing import Any, TypeVar

T = TypeVar("T")


def launched() -> bool:
    """True when started by torchrun/accelerate with more than one process."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def init() -> None:
    """Join the process group the launcher describes (idempotent)."""
    import torch
    import torch.distributed as dist

    if launched() and not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend=backend)
        if backend == "nccl":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))


def rank_and_size() -> tuple[int, int]:
    if not launched():
        return 0, 1
    import torch.distributed as dist

    return (dist.get_rank(), dist.get_world_size()) if dist.is_initialized() else (0, 1)


def is_main() -> bool:
    return rank_and_size()[0] == 0


def shard(items: list[T]) -> list[T]:
    """This rank's share: every world_size-th item, so long and short samples spread evenly."""
    rank, size = rank_and_size()
    return items[rank::size]


def gather(obj: Any) -> list[Any] | None:
    """Every rank's `obj` on rank 0 (None elsewhere)."""
    rank, size = rank_and_size()
    if size == 1:
        return [obj]
    import torch.distributed as dist

    out: list[Any] | None = [None] * size if rank == 0 else None
    dist.gather_object(obj, out, dst=0)
    return out


def barrier() -> None:
    if rank_and_size()[1] > 1:
        import torch.distributed as dist

        dist.barrier()


def shutdown() -> None:
    """Leave the process group cleanly, so the launcher sees every rank finish."""
    if launched():
        import torch.distributed as dist

        if dist.is_initialized():
            dist.barrier()
            dist.destroy_process_group()


def broadcast(obj: T) -> T:
    """Rank 0's `obj` on every rank."""
    if rank_and_size()[1] == 1:
        return obj
    import torch.distributed as dist

    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]
