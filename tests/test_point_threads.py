"""The loop path's points side by side on the CPU's cores (``lit_momentum.sweep.point_threads``): each point is its
network alone on one thread, to the bit, whatever threads the process has; what draws random numbers keeps its
points in turn. (Whole grids against their train.py runs: tests/test_faithful.py.)

Bugs these exist to catch: a point's operations run on two intra-op threads (a sum split otherwise: the head's
gradient of a GRU with 10 classes differs by about 1e-9); a thread without the caller's grad or inference mode; a
point's gradient or output put at another point's place; two threads sharing one network to swap tensors into; a
parameter that only some points use losing its zeros; a network that draws random numbers put on threads.
"""

import pytest
import torch
from torch import Tensor, nn

from lit_momentum.nets import GRU1D
from lit_momentum.sweep.batched import BatchedNet
from tests.probe_nets import DropoutMLP

DIM, CLASSES, BATCH = 40, 10, 64  # MNIST-1D's shape: a GRU's head gradient then splits its sum on two threads


class SomeUseC(nn.Module):
    """Uses its layer ``c`` only where its own bias says so: some points give ``c`` no gradient."""

    def __init__(self, dim: int, num_classes: int) -> None:
        super().__init__()
        self.a, self.c, self.b = nn.Linear(dim, 16), nn.Linear(16, 16), nn.Linear(16, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        h = self.a(x).tanh()
        return self.b(self.c(h) if self.a.bias.sum() > 0 else h)


def nets(cls: type, n: int) -> list[nn.Module]:
    out = []
    for seed in range(n):
        torch.manual_seed(seed)
        out.append(cls(DIM, CLASSES))
    return out


def step(model: nn.Module | BatchedNet, x: Tensor, y: Tensor) -> list[Tensor | None]:
    """One training forward and backward (a mean cross-entropy per network, summed): the outputs and gradients."""
    for p in model.parameters():
        p.grad = None
    out = model(x)
    out = out if out.dim() == 3 else out.unsqueeze(0)
    sum(nn.functional.cross_entropy(o, y) for o in out).backward()
    return [out.detach(), *(p.grad for p in model.parameters())]


def on_threads(threads: int, fn, *args):  # noqa: ANN001, ANN002, ANN202
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return fn(*args)
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("cls", [GRU1D, SomeUseC])
def test_points_side_by_side_are_each_network_alone_on_one_thread_to_the_bit(cls: type) -> None:
    """4 points on 2 threads: each point's output and every gradient equal its network's own step on one intra-op
    thread, bit for bit (training and evaluation, under no_grad and inference_mode); the same grid on one thread
    (its points in turn) gives the same bits; and the step the points take in turn without threads, on one thread."""
    torch.manual_seed(10)
    x, y = torch.randn(BATCH, DIM), torch.randint(0, CLASSES, (BATCH,))
    alone = nets(cls, 4)
    grid = BatchedNet(nets(cls, 4), DIM)
    assert grid.mode == "loop" and grid.threads is not None, grid.path
    threaded = on_threads(2, step, grid, x, y)
    for k, net in enumerate(alone):
        mine = on_threads(1, step, net, x, y)
        assert torch.equal(threaded[0][k], mine[0][0]), k
        for i, (ours, own) in enumerate(zip(threaded[1:], mine[1:])):
            assert (own is None) == (ours is None or not ours[k].any()), (k, i)
            assert own is None or torch.equal(ours[k], own), (k, i)
    assert all(g is not None for g in threaded[1:]) or cls is SomeUseC
    if cls is SomeUseC:  # some points left c out, some used it
        assert 0 < sum(bool(g.any()) for g in threaded[3]) < 4
    turns = on_threads(1, step, grid, x, y)  # the process on one thread: its points in turn, same bits
    assert all(a is b is None or torch.equal(a, b) for a, b in zip(threaded, turns))
    threads, grid.threads = grid.threads, None
    plain = on_threads(1, step, grid, x, y)  # the points in turn through autograd's own graph (unbind)
    grid.threads = threads
    assert all(a is b is None or torch.equal(a, b) for a, b in zip(threaded, plain))
    grid.eval()
    for mode in (torch.no_grad, torch.inference_mode):
        with mode():
            out = on_threads(2, grid, x)
            modes = on_threads(2, grid.threads.map, lambda net, k: (torch.is_grad_enabled(),
                                                                    torch.is_inference_mode_enabled()), 4)
        assert not out.requires_grad and modes == [(False, mode is torch.inference_mode)] * 4, modes
        for k, net in enumerate(alone):
            net.eval()
            with torch.no_grad():
                assert torch.equal(out[k], on_threads(1, net, x)), (mode, k)


def test_a_network_that_draws_random_numbers_keeps_its_points_in_turn() -> None:
    """Dropout draws from the global generator, which each point swaps for its own stream in turn: no threads; the
    sweep's line says which way each is trained."""
    drawing, still = BatchedNet(nets(DropoutMLP, 2), DIM), BatchedNet(nets(GRU1D, 2), DIM)
    assert drawing.mode == still.mode == "loop"
    assert drawing.threads is None and "one thread" not in drawing.path
    assert still.threads is not None and "exactly its train.py run with one thread" in still.path


class DrawsOnData(nn.Module):
    """Adds noise only to inputs that are not all zero: the grid's trial (a batch of zeros) sees no draw."""

    def __init__(self, dim: int, num_classes: int) -> None:
        super().__init__()
        self.gru = GRU1D(dim, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.gru(x + torch.randn_like(x) if x.any() else x)


def test_a_draw_the_trial_did_not_see_stops_the_step_in_one_line() -> None:
    grid = BatchedNet(nets(DrawsOnData, 2), DIM)
    assert grid.threads is not None
    with pytest.raises(RuntimeError, match="DrawsOnData drew random numbers in the grid's threads"):
        grid(torch.randn(BATCH, DIM))
