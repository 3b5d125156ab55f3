"""N copies of one network as one module: stacked parameters and buffers, called with ``torch.func``.

    batched = BatchedNet([net_a, net_b, ...], dim)  # N networks of one class and shape (one per grid point)
    logits = batched(x)                            # (B, ...) -> (N, B, K): every copy reads the one shared batch

Point k's slices of the stacked tensors are exactly network k's weights and buffers (``stack_module_state``); the
forward is the network's own, ``functional_call`` under ``vmap``, so any ``nn.Module`` batches. What ``vmap`` cannot
batch is found when the grid is built, by a trial step on two points, and refused in one line before any training:
random numbers (dropout: a point would not draw its single run's masks), data-dependent Python control flow,
``.item()``. Buffers a forward updates in place (BatchNorm's running statistics) are stacked like the parameters,
so each point keeps its own.

The package's ``MLP`` runs the same arithmetic with its products batched by hand (``mlp_forward``): vmap's fixed
cost per step (about half a millisecond here) is measurable on small networks. Every other network's ``nn.Linear``
is computed as ``W x^T``, the same products as ``x W^T`` summed in another order (equal to about an ulp): vmap's rule
for ``x W^T`` with a batched weight makes the weight's gradient in the transposed layout and copies it into place,
1.3-1.6 times the step at the article's size; ``W x^T`` makes it in place. Under autocast, convolutions inside vmap
run in float32 (PyTorch's batching rule sits below autocast), where a single run's run in the lower precision.
"""

import copy
import os
import traceback

import torch
from torch import Tensor, nn
from torch.func import functional_call, stack_module_state, vmap

from lit_momentum.nets import MLP


def linear_wx(self: nn.Linear, x: Tensor) -> Tensor:
    """``nn.Linear.forward`` as ``(W x^T)^T + b``: (..., in) -> (..., out)."""
    out = torch.matmul(self.weight, x.mT).mT
    return out if self.bias is None else out + self.bias


class BatchedNet(nn.Module):
    """``nets`` (one class, one shape) as stacked (N, ...) parameters and buffers; ``forward`` gives (N, B, K)."""

    def __init__(self, nets: list[nn.Module], dim: int) -> None:
        super().__init__()
        params, buffers = stack_module_state(nets)  # name -> (N, ...) copies of each network's tensors
        self.param_names, self.buffer_names = list(params), list(buffers)
        self.params = nn.ParameterList([nn.Parameter(p.detach()) for p in params.values()])
        for i, b in enumerate(buffers.values()):
            self.register_buffer(f"buffer{i}", b)
        base = copy.deepcopy(nets[0]).to("meta")  # the function: its tensors are replaced by the stacked ones
        for module in base.modules():
            if type(module) is nn.Linear:
                module.forward = linear_wx.__get__(module)
        object.__setattr__(self, "base", base)  # not a submodule: never moved, saved or counted
        self.mlp = type(nets[0]) is MLP  # the package's MLP: products batched by hand, see mlp_forward
        self.check(nets[0], dim)

    def stacked(self) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        """The (N, ...) parameters and buffers by the network's own names."""
        buffers = {n: getattr(self, f"buffer{i}") for i, n in enumerate(self.buffer_names)}
        return dict(zip(self.param_names, self.params)), buffers

    def call(self, params: dict[str, Tensor], buffers: dict[str, Tensor], x: Tensor) -> Tensor:
        return functional_call(self.base, (params, buffers), (x,))  # one network: (B, ...) -> (B, K)

    def forward(self, x: Tensor) -> Tensor:
        if self.mlp:
            return self.mlp_forward(x)
        if self.base.training != self.training:  # BatchNorm and the like follow the grid's mode (Lightning sets a
            self.base.train(self.training)  # module's ``training`` flag directly, so no ``train()`` hook would do)
        params, buffers = self.stacked()
        return vmap(self.call, in_dims=(0, 0, None))(params, buffers, x)  # (B, ...) -> (N, B, K)

    def mlp_forward(self, x: Tensor) -> Tensor:
        """The package's MLP over the same stacked parameters, its products batched by hand: ``W h`` per layer
        from ``h = x^T`` as ``baddbmm`` (N, out, in) @ (N, in, B), so each gradient lands in its parameter's layout.
        The same arithmetic as ``linear_wx`` under vmap (equal to about an ulp), without vmap's fixed cost per step:
        0.5-0.7 ms here, 1.25-1.45 times the step of a 40-100-100-10 MLP at N = 8 to 32 (docs/performance.md)."""
        n = len(self.params[0])
        if torch.is_autocast_enabled(x.device.type):  # cast the one batch before expanding it: autocast would cast
            x = x.to(torch.get_autocast_dtype(x.device.type))  # the expanded view into N copies
        h = x.T.expand(n, *x.T.shape)  # (N, D, B): a view, the batch is never copied per point
        params = list(self.params)  # (a slice of a ParameterList would build a new module every step)
        weights, biases = params[0::2], params[1::2]  # Linear l: (N, out, in), (N, out)
        for i, (w, b) in enumerate(zip(weights, biases)):
            h = torch.baddbmm(b.unsqueeze(2), w, h)  # (N, out, in) @ (N, in, B) -> (N, out, B)
            if i + 1 < len(weights):
                h = self.base[1](h)  # the activation (it has no parameters)
        return h.transpose(1, 2)  # (N, B, K)

    def check(self, net: nn.Module, dim: int) -> None:
        """A trial training step and evaluation of two points on a batch (2, dim), on copies (nothing here changes):
        anything vmap cannot batch ends in a one-line ``ValueError`` naming the layer or the line, and why."""
        name = type(net).__name__
        dropout = next((n for n, m in net.named_modules() if isinstance(m, nn.modules.dropout._DropoutNd)
                        and m.p > 0), None)
        if dropout is not None:
            raise ValueError(f"--model.net {name}: {type(net.get_submodule(dropout)).__name__} at '{dropout}' draws "
                             f"random masks, and vmap cannot give a grid point the masks of its own train.py run (no "
                             f"parity, no exact resume): train it with train.py, or without dropout in the grid")
        params, buffers = self.stacked()
        params = {n: p[:2].detach().clone().requires_grad_() for n, p in params.items()}
        buffers = {n: b[:2].clone() for n, b in buffers.items()}
        x = torch.zeros(2, dim)
        try:
            with torch.random.fork_rng(devices=[]):
                out = vmap(self.call, in_dims=(0, 0, None), randomness="error")(params, buffers, x)
                out.sum().backward()
                self.base.eval()
                with torch.no_grad():
                    vmap(self.call, in_dims=(0, 0, None), randomness="error")(params, buffers, x)
        except Exception as err:  # noqa: BLE001 (whatever vmap refuses, said in one line)
            message = " ".join(str(err).split()).split(" Please ")[0].split(" We don't support")[0]
            raise ValueError(f"--model.net {name}: the grid cannot batch it with torch.func.vmap{where(err)}: "
                             f"{message}") from None
        finally:
            self.base.train(True)


def where(err: BaseException) -> str:
    """`` (at file:line in function)`` for the innermost frame outside torch: the user's line that vmap refused."""
    torch_dir = os.path.dirname(torch.__file__)
    frames = [f for f in traceback.extract_tb(err.__traceback__) if not f.filename.startswith(torch_dir)]
    if not frames or frames[-1].filename == __file__:
        return ""
    frame = frames[-1]
    return f" (at {os.path.basename(frame.filename)}:{frame.lineno} in {frame.name})"
