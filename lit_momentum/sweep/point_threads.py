"""The loop path's points side by side on the CPU's cores, each point's operations on one thread.

    threads = PointThreads(base)                      # base: the network on the meta device (BatchedNet's)
    out = threads.forward(call, params, buffers, x)   # (B, ...) -> (N, B, K), a graph back to the stacked params

A network vmap cannot batch (``nn.GRU``, a branch on a point's values) is computed point by point
(``lit_momentum.sweep.batched``). Its operations are small: PyTorch's second intra-op thread does not speed them up
(6 GRU1D points' forward and backward: 48 ms a step on one thread, 50 on two, 2-core CPU), so one core idles. Here the
points are spread over ``torch.get_num_threads()`` Python threads, each computing its points with one intra-op thread
(PyTorch releases the GIL inside its operations): 28 ms. Forward and backward both: ``ThreadedPoints`` keeps each
point's graph and runs each point's backward in its thread, from the gradient of the point's own output.

Each point's operations are the ones its single run performs, on its own slices; what changes is the number of
threads they run on, and an operation may split a sum by threads (the GRU's head: a (10, 128) @ (128, 32) product
differs by 1e-9 between one and two). So a point is its ``train.py`` run with one thread (``OMP_NUM_THREADS=1``) to
the bit, and the grid's numbers do not depend on how many threads the process has (with one, the points take turns).
Used on the CPU for networks that draw no random numbers (a draw comes from the global generator, which each point
swaps for its own stream in turn: ``lit_momentum.streams``) and outside autocast (a thread's own state).
"""

import copy
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import torch
from torch import Tensor, nn

Call = Callable[[nn.Module, dict[str, Tensor], dict[str, Tensor], Tensor], Tensor]  # (base, params, buffers, x)


class PointThreads:
    """Runs a function of (base, point k) for every point, the points spread over the process's threads, each
    thread with its own copy of the meta network (``functional_call`` swaps tensors into the module it is given)."""

    def __init__(self, base: nn.Module) -> None:
        self.bases = [base]
        self.pool: ThreadPoolExecutor | None = None
        self.size = 0  # the pool's threads

    def map(self, fn: Callable[[nn.Module, int], Any], n: int) -> list[Any]:
        """``[fn(base, k) for k in range(n)]``, with the caller's grad and inference modes (a thread's own state)
        and one intra-op thread for each point's operations; point k in thread ``k % threads``."""
        workers = min(torch.get_num_threads(), n)
        while len(self.bases) < workers:
            self.bases.append(copy.deepcopy(self.bases[0]))
        for base in self.bases[1:]:
            base.train(self.bases[0].training)
        grad, inference = torch.is_grad_enabled(), torch.is_inference_mode_enabled()

        def work(w: int) -> list[Any]:
            torch.set_num_threads(1)  # (a thread's own setting: a thread started elsewhere may have another)
            with torch.inference_mode(inference), torch.set_grad_enabled(grad):
                return [fn(self.bases[w], k) for k in range(w, n, workers)]

        before = torch.get_num_threads()
        torch.set_num_threads(1)  # (the caller waits meanwhile)
        try:
            if workers == 1:
                done = [work(0)]
            else:
                if self.size < workers:
                    self.pool, self.size = ThreadPoolExecutor(workers, thread_name_prefix="grid-point"), workers
                done = list(self.pool.map(work, range(workers)))
        finally:
            torch.set_num_threads(before)
        return [done[k % workers][k // workers] for k in range(n)]

    def forward(self, call: Call, params: dict[str, Tensor], buffers: dict[str, Tensor], x: Tensor) -> Tensor:
        """Every point's output, (B, ...) -> (N, B, K): with a graph to the stacked parameters where grad is on."""
        names = list(params)
        if torch.is_grad_enabled() and any(p.requires_grad for p in params.values()):
            return ThreadedPoints.apply(self, call, names, buffers, x, *params.values())
        n = len(next(iter(params.values())))
        return torch.stack(self.map(lambda base, k: call(base, {m: p[k] for m, p in params.items()},
                                                         slices(buffers, k), x), n))

    def __getstate__(self) -> dict[str, Any]:  # (a deep copy of the grid: no pool, no threads' copies)
        return {"bases": self.bases[:1], "pool": None, "size": 0}


def slices(buffers: dict[str, Tensor], k: int) -> dict[str, Tensor]:
    return {m: b[k] for m, b in buffers.items()}  # views: in-place updates (running statistics) reach the stack


class ThreadedPoints(torch.autograd.Function):
    """Forward: each point's output from its own leaves (views of its slices), its graph kept. Backward: each point's
    backward in its thread, from its output's gradient, its parameters' gradients stacked: what the autograd graph
    of the points computed in turn gives (``unbind``'s backward stacks them likewise)."""

    @staticmethod
    def forward(ctx: Any, threads: PointThreads, call: Call, names: list[str], buffers: dict[str, Tensor], x: Tensor,
                *params: Tensor) -> Tensor:
        def point(base: nn.Module, k: int) -> tuple[Tensor, list[Tensor]]:
            leaves = [p.detach()[k].requires_grad_(p.requires_grad) for p in params]
            with torch.enable_grad():
                return call(base, dict(zip(names, leaves)), slices(buffers, k), x), leaves

        ctx.threads, ctx.points = threads, threads.map(point, len(params[0]))
        return torch.stack([out.detach() for out, _ in ctx.points])

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
        def point(base: nn.Module, k: int) -> tuple[Tensor | None, ...]:
            out, leaves = ctx.points[k]
            wanted = [leaf for leaf in leaves if leaf.requires_grad]
            found = iter(torch.autograd.grad(out, wanted, grad[k], allow_unused=True))
            return tuple(next(found) if leaf.requires_grad else None for leaf in leaves)

        per_point, ctx.points = ctx.threads.map(point, len(ctx.points)), None
        stacked = []
        for grads in zip(*per_point):  # one parameter's gradient at every point
            if all(g is None for g in grads):
                stacked.append(None)
            else:  # (a point whose branch left it out: zeros, as unbind's backward fills them)
                some = next(g for g in grads if g is not None)
                stacked.append(torch.stack([g if g is not None else torch.zeros_like(some) for g in grads]))
        return (None, None, None, None, None, *stacked)
