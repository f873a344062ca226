"""The official DCASE Task 2 baseline autoencoder (the DCASE 2025 baseline system), reproduced.

Input: ``n_frames`` (5) consecutive feature frames concatenated into one vector (640-d for 128
mel bins), hop 1 frame. Network: Linear 640->128->128->128->128->8->128->128->128->128->640,
each Linear except the last followed by BatchNorm1d(momentum=0.01, eps=1e-3) and ReLU.
Training: MSE, Adam(lr 1e-3), batch 256, ``epochs`` (baseline 100), a random 10 % of the frame
vectors held out for validation (as the baseline does).

Scores: ``mse`` = mean squared reconstruction error over all vectors of a clip; ``mahalanobis``
= selective Mahalanobis: residuals are cut into ``n_bins``-d blocks (one per frame); Σ_s / Σ_t
are the covariances of the source / target training blocks (Σ_t = Σ_s without target clips);
a clip's score is ``min(dᵀΣ_s⁺d, dᵀΣ_t⁺d)`` with d the mean residual block of the clip
(pseudo-inverse of Σ + ``cov_ridge``·mean(diag Σ)·I), Σ from every training vector (train and
validation split, as the baseline). Deviations, documented: the baseline centres each batch by
its own mean when accumulating Σ (we centre by the global mean), and it fits the gamma
threshold to per-batch losses; the pipeline fits it to per-clip training scores
(``self_scores``, in-sample for this family), which changes decisions, not AUC/pAUC.

Deterministic on CPU for a given seed: weights are initialised from a seeded
``torch.Generator``, batches are drawn with seeded permutations, and training runs with
``torch.use_deterministic_algorithms(True)`` inside a context (global state is restored).
Speed: all frames stay in one contiguous tensor; each batch gathers its stacked vectors by index
(no DataLoader, no worker processes).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Self

import numpy as np
from numpy.typing import NDArray

from automl_asd.components.device import deterministic_torch, resolve_device
from automl_asd.detectors.base import Detector, ParamSpec, TrainSet
from automl_asd.detectors.registry import register
from automl_asd.progress import EpochLog, types_label

if TYPE_CHECKING:
    import torch

__all__ = ["DcaseAE"]

logger = logging.getLogger(__name__)


def _build_net(n_in: int, hidden: int, bottleneck: int, n_layers: int) -> torch.nn.Module:
    import torch  # noqa: PLC0415
    from torch import nn  # noqa: PLC0415

    dims = [n_in] + [hidden] * n_layers + [bottleneck] + [hidden] * n_layers + [n_in]
    layers: list[nn.Module] = []
    for i in range(len(dims) - 1):
        layers.append(nn.Linear(dims[i], dims[i + 1]))
        if i < len(dims) - 2:
            layers.append(nn.BatchNorm1d(dims[i + 1], momentum=0.01, eps=1e-3))
            layers.append(nn.ReLU())
    net = nn.Sequential(*layers)
    assert isinstance(net, torch.nn.Module)
    return net


def _init_weights(net: torch.nn.Module, generator: torch.Generator) -> None:
    """PyTorch's default Linear init, drawn from ``generator`` instead of the global RNG."""
    import torch  # noqa: PLC0415
    from torch import nn  # noqa: PLC0415

    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, nn.Linear):
                nn.init.kaiming_uniform_(module.weight, a=math.sqrt(5), generator=generator)
                bound = 1.0 / math.sqrt(module.in_features)
                nn.init.uniform_(module.bias, -bound, bound, generator=generator)


