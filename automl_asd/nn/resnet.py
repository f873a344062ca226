"""A compact ResNet-style CNN over spectrogram crops, with an optional whole-clip spectrum branch.

Branch (a): ``(B, T, F)`` spectrogram crop -> stem conv -> 4 residual stages (stride 2 from the
second stage) -> mean over time -> flatten over (channels, frequency) -> linear -> ``emb_dim``.
Keeping the frequency axis until the last layer matters for machine sounds, whose identity sits
in fixed spectral peaks. Branch (b), optional: the ``(B, F)`` whole-clip mean spectrum ->
three strided Conv1D layers -> linear -> ``emb_dim``. The output is the concatenation
(``emb_dim`` or ``2*emb_dim``); it is L2-normalised by the loss and by the scorer, not here.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from automl_asd.nn.specs import SIZES

__all__ = ["NetConfig", "EmbeddingNet", "SIZES"]



@dataclass(frozen=True)
class NetConfig:
    """Shape of an ``EmbeddingNet``: input bins, size name, embedding size, spectrum branch."""

    n_bins: int
    size: str = "small"
    emb_dim: int = 128
    spectrum_branch: bool = True

    @property
    def out_dim(self) -> int:
        return self.emb_dim * (2 if self.spectrum_branch else 1)


class _Block(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False),
            nn.BatchNorm2d(c_out),
            nn.ReLU(inplace=True),
            nn.Conv2d(c_out, c_out, 3, padding=1, bias=False),
            nn.BatchNorm2d(c_out),
        )
        self.skip: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.skip = nn.Sequential(
                nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out)
            )
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        out: Tensor = self.act(self.body(x) + self.skip(x))
        return out


def _conv_out(n: int, stride: int) -> int:
    return (n - 1) // stride + 1  # kernel 3 / padding 1, or kernel 1 / padding 0


class EmbeddingNet(nn.Module):
    """Spectrogram-crop ResNet (+ optional spectrum branch) -> embedding ``(B, out_dim)``."""

    def __init__(self, config: NetConfig) -> None:
        super().__init__()
        if config.size not in SIZES:
            raise ValueError(f"unknown net size {config.size!r}; valid: {', '.join(SIZES)}")
        self.config = config
        widths, n_blocks = SIZES[config.size]
        self.stem = nn.Sequential(
            nn.Conv2d(1, widths[0], 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(widths[0]),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2, ceil_mode=True),
        )
        layers: list[nn.Module] = []
        c_in = widths[0]
        f = -(-_conv_out(config.n_bins, 2) // 2)  # stride-2 stem conv, then 2x2 max-pool
        for stage, c_out in enumerate(widths):
            for block in range(n_blocks):
                stride = 2 if (stage > 0 and block == 0) else 1
                layers.append(_Block(c_in, c_out, stride))
                f = _conv_out(f, stride)
                c_in = c_out
        self.stages = nn.Sequential(*layers)
        self.head = nn.Linear(c_in * f, config.emb_dim, bias=False)
        self.spectrum: nn.Module | None = None
        if config.spectrum_branch:
            s = config.n_bins
            convs: list[nn.Module] = []
            c = 1
            for c_out in (16, 32, 32):
                convs += [nn.Conv1d(c, c_out, 7, stride=2, padding=3, bias=False),
                          nn.BatchNorm1d(c_out), nn.ReLU(inplace=True)]
                s = (s - 1) // 2 + 1
                c = c_out
            self.spectrum = nn.Sequential(
                *convs, nn.Flatten(), nn.Linear(c * s, 128, bias=False), nn.BatchNorm1d(128),
                nn.ReLU(inplace=True), nn.Linear(128, config.emb_dim, bias=False),
            )

    def forward(self, crops: Tensor, spectra: Tensor | None = None) -> Tensor:
        """``crops (B, T, F)``, ``spectra (B, F)`` (needed iff the spectrum branch is on)."""
        x = self.stages(self.stem(crops.unsqueeze(1)))  # (B, C, T', F')
        emb = self.head(torch.flatten(x.mean(dim=2), 1))
        if self.spectrum is None:
            return emb  # type: ignore[no-any-return]
        if spectra is None:
            raise ValueError("EmbeddingNet: spectrum branch enabled but no spectra given")
        return torch.cat([emb, self.spectrum(spectra.unsqueeze(1))], dim=1)
