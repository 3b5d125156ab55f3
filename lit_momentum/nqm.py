"""The noisy quadratic model (NQM) of Zhang et al., "Which algorithmic choices matter at which batch sizes?
Insights from a noisy quadratic model" (NeurIPS 2019): the theory beside the batch-size study.

A diagonal quadratic ``L(w) = 1/2 sum_i h_i w_i^2`` whose gradient is seen with noise of variance ``h_i / B`` per
direction (batch size ``B``), trained by ``torch.optim.SGD``'s rule ``v <- m v + g``, ``w <- w - lr v``. Per
direction the pair ``x = (w, v)`` evolves linearly, ``x' = A x + b eps`` with

    A = [[1 - lr h, -lr m], [h, m]],   b = [-lr, 1],   eps ~ (0, h / B),

so its second moments ``s = (E w^2, E w v, E v^2)`` follow an exact linear recursion ``s' = M s + q``, and the
expected loss ``E L = 1/2 sum_i h_i E w_i^2`` needs no sampling. With ``s* = (I - M)^-1 q`` (the noise floor),
``s_t = s* + M^t (s_0 - s*)``; ``M^(2^j)`` by repeated squaring finds the first step below a target by binary search
in ``log2(max_steps)`` products, for every direction, lr, momentum and batch size at once.

At small B the noise floor ``s*`` (proportional to ``lr / B``) forces a small lr: steps fall as 1/B and momentum
only acts as a bigger step. At large B the curvature limits the step (``lr h_max < 2 (1 + m)``), and momentum's
acceleration (the ``sqrt(kappa)`` of ``lit_momentum.quadratic``) shows.

Adam, as Zhang et al. model it, is momentum preconditioned by ``H^-p`` (``precondition=p``): direction i steps with
``lr h_i^-p``. Here ``p = 1/2``: Adam divides by the root of its second moment, ``E g_i^2 = h_i^2 w_i^2 + h_i / B``,
whose noise term ``h_i / B`` dominates near the noise floor that decides the steps to a target, so its step in
direction i goes as ``h_i^-1/2`` (its ``B^1/2`` is absorbed by the best lr, searched per batch size).
"""

import numpy as np

MAX_POWER = 24  # steps up to 2**24 (16.7 million)


def spectrum(dim: int) -> np.ndarray:
    """The curvatures ``h_i = 1 / i``, i = 1..dim (Zhang et al.'s choice): condition number ``dim``."""
    return 1.0 / np.arange(1, dim + 1)


def moments(h: np.ndarray, lr: np.ndarray, m: np.ndarray, batch: float) -> tuple[np.ndarray, np.ndarray]:
    """The recursion ``s' = M s + q`` of the second moments (E w^2, E w v, E v^2), for arrays ``h, lr, m`` that
    broadcast together: ``M`` (..., 3, 3) and ``q`` (..., 3)."""
    h, lr, m = np.broadcast_arrays(h, lr, m)
    a, c = 1 - lr * h, -lr * m  # w' = a w + c v - lr eps
    step_matrix = np.stack([np.stack([a * a, 2 * a * c, c * c], -1),  # v' = h w + m v + eps
                  np.stack([a * h, a * m + c * h, c * m], -1),
                  np.stack([h * h, 2 * h * m, m * m], -1)], -2)
    noise = h / batch
    q = np.stack([noise * lr * lr, -noise * lr, noise], -1)
    return step_matrix, q


def expected_loss(h: np.ndarray, lr: float, m: float, batch: float, steps: int, w0: float = 1.0) -> np.ndarray:
    """``E L`` after 0, 1, ..., ``steps`` steps, by running the recursion step by step (the reference)."""
    step_matrix, q = moments(h, lr, m, batch)  # (d, 3, 3), (d, 3)
    s = np.zeros(h.shape + (3,))
    s[..., 0] = w0 ** 2
    out = [0.5 * (h * s[..., 0]).sum()]
    for _ in range(steps):
        s = np.einsum("...ij,...j->...i", step_matrix, s) + q
        out.append(0.5 * (h * s[..., 0]).sum())
    return np.array(out)


def steps_to_target(h: np.ndarray, lr: np.ndarray, m: np.ndarray, batch: float, target: float,
                    w0: float = 1.0, precondition: float = 0.0) -> np.ndarray:
    """The first step at which ``E L <= target``, for each (lr, m) pair of the broadcast ``lr`` and ``m`` arrays
    (``inf`` where it is not reached within ``2**MAX_POWER`` steps, or the run diverges). Binary search over
    ``t``: exact where ``E L`` falls monotonically, which it does but for the transient wobble of heavy momentum.
    ``precondition``: p of the preconditioner ``H^-p`` (0: none)."""
    lr, m = np.broadcast_arrays(np.asarray(lr, float), np.asarray(m, float))
    # direction i steps with lr h_i^-p (p = 0: plain momentum; 1/2: Adam as a preconditioner, see the module)
    step_matrix, q = moments(h, lr[..., None] * h ** -precondition, m[..., None], batch)  # (..., d, 3, 3), (..., d, 3)
    with np.errstate(all="ignore"):
        lhs = np.eye(3) - step_matrix
        singular = ~(np.abs(np.linalg.det(lhs)) > 1e-300)  # a unit eigenvalue: on the edge of stability
        lhs[singular] = np.eye(3)
        fixed = np.linalg.solve(lhs, q[..., None])[..., 0]  # s*: the noise floor
        fixed[singular] = np.nan  # never reached
        dev = -fixed
        dev[..., 0] += w0 ** 2  # s_0 - s*
        powers = [step_matrix]  # M^(2^j)
        for _ in range(MAX_POWER):
            powers.append(powers[-1] @ powers[-1])

        def loss(d: np.ndarray) -> np.ndarray:
            value = 0.5 * (h * (fixed[..., 0] + d[..., 0])).sum(-1)
            return np.where(np.isfinite(value), value, np.inf)

        reached = loss(np.einsum("...ij,...j->...i", powers[-1], dev)) <= target
        at_start = loss(dev) <= target
        t = np.zeros(lr.shape)
        for j in range(MAX_POWER, -1, -1):  # the largest t with E L > target, bit by bit
            trial = np.einsum("...ij,...j->...i", powers[j], dev)
            above = loss(trial) > target
            dev = np.where(above[..., None, None], trial, dev)  # (..., d, 3)
            t = t + np.where(above, 2 ** j, 0)
    return np.where(at_start, 0.0, np.where(reached, t + 1, np.inf))


def simulate(h: np.ndarray, lr: float, m: float, batch: float, steps: int, runs: int, seed: int = 0,
             w0: float = 1.0) -> np.ndarray:
    """``E L`` after each of ``steps`` steps, estimated from ``runs`` sampled runs of SGD with momentum on the NQM
    (gradient noise drawn each step): the Monte-Carlo check of the recursion."""
    rng = np.random.default_rng(seed)
    w = np.full((runs, h.size), w0)
    v = np.zeros_like(w)
    out = [0.5 * (h * w * w).sum(-1).mean()]
    for _ in range(steps):
        g = h * w + rng.standard_normal(w.shape) * np.sqrt(h / batch)
        v = m * v + g
        w = w - lr * v
        out.append(0.5 * (h * w * w).sum(-1).mean())
    return np.array(out)
