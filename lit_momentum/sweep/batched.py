"""N copies of one network as one module: stacked parameters and buffers, called with ``torch.func``.

    batched = BatchedNet([net_a, net_b, ...], dim)  # N networks of one class and shape (one per grid point)
    logits = batched(x)                            # (B, ...) -> (N, B, K): every copy reads the one shared batch

Point k's slices of the stacked tensors are exactly network k's weights and buffers (``stack_module_state``), and the
forward is the network's own, by ``functional_call``. It takes one of three paths, chosen once when the grid is built
by a trial step of two points (and said in one line, ``path``):

    vmap     ``functional_call`` under ``vmap``: the N copies as one batched computation (most networks)
    loop     point by point, in one step: what vmap cannot batch (random layers such as dropout or noise, ``nn.GRU`` and
             ``nn.LSTM``, Python branches on a point's values). Each point runs its network's own forward on its
             slices, its random draws from its own stream (``lit_momentum.streams``), so it computes exactly what its
             ``train.py`` run computes, to the bit; gradients, the optimizer step and everything else stay batched.
             A network that draws nothing has its points side by side on the CPU's cores, one thread each
             (``lit_momentum.sweep.point_threads``): each point then is its run with one thread, to the bit.
    mlp      the package's ``MLP``: vmap's arithmetic with the products batched by hand (``mlp_forward``)

Only what fails on both vmap and the loop is refused, in one line with PyTorch's reason. Buffers a forward updates in
place (BatchNorm's running statistics) are stacked like the parameters, so each point keeps its own.

On the vmap path every other network's ``nn.Linear`` is computed as ``W x^T``, the same products as ``x W^T`` summed
in another order (equal to about an ulp): vmap's rule for ``x W^T`` with a batched weight makes the weight's gradient
in the transposed layout and copies it into place, 1.3-1.6 times the step at the article's size; ``W x^T`` makes it
in place. Under autocast, convolutions inside vmap run in float32 (PyTorch's batching rule sits below autocast),
where a single run's run in the lower precision.
"""

import copy
import os
import re
import traceback
import warnings

import torch
from torch import Tensor, nn
from torch.func import functional_call, stack_module_state, vmap

from lit_momentum.nets import MLP
from lit_momentum.streams import RandomStreams
from lit_momentum.sweep.point_threads import PointThreads

SLOW_OP = re.compile(r"There is a performance drop because we have not yet implemented the batching rule for ([\w:]+)")


def linear_wx(self: nn.Linear, x: Tensor) -> Tensor:
    """``nn.Linear.forward`` as ``(W x^T)^T + b``: (..., in) -> (..., out)."""
    out = torch.matmul(self.weight, x.mT).mT
    return out if self.bias is None else out + self.bias


