"""Data parallelism under torchrun: the process group, the DDP wrapper, rank agreement and weight digests."""

from __future__ import annotations

import datetime
import hashlib
import logging
import os

import torch
import torch.distributed as dist

log = logging.getLogger(__name__)

# how long a finished rank waits at the closing barrier for the others (rank 0 may still be saving)
BARRIER_TIMEOUT_S = 600


def world_and_rank() -> tuple[int, int]:
    """(WORLD_SIZE, RANK) as torchrun sets them; (1, 0) when run plainly."""
    return int(os.environ.get("WORLD_SIZE", "1")), int(os.environ.get("RANK", "0"))


def init_process_group(world: int, cuda: bool) -> None:
    """Join torchrun's process group (NCCL on CUDA, gloo on CPU) unless single-process or already joined."""
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if cuda else "gloo")


def end_process_group(finished: bool = False) -> None:
    """Tear down torchrun's process group before exit.

    `finished`: every rank completed the run. Then the ranks first meet at a bounded barrier, so none
    tears its gloo connections down while a peer still uses them (rank 0 saves the checkpoint after the
    last collective; a rank that closed its pairs then, or exited, could abort the other with
    "terminate called without an active exception"). After a failure there is no barrier: the failed
    rank would never come, and the others would wait out the timeout for nothing.
    """
    if not (dist.is_available() and dist.is_initialized()):
        return
    if finished:
        try:
            if dist.get_backend() == "gloo":
                dist.monitored_barrier(timeout=datetime.timedelta(seconds=BARRIER_TIMEOUT_S))
            else:
                dist.barrier()
        except RuntimeError as exc:  # a peer died meanwhile: still tear down, the run's result stands
            log.warning("ranks did not meet before the process group was closed: %s", exc)
    dist.destroy_process_group()


def wrap(model: torch.nn.Module, world: int) -> torch.nn.Module:
    """The module the step runs: DistributedDataParallel around `model` when distributed, else `model`."""
    return torch.nn.parallel.DistributedDataParallel(model) if world > 1 else model


def average_grads(module: torch.nn.Module, world: int) -> None:
    """All-reduce and average `module`'s gradients by hand (for modules not wrapped in DDP)."""
    if world <= 1:
        return
    for p in module.parameters():
        if p.grad is not None:
            dist.all_reduce(p.grad)
            p.grad /= world


def agree(flag: bool, world: int, device: torch.device) -> bool:
    """Rank 0's `flag` on every rank, so no rank waits forever in an all-reduce the others left."""
    if world <= 1:
        return flag
    t = torch.tensor([int(flag)], device=device)
    dist.broadcast(t, 0)
    return bool(t.item())


def weights_digest(model: torch.nn.Module) -> str:
    """sha256 over all parameters and buffers (to compare DDP ranks)."""
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().contiguous().cpu().numpy().tobytes())
    return h.hexdigest()


def rank_digests(model: torch.nn.Module, world: int, device: torch.device) -> list[str]:
    """Weights digest of every rank (gathered as raw bytes, no pickle); [] when not distributed."""
    if world <= 1:
        return []
    mine = torch.frombuffer(bytearray(bytes.fromhex(weights_digest(model))), dtype=torch.uint8)
    mine = mine.to(device)  # NCCL gathers device tensors only
    gathered = [torch.empty(32, dtype=torch.uint8, device=device) for _ in range(world)]
    dist.all_gather(gathered, mine)
    return [bytes(g.cpu().tolist()).hex() for g in gathered]
