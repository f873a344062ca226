"""Neural-network building blocks (torch) for the embedding families: CNNs and margin losses.

Loaded lazily: ``automl_asd.nn.specs`` (names and sizes) can be read without importing torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from automl_asd.nn.losses import AdaCos, ArcFace, SubClusterAdaCos, make_margin_loss, mixup
    from automl_asd.nn.resnet import EmbeddingNet, NetConfig

__all__ = [
    "AdaCos",
    "ArcFace",
    "SubClusterAdaCos",
    "make_margin_loss",
    "mixup",
    "EmbeddingNet",
    "NetConfig",
]


def __getattr__(name: str) -> Any:
    if name in ("AdaCos", "ArcFace", "SubClusterAdaCos", "make_margin_loss", "mixup"):
        from automl_asd.nn import losses  # noqa: PLC0415 (lazy: torch)

        return getattr(losses, name)
    if name in ("EmbeddingNet", "NetConfig"):
        from automl_asd.nn import resnet  # noqa: PLC0415 (lazy: torch)

        return getattr(resnet, name)
    raise AttributeError(f"module 'automl_asd.nn' has no attribute {name!r}")
