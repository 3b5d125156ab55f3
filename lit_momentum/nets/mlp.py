"""The article's network, and any MLP: ``Linear - act - ... - Linear``, sized by the data.

    python train.py                                                   # Linear(1000, 500) - sigmoid - Linear(500, 1)
    python train.py --config configs/mnist1d.yaml                     # 40 - 100 - 100 - 10, relu
    python train.py --data MNIST1DDataModule --model.net.hidden []    # no hidden layer: a linear model
"""

from typing import Literal

from torch import nn

from lit_momentum.loss import outputs

ACTIVATIONS = {"sigmoid": nn.Sigmoid, "relu": nn.ReLU, "tanh": nn.Tanh, "gelu": nn.GELU}


def hidden_widths(dim: int, hidden: int | list[int] | None) -> list[int]:
    """The hidden layers' widths: ``None`` is the article's one layer of ``dim // 2``; an int is one layer; ``[]``
    none (a linear model)."""
    widths = [max(dim // 2, 1)] if hidden is None else [hidden] if isinstance(hidden, int) else list(hidden)
    if any(not isinstance(w, int) or isinstance(w, bool) or w < 1 for w in widths):
        raise ValueError(f"model.net.hidden must be an integer >= 1, a list of them ([] for none: a linear model) or "
                         f"null for dim // 2; got {hidden}")
    return widths


class MLP(nn.Sequential):
    """An MLP, ``Linear - act - ... - Linear``: by default the article's, one hidden layer of ``dim // 2``, sigmoid.

    Under ``torch.manual_seed(s)`` its weights are those of ``python train.py --seed_everything s`` (a grid point of
    seed s is built the same way).

    Args:
        dim: input width (from the data module).
        num_classes: from the data module; 2 gives one logit (binary labels, as in the article), k > 2 gives k.
        hidden: hidden widths, an int or a list; ``[]`` for a linear model (logistic regression); ``dim // 2``
            when not given (the article's).
        activation: after every hidden layer: sigmoid (the article's), relu, tanh or gelu.
    """

    def __init__(self, dim: int, num_classes: int, hidden: int | list[int] | None = None,
                 activation: Literal["sigmoid", "relu", "tanh", "gelu"] = "sigmoid") -> None:
        if activation not in ACTIVATIONS:
            raise ValueError(f"model.net.activation must be one of {', '.join(ACTIVATIONS)}; got {activation!r}")
        widths = [dim, *hidden_widths(dim, hidden)]
        layers: list[nn.Module] = []
        for d_in, d_out in zip(widths, widths[1:]):
            layers += [nn.Linear(d_in, d_out), ACTIVATIONS[activation]()]
        super().__init__(*layers, nn.Linear(widths[-1], outputs(num_classes)))  # (B, dim) -> (B, K) logits