class BatchedNet(nn.Module):
    """``nets`` (one class, one shape) as stacked (N, ...) parameters and buffers; ``forward`` gives (N, B, K).

    ``streams`` (set by the grid) holds each point's random stream, for the loop path."""

    def __init__(self, nets: list[nn.Module], dim: int) -> None:
        super().__init__()
        params, buffers = stack_module_state(nets)  # name -> (N, ...) copies of each network's tensors
        self.param_names, self.buffer_names = list(params), list(buffers)
        self.params = nn.ParameterList([nn.Parameter(p.detach()) for p in params.values()])
        for i, b in enumerate(buffers.values()):
            self.register_buffer(f"buffer{i}", b)
        self.streams = RandomStreams([0] * len(nets))
        base = on_meta(nets[0])  # the function: its tensors are replaced by the stacked ones
        object.__setattr__(self, "base", base)  # not a submodule: never moved, saved or counted
        self.mode, self.why, self.slow_ops = "vmap", "", []
        self.threads: PointThreads | None = None  # the loop path's points on the CPU's cores (if they draw nothing)
        self.check(nets[0], dim)
        if type(nets[0]) is MLP and self.mode == "vmap":  # the package's MLP: products batched by hand
            self.mode = "mlp"

    @property
    def path(self) -> str:
        """Which path the grid takes, and why, in a few words (the sweep prints it once)."""
        name = type(self.base).__name__
        if self.mode == "loop":
            side = min(torch.get_num_threads(), len(self.params[0])) if self.threads is not None else 1
            how = f", {side} at a time on one thread each" if side > 1 else ""
            exact = " with one thread" if self.threads is not None else ""
            return (f"{name}: trained point by point in each step{how}, each point exactly its train.py run{exact} "
                    f"({self.why})")
        if self.mode == "mlp":
            return f"{name}: batched by hand"
        slow = f" (PyTorch has no batching rule for {', '.join(self.slow_ops)}: vmap computes it point by point)"
        return f"{name}: batched with torch.func.vmap" + (slow if self.slow_ops else "")

    def stacked(self) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        """The (N, ...) parameters and buffers by the network's own names."""
        buffers = {n: getattr(self, f"buffer{i}") for i, n in enumerate(self.buffer_names)}
        return dict(zip(self.param_names, self.params)), buffers

    def call(self, params: dict[str, Tensor], buffers: dict[str, Tensor], x: Tensor) -> Tensor:
        return self.point_call(self.base, params, buffers, x)  # one network: (B, ...) -> (B, K)

    @staticmethod
    def point_call(base: nn.Module, params: dict[str, Tensor], buffers: dict[str, Tensor], x: Tensor) -> Tensor:
        return functional_call(base, (params, buffers), (x,))  # (base: ours, or a thread's own copy of it)

    def forward(self, x: Tensor) -> Tensor:
        if self.mode == "mlp":
            return self.mlp_forward(x)
        if self.base.training != self.training:  # BatchNorm and the like follow the grid's mode (Lightning sets a
            self.base.train(self.training)  # module's ``training`` flag directly, so no ``train()`` hook would do)
        params, buffers = self.stacked()
        if self.mode == "loop":
            return self.loop_forward(params, buffers, x)
        return vmap(self.call, in_dims=(0, 0, None))(params, buffers, x)  # (B, ...) -> (N, B, K)

    def loop_forward(self, params: dict[str, Tensor], buffers: dict[str, Tensor], x: Tensor) -> Tensor:
        """Each point's own forward on its slices, its random numbers from its own stream: (B, ...) -> (N, B, K).
        ``unbind`` hands out the N slices as views at once; its backward stacks their gradients in one copy (an
        index per point would add N full-size gradients)."""
        if self.threads is not None and x.device.type == "cpu" and not torch.is_autocast_enabled("cpu"):
            state = torch.get_rng_state()
            out = self.threads.forward(self.point_call, params, buffers, x)
            if not torch.equal(state, torch.get_rng_state()):  # (the trial saw none: a draw that depends on the data)
                raise RuntimeError(f"{type(self.base).__name__} drew random numbers in the grid's threads, where its "
                                   f"trial forward drew none: each point's draws would not be its run's")
            return out
        p_slices = {n: p.unbind(0) for n, p in params.items()}
        b_slices = {n: b.unbind(0) for n, b in buffers.items()}  # views: in-place updates reach the stacked buffer
        outs = []
        for k in range(len(self.params[0])):
            with self.streams.run(k):
                outs.append(self.call({n: s[k] for n, s in p_slices.items()}, {n: s[k] for n, s in b_slices.items()},
                                      x))
        return torch.stack(outs)

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
        """Choose the path by a trial training step and evaluation of two points on a batch (2, dim), on copies
        (nothing here changes): vmap (with ``nn.Linear`` as ``W x^T``) where it batches the network and draws no
        random numbers, else the loop; what the loop cannot train either ends in a one-line ``ValueError`` naming
        the network, the line, and PyTorch's reason."""
        self.used = trained_parameters(net, dim)
        vbase = copy.deepcopy(self.base)
        for module in vbase.modules():
            if type(module) is nn.Linear:
                module.forward = linear_wx.__get__(module)
        base = self.base
        object.__setattr__(self, "base", vbase)  # (never a submodule)
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                self.trial(dim, lambda *a: vmap(self.call, in_dims=(0, 0, None), randomness="error")(*a))
            # an op vmap has no rule for is computed point by point inside it: said once in the path's line, not
            # in PyTorch's multi-line warning at every forward that reaches it (a Transformer layer: two ops)
            self.slow_ops = list(dict.fromkeys(m.group(1) for w in caught if (m := SLOW_OP.search(str(w.message)))))
            warnings.filterwarnings("ignore", message=SLOW_OP.pattern)
            for w in caught:
                if not SLOW_OP.search(str(w.message)):
                    warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
            return
        except Exception as err:  # noqa: BLE001 (whatever vmap refuses, the loop may train)
            self.why = reason(err, net)
        object.__setattr__(self, "base", base)
        self.mode = "loop"
        try:
            drew = self.trial(dim, lambda p, b, x: torch.stack([self.call({n: t[k] for n, t in p.items()},
                                                                          {n: t[k] for n, t in b.items()}, x)
                                                                for k in range(min(2, len(self.params[0])))]))
        except Exception as err:  # noqa: BLE001 (said in one line)
            raise ValueError(f"--model.net {type(net).__name__}: the grid cannot train it{where(err)}: "
                             f"{clean(err)}") from None
        if not drew:  # its points side by side on the CPU's cores (a draw would come from the one global generator)
            self.threads = PointThreads(self.base)

    def trial(self, dim: int, forward: object) -> bool:
        """A training step and an evaluation of two points; whether they drew from PyTorch's CPU generator."""
        params, buffers = self.stacked()
        params = {n: p[:2].detach().clone().requires_grad_() for n, p in params.items()}
        buffers = {n: b[:2].clone() for n, b in buffers.items()}
        x = torch.zeros(2, dim)
        try:
            with torch.random.fork_rng(devices=[]):
                state = torch.get_rng_state()
                out = forward(params, buffers, x)
                out.sum().backward()
                lost = [n for n in self.used if params[n].grad is None]
                if lost:  # the forward computed with a tensor functional_call could not replace: silently wrong
                    raise RuntimeError(f"its parameter '{lost[0]}' gets no gradient in the grid, where it does in a "
                                       f"single run: the forward uses a copy of it that the grid cannot replace (a "
                                       f"parameter kept outside its module)")
                self.base.eval()
                with torch.no_grad():
                    forward(params, buffers, x)
                return not torch.equal(state, torch.get_rng_state())
        finally:
            self.base.train(True)


