"""Names and sizes of the neural building blocks, without torch (recipes are validated against
these in processes that never train, e.g. ``automl-asd recipe validate``)."""

from __future__ import annotations

__all__ = ["LOSSES", "SIZES"]

#: Margin losses by name (see :func:`automl_asd.nn.losses.make_margin_loss`).
LOSSES = ("arcface", "adacos", "subcluster_adacos")

#: size name -> (channels per stage, residual blocks per stage)
SIZES: dict[str, tuple[tuple[int, int, int, int], int]] = {
    "tiny": ((8, 16, 32, 32), 1),
    "small": ((16, 32, 64, 64), 1),
    "medium": ((16, 32, 64, 128), 2),
    "large": ((32, 64, 128, 256), 2),
}
