"""What a network's logits mean: one logit and BCE for binary labels (the article's), k logits and cross-entropy for
k > 2 classes. Single runs and grids (whose logits carry a leading grid dimension) share these."""

import torch.nn.functional as F
from torch import Tensor


def outputs(num_classes: int) -> int:
    """Logits per sample a network gives: one for binary labels (the article's), one per class otherwise."""
    return 1 if num_classes == 2 else num_classes


def loss_and_predictions(logits: Tensor, y: Tensor, reduction: str = "mean") -> tuple[Tensor, Tensor]:
    """The loss and the predicted classes for logits ``(..., B, K)`` and labels ``(B,)``: K = 1 is binary (BCE with
    logits: the output sigmoid fused into the loss), else cross-entropy. A leading grid dimension, (N, B, K), gives
    each point its own values; ``reduction="none"`` per-sample losses (..., B)."""
    if logits.shape[-1] == 1:
        logits = logits.squeeze(-1)  # (..., B)
        loss = F.binary_cross_entropy_with_logits(logits, y.to(logits.dtype).expand_as(logits), reduction=reduction)
        return loss, logits > 0
    target = y.long().expand(logits.shape[:-1])  # (..., B)
    classes_second = logits.movedim(-1, 1) if logits.dim() > 2 else logits  # cross_entropy wants (N, K, B)
    return F.cross_entropy(classes_second, target, reduction=reduction), logits.argmax(-1)