def on_meta(net: nn.Module) -> nn.Module:
    """A copy of ``net`` with its tensors on the meta device (no memory), ties kept: a Parameter the network uses under
    two names (tied weights) stays one, so ``functional_call`` replaces both uses with the stacked tensor, as the
    single run's optimizer updates one tensor. (``.to("meta")`` alone makes one Parameter per name.)"""
    base = copy.deepcopy(net).to("meta")
    first: dict[int, str] = {}
    for name, p in net.named_parameters(remove_duplicate=False):
        owner = first.setdefault(id(p), name)
        if owner != name:  # tied: the copy's second name got a Parameter of its own
            module, _, attr = name.rpartition(".")
            setattr(base.get_submodule(module), attr, base.get_parameter(owner))
    return base


def trained_parameters(net: nn.Module, dim: int) -> list[str]:
    """The parameters a single run's training step gives a gradient (a copy of ``net``, batch (2, dim))."""
    ref = copy.deepcopy(net)
    with torch.random.fork_rng(devices=[]):
        ref(torch.zeros(2, dim)).sum().backward()
    return [n for n, p in ref.named_parameters() if p.grad is not None]


def reason(err: BaseException, net: nn.Module) -> str:
    """Why vmap cannot batch ``net``, in a few words."""
    text = clean(err)
    if "random" in text:
        layer = next((f"{type(m).__name__} at '{n}'" for n, m in net.named_modules()
                      if isinstance(m, nn.modules.dropout._DropoutNd) and m.p > 0), None)
        return f"it draws random numbers{f' ({layer})' if layer else ''}, each point from its own stream"
    return f"vmap cannot batch it{where(err)}: {text}"


def clean(err: BaseException) -> str:
    """PyTorch's message on one line, without its advice to file issues or try other APIs."""
    text = " ".join(str(err).split())
    for cut in (" Please ", " We don't support", " We could not", " If you are using", " Note: "):
        text = text.split(cut)[0]
    return text


def where(err: BaseException) -> str:
    """`` (at file:line in function)`` for the innermost frame outside torch: the user's line that vmap refused."""
    torch_dir = os.path.dirname(torch.__file__)
    frames = [f for f in traceback.extract_tb(err.__traceback__) if not f.filename.startswith(torch_dir)]
    if not frames or frames[-1].filename == __file__:
        return ""
    frame = frames[-1]
    return f" (at {os.path.basename(frame.filename)}:{frame.lineno} in {frame.name})"
