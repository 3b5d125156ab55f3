"""lit_momentum: momentum in gradient descent, shown, measured and compared with PyTorch Lightning."""

__version__ = "0.1.0"
