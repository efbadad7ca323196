"""torchrun's process group: what outlives one Trainer and must be torn down when the process is done."""

from __future__ import annotations


def end_process_group() -> None:
    """Tear down torchrun's process group before exit: a gloo group left alive can abort a rank at exit
    ("terminate called without an active exception") after the work is done."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()  # no barrier: after a failure on one rank it would hang the others
