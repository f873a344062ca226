"""Angular-margin classification losses on L2-normalised embeddings, and mixup.

All losses take an embedding batch ``emb (B, D)`` and *soft* targets ``targets (B, C)`` (rows sum
to 1; one-hot without mixup) and return the mean cross-entropy over the batch. Class centres are
parameters of the loss module; logits are scaled cosine similarities.

- ``ArcFace`` (Deng et al. 2019): logit of a target class ``s*cos(theta + m)``, others
  ``s*cos(theta)``. With mixup both mixed classes get the margin (weighted by the soft target).
- ``SubClusterAdaCos`` (Wilkinghoff 2021): ``K`` centres per class; softmax over all ``C*K``
  sub-cluster logits ``s*cos``; a class's probability is the sum over its sub-clusters. The
  scale ``s`` is adaptive (AdaCos, Zhang et al. 2019): it starts at ``sqrt(2)*log(C*K-1)`` and
  is re-estimated on every training batch as ``log(B_avg) / cos(min(pi/4, theta_med))`` where
  ``B_avg`` is the batch mean of ``sum exp(s*cos)`` over non-target sub-clusters and
  ``theta_med`` the batch median of the (soft-target weighted) mean angle to the target
  sub-clusters. The adaptive scale is floored at ``MIN_SCALE`` (2): with very few classes
  ``B_avg`` drops below 1 once the non-target cosines turn negative, and the unfloored rule then
  drives ``s`` to zero or below, which stops training (the rule assumes many classes).
- ``AdaCos`` is ``SubClusterAdaCos`` with one sub-cluster.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from automl_asd.nn.specs import LOSSES

__all__ = ["ArcFace", "AdaCos", "SubClusterAdaCos", "make_margin_loss", "mixup",
           "feature_exchange", "LOSSES"]

_EPS = 1e-7
MIN_SCALE = 2.0


class _CosineHead(nn.Module):
    """Holds ``n_centres`` class centres and computes cosine similarities to them."""

    def __init__(self, dim: int, n_centres: int, *, trainable: bool = True) -> None:
        super().__init__()
        w = torch.empty(n_centres, dim)
        nn.init.xavier_uniform_(w)
        self.centres = nn.Parameter(w, requires_grad=trainable)

    def cosine(self, emb: Tensor) -> Tensor:
        """Cosine similarity ``(B, n_centres)`` of each embedding to each centre."""
        return F.normalize(emb.float(), dim=1) @ F.normalize(self.centres.float(), dim=1).T


def _soft_ce(log_probs: Tensor, targets: Tensor) -> Tensor:
    return -(targets * log_probs).sum(dim=1).mean()


class ArcFace(_CosineHead):
    """Additive angular margin loss. ``scale`` is ``s``, ``margin`` is ``m`` (radians)."""

    def __init__(
        self, dim: int, n_classes: int, *, scale: float = 30.0, margin: float = 0.5,
        trainable: bool = True,
    ) -> None:
        super().__init__(dim, n_classes, trainable=trainable)
        self.n_classes = n_classes
        self.scale = float(scale)
        self.margin = float(margin)

    def forward(self, emb: Tensor, targets: Tensor) -> Tensor:
        cos = self.cosine(emb).clamp(-1 + _EPS, 1 - _EPS)
        theta = torch.acos(cos)
        # The margin is applied in proportion to the soft target; the angle is capped at pi so
        # the target logit stays monotone in theta.
        shifted = torch.clamp(theta + self.margin * (targets > 0).to(theta.dtype), max=math.pi)
        logits = self.scale * torch.cos(shifted)
        return _soft_ce(F.log_softmax(logits, dim=1), targets)


class SubClusterAdaCos(_CosineHead):
    """Sub-cluster AdaCos loss with ``n_subclusters`` centres per class (adaptive scale)."""

    scale: Tensor

    def __init__(
        self, dim: int, n_classes: int, *, n_subclusters: int = 16, trainable: bool = True
    ) -> None:
        if n_subclusters < 1:
            raise ValueError(f"n_subclusters must be >= 1, got {n_subclusters}")
        super().__init__(dim, n_classes * n_subclusters, trainable=trainable)
        self.n_classes = n_classes
        self.n_subclusters = n_subclusters
        n_total = n_classes * n_subclusters
        self.register_buffer(
            "scale", torch.tensor(max(MIN_SCALE, math.sqrt(2.0) * math.log(max(n_total - 1, 2))))
        )

    def _expand(self, targets: Tensor) -> Tensor:
        # (B, C) -> (B, C*K), class-major: sub-cluster k of class c is column c*K + k.
        return targets.repeat_interleave(self.n_subclusters, dim=1)

    def forward(self, emb: Tensor, targets: Tensor) -> Tensor:
        cos = self.cosine(emb).clamp(-1 + _EPS, 1 - _EPS)
        if self.training:
            with torch.no_grad():
                self.scale.copy_(self._new_scale(cos, targets))
        logits = self.scale * cos
        log_p_sub = F.log_softmax(logits, dim=1)
        b = log_p_sub.shape[0]
        log_p_class = torch.logsumexp(
            log_p_sub.view(b, self.n_classes, self.n_subclusters), dim=2
        )
        return _soft_ce(log_p_class, targets)

    def _new_scale(self, cos: Tensor, targets: Tensor) -> Tensor:
        t_sub = self._expand(targets)
        non_target = t_sub <= 0
        b_avg = (torch.exp(self.scale * cos) * non_target).sum(dim=1).mean()
        theta = torch.acos(cos)
        weights = t_sub / self.n_subclusters  # each row sums to 1
        theta_class = (weights * theta).sum(dim=1)
        theta_med = torch.quantile(theta_class, 0.5)  # mean of the middle pair for even B
        denom = torch.cos(torch.clamp(theta_med, max=math.pi / 4))
        return torch.clamp(torch.log(torch.clamp(b_avg, min=_EPS)) / denom, min=MIN_SCALE)


class AdaCos(SubClusterAdaCos):
    """AdaCos: sub-cluster AdaCos with a single centre per class."""

    def __init__(self, dim: int, n_classes: int, *, trainable: bool = True) -> None:
        super().__init__(dim, n_classes, n_subclusters=1, trainable=trainable)


def make_margin_loss(
    name: str,
    dim: int,
    n_classes: int,
    *,
    n_subclusters: int = 16,
    arcface_scale: float = 30.0,
    arcface_margin: float = 0.5,
) -> nn.Module:
    """Build a loss module by name (one of ``LOSSES``)."""
    if name == "arcface":
        return ArcFace(dim, n_classes, scale=arcface_scale, margin=arcface_margin)
    if name == "adacos":
        return AdaCos(dim, n_classes)
    if name == "subcluster_adacos":
        return SubClusterAdaCos(dim, n_classes, n_subclusters=n_subclusters)
    raise ValueError(f"unknown margin loss {name!r}; valid losses: {', '.join(LOSSES)}")


def mixup(
    inputs: tuple[Tensor, ...],
    targets: Tensor,
    *,
    prob: float,
    generator: torch.Generator,
) -> tuple[tuple[Tensor, ...], Tensor]:
    """Mix each sample with a random partner with probability ``prob``.

    Every tensor in ``inputs`` (same batch size ``B``) and the soft ``targets (B, C)`` are mixed
    with the same ``lambda ~ U(0, 1)`` per sample and the same partner permutation; samples that
    are not selected keep ``lambda = 1``. Randomness comes from ``generator`` only.
    """
    b = targets.shape[0]
    if prob <= 0 or b < 2:
        return inputs, targets
    dev = targets.device
    lam = torch.rand(b, generator=generator).to(dev)
    use = torch.rand(b, generator=generator).to(dev) < prob
    lam = torch.where(use, lam, torch.ones_like(lam))
    perm = torch.randperm(b, generator=generator).to(dev)

    def mix(x: Tensor) -> Tensor:
        shape = (b,) + (1,) * (x.dim() - 1)
        lam_x = lam.view(shape).to(x.dtype)
        return lam_x * x + (1 - lam_x) * x[perm]

    return tuple(mix(x) for x in inputs), mix(targets)


def feature_exchange(
    emb: Tensor, targets: Tensor, split: int, *, generator: torch.Generator
) -> tuple[Tensor, Tensor]:
    """Feature exchange (FeatEx) for a two-branch embedding: self-supervised extra classes.

    ``emb (B, D)`` is the concatenation of branch 1 (columns ``[:split]``) and branch 2
    (``[split:]``); ``targets (B, C)`` are soft class targets. For a random partner permutation
    ``p`` (from ``generator``), the exchanged embedding of row ``i`` is
    ``[emb[i, :split], emb[p[i], split:]]``. Returns ``(B + B', D)`` embeddings (originals,
    then the exchanged rows whose partner differs) and ``(B + B', 2C)`` targets: an original
    keeps its target in the first ``C`` columns; an exchanged row gets
    ``0.5 * targets[i] + 0.5 * targets[p[i]]`` in the last ``C`` columns ("exchanged, from
    these two classes"). The classifier must therefore tell whether the two branches belong
    together, which it cannot do from coarse class cues alone.
    """
    b = targets.shape[0]
    perm = torch.randperm(b, generator=generator).to(emb.device)
    moved = perm != torch.arange(b, device=emb.device)
    if not bool(moved.any()):
        return emb, torch.cat([targets, torch.zeros_like(targets)], dim=1)
    ex = torch.cat([emb[moved, :split], emb[perm[moved], split:]], dim=1)
    ex_t = 0.5 * targets[moved] + 0.5 * targets[perm[moved]]
    out_t = torch.cat([
        torch.cat([targets, torch.zeros_like(targets)], dim=1),
        torch.cat([torch.zeros_like(ex_t), ex_t], dim=1),
    ])
    return torch.cat([emb, ex]), out_t
