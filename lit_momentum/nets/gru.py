"""A recurrent network for MNIST-1D: a GRU reads the signal one value a step, its last state goes to a linear head
(the MNIST-1D paper's fourth model is a GRU: 91 % test accuracy there).

    python train.py --config configs/gru.yaml                         # MNIST-1D, Adam lr 1e-2, batch 128
    python -m lit_momentum.sweep --config configs/sweep_gru.yaml      # trained point by point: vmap cannot batch nn.GRU
"""

from torch import Tensor, nn

from lit_momentum.loss import outputs


class GRU1D(nn.Module):
    """``nn.GRU`` over the signal's positions and a linear head on its last hidden state.

    Args:
        dim: the signal's length (from the data module): read as ``dim`` steps of one value each.
        num_classes: from the data module (2 gives one logit).
        hidden: the GRU's hidden size.
    """

    def __init__(self, dim: int, num_classes: int, hidden: int = 32) -> None:
        super().__init__()
        if not hidden >= 1:
            raise ValueError(f"model.net.hidden must be an integer >= 1, got {hidden}")
        self.gru = nn.GRU(1, hidden, batch_first=True)
        self.head = nn.Linear(hidden, outputs(num_classes))

    def forward(self, x: Tensor) -> Tensor:
        _, h = self.gru(x.unsqueeze(-1))  # (B, dim) -> (B, dim, 1): one value a step; h (1, B, hidden)
        return self.head(h[-1])  # (B, hidden) -> (B, K) logits
