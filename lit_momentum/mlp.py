"""The network: an MLP sized by the data (input width, classes) and by options (hidden widths, activation).

The article's network is the default: ``Linear(dim, dim // 2) - sigmoid - Linear(dim // 2, 1)``, its output sigmoid
fused into the loss (BCE with logits). Binary labels (``num_classes == 2``) keep that one logit; k > 2 classes get k
logits and cross-entropy. Single runs (``MomentumMLP``) and grids (``GridMLP``) build their initial weights here.
"""

import torch.nn.functional as F
from torch import Tensor, nn

ACTIVATIONS = {"sigmoid": nn.Sigmoid, "relu": nn.ReLU, "tanh": nn.Tanh, "gelu": nn.GELU}


def hidden_widths(dim: int, hidden: int | list[int] | None) -> list[int]:
    """The hidden layers' widths: ``None`` is the article's one layer of ``dim // 2``; an int is one layer."""
    widths = [max(dim // 2, 1)] if hidden is None else [hidden] if isinstance(hidden, int) else list(hidden)
    if not widths or any(not isinstance(w, int) or w < 1 for w in widths):
        raise ValueError(f"model.hidden must be an integer >= 1 or a list of them (or null for dim // 2), got {hidden}")
    return widths


def outputs(num_classes: int) -> int:
    """Logits per sample: one for binary labels (the article's), one per class otherwise."""
    return 1 if num_classes == 2 else num_classes


def make_mlp(dim: int, hidden: list[int], num_classes: int = 2, activation: str = "sigmoid") -> nn.Sequential:
    """``Linear - act - ... - Linear``. Under ``torch.manual_seed(s)`` this gives the initial weights of
    ``python train.py --seed_everything s`` (the grid builds its points with it too)."""
    if activation not in ACTIVATIONS:
        raise ValueError(f"model.activation must be one of {', '.join(ACTIVATIONS)}; got {activation!r}")
    widths = [dim, *hidden]
    layers: list[nn.Module] = []
    for d_in, d_out in zip(widths, widths[1:]):
        layers += [nn.Linear(d_in, d_out), ACTIVATIONS[activation]()]
    return nn.Sequential(*layers, nn.Linear(widths[-1], outputs(num_classes)))


def loss_and_predictions(logits: Tensor, y: Tensor, reduction: str = "mean") -> tuple[Tensor, Tensor]:
    """The loss and the predicted classes for logits (B, 1) (binary labels: BCE) or (B, C) (cross-entropy)."""
    if logits.shape[-1] == 1:
        logits = logits.squeeze(-1)  # (B,)
        loss = F.binary_cross_entropy_with_logits(logits, y.to(logits.dtype), reduction=reduction)
        return loss, logits > 0
    return F.cross_entropy(logits, y.long(), reduction=reduction), logits.argmax(-1)
