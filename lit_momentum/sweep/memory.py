"""Memory for a grid of runs: what it needs, what is free, and keeping big freed blocks for reuse."""

import ctypes
import os
from typing import Any

import torch

from lit_momentum.nets import build_net


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


def point_bytes(net: Any, dim: int, num_classes: int, batch_sizes: tuple[int, int], states: int) -> int:
    """Memory one grid point of network ``net`` (a factory or config) needs while training: weights, gradients,
    ``states`` optimizer tensors per weight (SGD's velocity, Adam's two moments) and one more gradient-sized tensor
    (a backward allocates the new gradient before the step), and the larger of the activations autograd keeps for a
    training batch and twice the largest layer output of an evaluation batch. Measured on a copy on the ``meta``
    device (shapes only, nothing allocated); the data, shared by all points, is not counted."""
    train, evaluate = batch_sizes
    with torch.random.fork_rng(devices=[]), torch.device("meta"):
        model = build_net(net, dim, num_classes)
        params = sum(p.numel() * p.element_size() for p in model.parameters())
        buffers = sum(b.numel() * b.element_size() for b in model.buffers())
        saved, outputs = [], []  # what autograd keeps of a training batch; every layer's output for an evaluation one
        hooks = [m.register_forward_hook(lambda m, i, o: outputs.append(o.numel() * o.element_size())
                                         if isinstance(o, torch.Tensor) and not m.training else None)
                 for m in model.modules()]
        try:
            with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t.numel() * t.element_size()) or t,
                                                          lambda t: t):
                model(torch.zeros(train, dim))
            with torch.no_grad():
                model.eval()(torch.zeros(evaluate, dim))
        except Exception:  # noqa: BLE001 (a forward that needs real values, e.g. .item(): refused by the grid's own
            pass  # check right after this one; the weights alone are still counted)
        for hook in hooks:
            hook.remove()
    return params * (3 + states) + buffers + max(sum(saved), 2 * max(outputs, default=0))


def available_bytes(accelerator: str, devices: object = None) -> int:
    """Free memory where the grid will live: the GPU's it will train on (``devices`` as given to the Trainer: a
    list's first index, else this process's local rank, as Lightning assigns it), or the host's (MemAvailable)."""
    if accelerator in ("gpu", "cuda", "auto") and torch.cuda.is_available():
        index = devices[0] if isinstance(devices, list | tuple) and devices else int(os.environ.get(
            "LOCAL_RANK", os.environ.get("SLURM_LOCALID", 0)))
        return torch.cuda.mem_get_info(index)[0]
    with open("/proc/meminfo") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("MemAvailable:"))
