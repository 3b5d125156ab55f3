"""Networks for the tests of ``--model.net``: one the grid batches with buffers it updates in place (BatchNorm), and
the kinds it must refuse (dropout, data-dependent control flow) or that break the contract (output shape, type)."""

import torch
from torch import Tensor, nn


class BatchNormMLP(nn.Module):
    """Linear - BatchNorm1d - relu - Linear: running statistics updated in place by every training forward."""

    def __init__(self, dim: int, num_classes: int, width: int = 16) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim, width), nn.BatchNorm1d(width), nn.ReLU(),
                                 nn.Linear(width, 1 if num_classes == 2 else num_classes))

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class DropoutMLP(nn.Module):
    def __init__(self, dim: int, num_classes: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim, 8), nn.Dropout(0.5), nn.Linear(8, 1 if num_classes == 2 else
                                                                               num_classes))

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class Branchy(nn.Module):
    """Takes a Python branch on a value computed from its weights: fine in one run, impossible to batch with vmap
    (each point would take its own branch)."""

    def __init__(self, dim: int, num_classes: int) -> None:
        super().__init__()
        self.a = nn.Linear(dim, 1)

    def forward(self, x: Tensor) -> Tensor:
        h = self.a(x)
        if h.mean() > 0:
            return h
        return -h


class TwoLogits(nn.Module):
    """Always two logits: wrong for binary labels (one logit) and for ten classes."""

    def __init__(self, dim: int, num_classes: int) -> None:
        super().__init__()
        self.lin = nn.Linear(dim, 2)

    def forward(self, x: Tensor) -> Tensor:
        return self.lin(x)


class NotANetwork:
    def __init__(self, dim: int, num_classes: int) -> None:
        self.dim = dim


class NoiseMLP(nn.Module):
    """Functional randomness: Gaussian noise on the hidden layer (``randn_like``) and ``F.dropout``, in training."""

    def __init__(self, dim: int, num_classes: int, width: int = 16) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(dim, width), nn.Linear(width, 1 if num_classes == 2 else num_classes)

    def forward(self, x: Tensor) -> Tensor:
        h = self.a(x).relu()
        if self.training:
            h = h + 0.1 * torch.randn_like(h)
        return self.b(nn.functional.dropout(h, 0.2, self.training))


class LazyMLP(nn.Module):
    """``nn.LazyLinear``: its input width is found at the first forward."""

    def __init__(self, dim: int, num_classes: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.LazyLinear(12), nn.Tanh(), nn.LazyLinear(1 if num_classes == 2 else num_classes))

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class PointBranch(nn.Module):
    """Branches on a value of its own weights (each grid point its own branch): fine point by point."""

    def __init__(self, dim: int, num_classes: int) -> None:
        super().__init__()
        self.a = nn.Linear(dim, 8)
        self.b = nn.Linear(8, 1 if num_classes == 2 else num_classes)

    def forward(self, x: Tensor) -> Tensor:
        h = self.a(x)
        h = h.relu() if self.a.bias.sum() > 0 else h.tanh()
        return self.b(h)


class HeldWeight(nn.Module):
    """Keeps its weight in a plain list as well and computes with that copy: fine in one run, but ``functional_call``
    cannot hand it a grid point's weight (the grid cannot train it at all)."""

    def __init__(self, dim: int, num_classes: int) -> None:
        super().__init__()
        self.lin = nn.Linear(dim, 1 if num_classes == 2 else num_classes)
        self.held = [self.lin.weight]

    def forward(self, x: Tensor) -> Tensor:
        return x @ self.held[0].T + self.lin.bias



class TiedMLP(nn.Module):
    """Two hidden layers that share one weight (``second.weight = first.weight``: one Parameter under two names, as
    tied encoders and decoders have); ``dropout > 0`` adds a random layer (the grid's point-by-point path)."""

    def __init__(self, dim: int, num_classes: int, width: int = 16, dropout: float = 0.0) -> None:
        super().__init__()
        self.inp, self.first, self.second = nn.Linear(dim, width), nn.Linear(width, width), nn.Linear(width, width)
        self.second.weight = self.first.weight
        self.drop = nn.Dropout(dropout)
        self.out = nn.Linear(width, 1 if num_classes == 2 else num_classes)

    def forward(self, x: Tensor) -> Tensor:
        h = self.first(self.inp(x).tanh()).tanh()
        return self.out(self.second(self.drop(h)).tanh())


class TinyTransformer(nn.Module):
    """One ``nn.TransformerEncoderLayer`` over two tokens made from the input (B, D) -> (B, 2, width): two of its ops
    (attention, the fused eval layer) have no vmap batching rule, so PyTorch computes them point by point."""

    def __init__(self, dim: int, num_classes: int, width: int = 8) -> None:
        super().__init__()
        self.embed = nn.Linear(dim, 2 * width)
        self.layer = nn.TransformerEncoderLayer(width, nhead=2, dim_feedforward=16, dropout=0.0, batch_first=True)
        self.head = nn.Linear(width, 1 if num_classes == 2 else num_classes)

    def forward(self, x: Tensor) -> Tensor:
        tokens = self.embed(x).unflatten(-1, (2, -1))  # (B, D) -> (B, 2, width)
        return self.head(self.layer(tokens).mean(1))  # (B, K)
