"""Memory for a grid of runs: what it needs, what is free, and keeping big freed blocks for reuse."""

import ctypes
import os

import torch


def keep_freed_memory() -> None:
    """Let glibc keep large freed blocks for reuse instead of returning them to the kernel (process-wide).

    glibc serves every allocation above 32 MiB with fresh pages from the kernel (mmap) and returns them on free. A
    grid's gradient is that large (64 MB at N = 32, dim 1000) and every backward makes it anew, so each step
    page-faulted all of it: measured here, 32,000 faults and twice the backward time. Raising glibc's mmap and trim
    thresholds keeps the memory in the process from one step to the next. A no-op where libc is not glibc.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return
    libc.mallopt(-3, 1 << 30)  # M_MMAP_THRESHOLD: serve blocks up to 1 GiB from the heap
    libc.mallopt(-1, 1 << 31)  # M_TRIM_THRESHOLD: keep up to 2 GiB of freed heap in the process


def grid_bytes(n: int, widths: list[int], batch_sizes: tuple[int, int], velocity: bool) -> int:
    """Memory a grid of ``n`` points of an MLP with layer ``widths`` (input, hidden..., outputs) needs while
    training, in float32: weights, gradients and (with momentum) velocities, plus one more gradient-sized tensor (a
    backward allocates the new gradient before the step), and the activations (N, width, B) autograd keeps for a
    training batch, or two layers' worth for an evaluation batch. The data is shared by all points and not counted."""
    params = sum(a * b + b for a, b in zip(widths, widths[1:]))
    train, evaluate = batch_sizes
    activations = max(4 * train * sum(widths[1:]), 2 * evaluate * max(widths[1:]))
    return 4 * n * (params * (3 + velocity) + activations)


def available_bytes(accelerator: str, devices: object = None) -> int:
    """Free memory where the grid will live: the GPU's it will train on (``devices`` as given to the Trainer: a
    list's first index, else this process's local rank, as Lightning assigns it), or the host's (MemAvailable)."""
    if accelerator in ("gpu", "cuda", "auto") and torch.cuda.is_available():
        index = devices[0] if isinstance(devices, list | tuple) and devices else int(os.environ.get(
            "LOCAL_RANK", os.environ.get("SLURM_LOCALID", 0)))
        return torch.cuda.mem_get_info(index)[0]
    with open("/proc/meminfo") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("MemAvailable:"))