@register
class DcaseAE(Detector):
    """Official baseline dense autoencoder on stacked log-mel frames (MSE / Mahalanobis)."""

    name = "dcase_ae"
    params = {
        "epochs": ParamSpec("int", 100, low=1, high=10000, help="training epochs (baseline 100)"),
        "score": ParamSpec("str", "mse", choices=("mse", "mahalanobis"), help="scoring mode"),
        "n_frames": ParamSpec("int", 5, low=1, high=64, help="stacked frames per vector"),
        "hidden": ParamSpec("int", 128, low=4, high=4096, help="hidden layer width"),
        "bottleneck": ParamSpec("int", 8, low=1, high=1024, help="bottleneck width"),
        "n_layers": ParamSpec("int", 4, low=1, high=16, help="hidden layers per side"),
        "lr": ParamSpec("float", 1e-3, low=1e-6, high=1.0, help="Adam learning rate"),
        "batch_size": ParamSpec("int", 256, low=8, high=65536, help="minibatch size"),
        "val_split": ParamSpec(
            "float", 0.1, low=0.0, high=0.5, help="fraction of frame vectors held out"
        ),
        "cov_ridge": ParamSpec(
            "float", 1e-6, low=0.0, high=1.0, help="ridge (× mean variance) added to Σ"
        ),
    }

    #: The scoring mode acts on the trained autoencoder and its residual covariances.
    scoring_params: ClassVar[frozenset[str] | None] = frozenset({"score"})

    epochs: int
    score: str
    n_frames: int
    hidden: int
    bottleneck: int
    n_layers: int
    lr: float
    batch_size: int
    val_split: float
    cov_ridge: float

    def __init__(self, *, seed: int = 0, **kwargs: Any) -> None:
        super().__init__(seed=seed, **kwargs)
        self.device = "cpu"

    def set_device(self, device: str) -> None:
        """Run on ``device`` (``"cpu"``, ``"cuda"``, ``"cuda:1"`` or ``"auto"``)."""
        self.device = resolve_device(device)
        if getattr(self, "fitted_", False):
            self.net_.to(self.device)

    @classmethod
    def min_frames(cls, params: Mapping[str, Any]) -> int:
        return int(cls.canonical_params(params)["n_frames"])

    # ------------------------------------------------------------------ data
    def _frames(
        self, features: Sequence[NDArray[np.float32]]
    ) -> tuple[NDArray[np.float32], NDArray[np.int64], NDArray[np.int64]]:
        """All frames stacked ``(N, n_bins)``, vector start indices ``(K,)``, clip id ``(K,)``."""
        mats = []
        starts = []
        clip_ids = []
        offset = 0
        for i, feat in enumerate(features):
            x = np.asarray(feat, dtype=np.float32)
            if x.ndim != 2:
                raise ValueError(f"{self.name}: clip {i} has shape {x.shape}, expected 2-d")
            n_vec = x.shape[0] - self.n_frames + 1
            if n_vec < 1:
                raise ValueError(
                    f"{self.name}: clip {i} has {x.shape[0]} frames, fewer than "
                    f"n_frames={self.n_frames}"
                )
            mats.append(x)
            starts.append(offset + np.arange(n_vec, dtype=np.int64))
            clip_ids.append(np.full(n_vec, i, dtype=np.int64))
            offset += x.shape[0]
        if not mats:
            raise ValueError(f"{self.name}: no clips")
        return (
            np.ascontiguousarray(np.concatenate(mats)),
            np.concatenate(starts),
            np.concatenate(clip_ids),
        )

    def _gather(self, frames: torch.Tensor, starts: torch.Tensor) -> torch.Tensor:
        import torch  # noqa: PLC0415

        offs = torch.arange(self.n_frames, device=frames.device)
        return frames[starts[:, None] + offs[None, :]].reshape(len(starts), -1)

    # ------------------------------------------------------------------ fit
    def fit(self, train: TrainSet) -> Self:
        import torch  # noqa: PLC0415

        t0 = time.perf_counter()
        frames_np, starts_np, clip_np = self._frames(train.features)
        n_bins = frames_np.shape[1]
        n_in = n_bins * self.n_frames
        dev = torch.device(self.device)
        gen = torch.Generator().manual_seed(self.seed)
        frames = torch.from_numpy(frames_np).to(dev)
        starts = torch.from_numpy(starts_np).to(dev)
        n_vec = len(starts_np)
        perm = torch.randperm(n_vec, generator=gen).to(dev)
        n_val = int(round(self.val_split * n_vec)) if n_vec > 1 else 0
        val_idx, tr_idx = starts[perm[:n_val]], starts[perm[n_val:]]
        if n_vec - n_val < 2:
            # BatchNorm trains on 2+ vectors: with fewer every batch was skipped, and the
            # untrained network scored the clips with a reported training loss of 0
            raise ValueError(
                f"{self.name}: {n_vec} frame vector(s) of {self.n_frames} frames from "
                f"{len(train)} clip(s), {n_vec - n_val} left for training after "
                f"val_split={self.val_split}; training needs at least 2 (more or longer clips)")

        with deterministic_torch(self.device):
            net = _build_net(n_in, self.hidden, self.bottleneck, self.n_layers)
            _init_weights(net, gen)
            net.to(dev)
            # fused: one kernel per tensor instead of a Python loop of small ops.
            opt = torch.optim.Adam(net.parameters(), lr=self.lr, fused=True)
            loss_fn = torch.nn.MSELoss()
            n_tr = len(tr_idx)
            bs = self.batch_size
            losses: list[float] = []
            progress = EpochLog(logger, f"{self.name} ({types_label(train.machine_types)})",
                                self.epochs)
            for epoch in range(self.epochs):
                net.train()
                order = tr_idx[torch.randperm(n_tr, generator=gen).to(dev)]
                total = torch.zeros((), device=dev)
                n_batches = 0
                for b in range(0, n_tr, bs):
                    batch_starts = order[b : b + bs]
                    if len(batch_starts) < 2:
                        continue  # BatchNorm needs 2+ rows in training mode
                    x = self._gather(frames, batch_starts)
                    loss = loss_fn(net(x), x)
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    total += loss.detach()
                    n_batches += 1
                losses.append(float(total) / max(n_batches, 1))
                if not math.isfinite(losses[-1]):
                    # a diverged network gives NaN residuals, and the covariance step then
                    # failed with linalg's "ill-conditioned" error instead of naming the cause
                    raise FloatingPointError(f"{self.name}: loss became {losses[-1]} in epoch "
                                             f"{epoch + 1}; lower lr")
                progress.log(epoch + 1, losses[-1])
            net.eval()
            self.net_ = net
            self.n_bins_ = n_bins
            self.val_loss_ = self._mean_loss(frames, val_idx) if n_val else float("nan")
            self.train_losses_ = np.asarray(losses, dtype=np.float64)
            self._fit_covariances(frames, starts, clip_np, np.asarray(train.domains).astype(str))
        self.fitted_ = True
        logger.info("%s: trained on %d vectors from %d clips in %.1f s (final loss %.4f)",
                    self.name, n_vec, len(train), time.perf_counter() - t0,
                    losses[-1] if losses else float("nan"))
        return self

    def _mean_loss(self, frames: torch.Tensor, idx: torch.Tensor) -> float:
        import torch  # noqa: PLC0415

        total = 0.0
        with torch.no_grad():
            for b in range(0, len(idx), 8192):
                x = self._gather(frames, idx[b : b + 8192])
                total += float(((self.net_(x) - x) ** 2).mean(1).sum())
        return total / max(len(idx), 1)

    def _residuals(
        self, frames: torch.Tensor, starts: torch.Tensor
    ) -> Iterator[tuple[int, torch.Tensor]]:
        """Residual vectors ``(b, n_in)`` in chunks, with the chunk's start offset."""
        import torch  # noqa: PLC0415

        with torch.no_grad():
            for b in range(0, len(starts), 8192):
                x = self._gather(frames, starts[b : b + 8192])
                yield b, x - self.net_(x)

    def _fit_covariances(
        self,
        frames: torch.Tensor,
        starts: torch.Tensor,
        clip_ids: NDArray[np.int64],
        domains: NDArray[np.str_],
    ) -> None:
        import torch  # noqa: PLC0415

        d = self.n_bins_
        vec_domain = domains[clip_ids]
        is_target = torch.from_numpy(vec_domain == "target").to(frames.device)
        sums = {k: torch.zeros(d, dtype=torch.float64, device=frames.device) for k in "st"}
        outer = {k: torch.zeros(d, d, dtype=torch.float64, device=frames.device) for k in "st"}
        counts = {"s": 0, "t": 0}
        for b, res in self._residuals(frames, starts):
            tmask = is_target[b : b + len(res)]
            for key, mask in (("s", ~tmask), ("t", tmask)):
                blocks = res[mask].reshape(-1, d).double()
                sums[key] += blocks.sum(0)
                outer[key] += blocks.T @ blocks
                counts[key] += int(mask.sum())
        inv = {}
        for key in "st":
            n_blocks = counts[key] * self.n_frames
            if n_blocks < 2:
                continue
            mean = sums[key] / n_blocks
            cov = (outer[key] - n_blocks * torch.outer(mean, mean)) / (n_blocks - 1)
            ridge = self.cov_ridge * float(torch.diagonal(cov).mean())
            cov = cov + ridge * torch.eye(d, dtype=cov.dtype, device=cov.device)
            inv[key] = torch.linalg.pinv(cov, hermitian=True).cpu().numpy()
        if "s" not in inv:
            inv["s"] = inv["t"]
        if "t" not in inv:
            inv["t"] = inv["s"]
        self.inv_cov_source_ = inv["s"]
        self.inv_cov_target_ = inv["t"]
        self.has_target_ = counts["t"] > 0
        self.has_source_ = counts["s"] > 0

    # ------------------------------------------------------------------ scoring
    def _clip_stats(
        self, features: Sequence[NDArray[np.float32]]
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Per clip: mean squared error ``(n,)`` and mean residual block ``(n, n_bins)``.
        The last result is remembered for the same ``features`` object and network (scoring
        and the domain rule read the same test clips)."""
        memo = getattr(self, "_stats_memo", None)
        if memo is not None and memo[0] is features and memo[1] is self.net_:
            return memo[2].copy(), memo[3].copy()
        mse, blocks = self._clip_stats_uncached(features)
        self._stats_memo = (features, self.net_, mse, blocks)
        return mse.copy(), blocks.copy()

    def _clip_stats_uncached(
        self, features: Sequence[NDArray[np.float32]]
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        import torch  # noqa: PLC0415

        self._check_fitted()
        frames_np, starts_np, clip_np = self._frames(features)
        if frames_np.shape[1] != self.n_bins_:
            raise ValueError(
                f"{self.name}: features have {frames_np.shape[1]} bins, the model was trained "
                f"on {self.n_bins_}"
            )
        dev = next(self.net_.parameters()).device
        frames = torch.from_numpy(frames_np).to(dev)
        starts = torch.from_numpy(starts_np).to(dev)
        n = len(features)
        d = self.n_bins_
        sq = np.zeros(n, dtype=np.float64)
        block_sum = np.zeros((n, d), dtype=np.float64)
        with deterministic_torch(self.device):
            for b, res in self._residuals(frames, starts):
                ids = clip_np[b : b + len(res)]
                r = res.double().cpu().numpy()
                np.add.at(sq, ids, (r**2).mean(1))
                np.add.at(block_sum, ids, r.reshape(len(r), self.n_frames, d).sum(1))
        n_vec = np.bincount(clip_np, minlength=n).astype(np.float64)
        return sq / n_vec, block_sum / (n_vec[:, None] * self.n_frames)

    def _mahalanobis(
        self, blocks: NDArray[np.float64]
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        ds = np.einsum("ij,jk,ik->i", blocks, self.inv_cov_source_, blocks)
        dt = np.einsum("ij,jk,ik->i", blocks, self.inv_cov_target_, blocks)
        return ds, dt

    def score_samples(self, features: Sequence[NDArray[np.float32]]) -> NDArray[np.float64]:
        if len(features) == 0:  # no clips: no scores, as the other families
            self._check_fitted()
            return np.zeros(0)
        mse, blocks = self._clip_stats(features)
        if self.score == "mse":
            return mse
        ds, dt = self._mahalanobis(blocks)
        return np.minimum(ds, dt)

    def nearest_domain(self, features: Sequence[NDArray[np.float32]]) -> NDArray[np.str_]:
        """``"source"`` where D_s <= D_t else ``"target"`` (the one domain trained on when
        the training clips held only one)."""
        _, blocks = self._clip_stats(features)
        ds, dt = self._mahalanobis(blocks)
        return self._domains(ds, dt)

    def _domains(self, ds: NDArray[np.float64], dt: NDArray[np.float64]) -> NDArray[np.str_]:
        if not self.has_target_:
            return np.full(len(ds), "source")
        if not self.has_source_:
            return np.full(len(ds), "target")
        return np.where(ds <= dt, "source", "target")

    def score_with_domain(
        self, features: Sequence[NDArray[np.float32]]
    ) -> tuple[NDArray[np.float64], NDArray[np.str_]]:
        """Scores and nearest domains from one pass of the network over the clips."""
        mse, blocks = self._clip_stats(features)
        ds, dt = self._mahalanobis(blocks)
        scores = mse if self.score == "mse" else np.minimum(ds, dt)
        return scores, self._domains(ds, dt)

    # ------------------------------------------------------------------ state
    def get_state(self) -> dict[str, NDArray[Any]]:
        self._check_fitted()
        state: dict[str, NDArray[Any]] = {
            f"net.{k}": v.detach().cpu().numpy().copy() for k, v in self.net_.state_dict().items()
        }
        state["n_bins"] = np.asarray(self.n_bins_, dtype=np.int64)
        state["inv_cov_source"] = self.inv_cov_source_.copy()
        state["inv_cov_target"] = self.inv_cov_target_.copy()
        state["has_target"] = np.asarray(self.has_target_)
        state["has_source"] = np.asarray(self.has_source_)
        state["train_losses"] = self.train_losses_.copy()
        return state

    def representation_state(self) -> dict[str, NDArray[Any]]:
        """The whole fitted state (it does not depend on ``score``)."""
        return self.get_state()

    def fit_with_representation(self, state: dict[str, NDArray[Any]], train: TrainSet) -> Self:
        return self.set_state(state)

    def set_state(self, state: dict[str, NDArray[Any]]) -> Self:
        import torch  # noqa: PLC0415

        n_bins = int(state["n_bins"])
        net = _build_net(n_bins * self.n_frames, self.hidden, self.bottleneck, self.n_layers)
        weights = {k[4:]: torch.from_numpy(np.array(v)) for k, v in state.items()
                   if k.startswith("net.")}
        net.load_state_dict(weights)
        net.to(torch.device(self.device))
        net.eval()
        self.net_ = net
        self.n_bins_ = n_bins
        self.inv_cov_source_ = np.asarray(state["inv_cov_source"], dtype=np.float64)
        self.inv_cov_target_ = np.asarray(state["inv_cov_target"], dtype=np.float64)
        self.has_target_ = bool(state["has_target"])
        # bundles saved before 2026-12-06 did not record it: they had source clips
        self.has_source_ = bool(state["has_source"]) if "has_source" in state else True
        self.train_losses_ = np.asarray(state["train_losses"], dtype=np.float64)
        self.val_loss_ = float("nan")
        self.fitted_ = True
        return self
