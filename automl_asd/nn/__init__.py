"""Neural-network building blocks (torch) for the embedding families: CNNs and margin losses."""

from __future__ import annotations

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
