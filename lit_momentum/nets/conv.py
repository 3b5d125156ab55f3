"""The MNIST-1D paper's CNN (Greydanus & Kobak, ``ConvBase``): three 1-D convolutions and a linear head.

    python train.py --config configs/cnn.yaml                         # MNIST-1D, about 94 % in the paper
    python train.py --config configs/cnn.yaml --model.net.channels 8
"""

from torch import Tensor, nn

from lit_momentum.loss import outputs


class ConvNet1D(nn.Module):
    """The MNIST-1D paper's CNN: three 1-D convolutions of ``channels`` each and a linear head.

    Conv1d(1, c, 5, stride 2) - relu - Conv1d(c, c, 3, stride 2) - relu - Conv1d(c, c, 3, stride 2) - relu -
    Linear(c * length, K), every convolution padded by 1: a signal of 40 shrinks to 19, 10 and 5 positions.

    Args:
        dim: the signal's length (from the data module): each sample is one channel of ``dim`` positions.
        num_classes: from the data module (2 gives one logit).
        channels: channels of each convolution (the paper's 25).
    """

    def __init__(self, dim: int, num_classes: int, channels: int = 25) -> None:
        super().__init__()
        if not channels >= 1:
            raise ValueError(f"model.net.channels must be an integer >= 1, got {channels}")
        length = dim
        for kernel in (5, 3, 3):
            length = (length + 2 - kernel) // 2 + 1  # stride 2, padding 1
        if length < 1:
            raise ValueError(f"ConvNet1D needs signals of at least 4 positions, got data.dim {dim}")
        self.conv1 = nn.Conv1d(1, channels, 5, stride=2, padding=1)
        self.conv2 = nn.Conv1d(channels, channels, 3, stride=2, padding=1)
        self.conv3 = nn.Conv1d(channels, channels, 3, stride=2, padding=1)
        self.act = nn.ReLU()
        self.head = nn.Linear(channels * length, outputs(num_classes))

    def forward(self, x: Tensor) -> Tensor:
        h = x.unsqueeze(1)  # (B, dim) -> (B, 1, dim): one channel
        for conv in (self.conv1, self.conv2, self.conv3):
            h = self.act(conv(h))  # (B, c, length)
        return self.head(h.flatten(1))  # (B, c * length) -> (B, K) logits
