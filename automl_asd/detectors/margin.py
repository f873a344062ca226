"""Margin-trained CNN embeddings (``margin_cnn``): auxiliary classification -> backend scoring.

Trained from scratch on the normal training clips of the run. Pipeline per clip:

1. Input: the ``(n_frames, n_bins)`` dB feature matrix (log-mel or linear STFT). With
   ``mean_subtract`` each frequency's temporal mean is removed (per clip), then everything is
   scaled by the training mean/std. Clips shorter than ``crop_frames`` are tiled; training uses
   one random crop of ``crop_frames`` per clip and epoch.
2. Optional second branch: the clip's mean spectrum (mean over frames of the dB matrix,
   standardised per bin) - the part that mean subtraction removes from branch 1. With
   ``level_norm`` the clip's mean level (mean over bins) is removed first, so recording level
   cannot become a class cue.
3. ``EmbeddingNet`` (compact ResNet, ``size``) -> embedding; loss ArcFace / AdaCos /
   sub-cluster AdaCos on the L2-normalised embedding, optional mixup; Adam.
4. Auxiliary classes by a fixed rule (``label_rule``):
   ``attribute_domain``: one class per (machine type, section, attribute string, domain); clips
   whose attributes are hidden (``noAttribute``) get k-means pseudo-labels on pooled (dB)
   mean/std features instead of the attribute, per (machine type, section, domain), with
   ``min(pseudo_clusters, n_group // 20)`` clusters (at least 1), so a type without attributes
   still has domain x pseudo classes. ``section_domain`` ignores attributes; ``pseudo`` uses
   pseudo-labels everywhere. Fewer than two classes fall back to 4 pseudo-classes.
   With ``featex`` (feature exchange, two branches only) the classifier also sees, per batch,
   embeddings whose spectrum-branch half comes from another clip, as extra classes "exchanged
   from classes a and b" (:func:`automl_asd.nn.losses.feature_exchange`): a self-supervised
   task that needs no attributes.
   ``scope="all"`` trains one network over the training clips of every machine type of the
   run (the classes include the machine type) in a shared stage (``pipeline.fit_shared``);
   each machine type then only embeds its own clips and fits its backend.
5. Scoring: clip embedding = normalised mean of the normalised embeddings of consecutive crops
   covering the clip; scores from any registered backend fitted on the training embeddings.

CUDA is used when present (``device="auto"``) with bf16 autocast (``amp``). On CPU the result is
deterministic for a seed: the model is initialised under a forked, seeded torch RNG and all
sampling uses generators derived from ``seed`` (global RNG state is left untouched).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Self

import numpy as np
from numpy.typing import NDArray

from automl_asd.backends import Backend, make_backend
from automl_asd.components.device import resolve_device
from automl_asd.detectors.base import Detector, ParamSpec, TrainSet
from automl_asd.detectors.embedding import DOMAIN_RULES
from automl_asd.detectors.registry import register
from automl_asd.nn.specs import LOSSES, SIZES
from automl_asd.progress import EpochLog, types_label

if TYPE_CHECKING:  # torch is imported where it is used: validating a recipe must not load it
    import torch

    from automl_asd.nn.resnet import EmbeddingNet

__all__ = ["MarginDetector", "auxiliary_labels"]

logger = logging.getLogger(__name__)

LABEL_RULES = ("attribute_domain", "section_domain", "pseudo")
SCOPES = ("machine", "all")
_EMBED_BATCH = 128


def _pooled(features: Sequence[NDArray[np.float32]]) -> NDArray[np.float64]:
    rows = [np.concatenate([np.asarray(f).mean(axis=0), np.asarray(f).std(axis=0)])
            for f in features]
    x = np.stack(rows).astype(np.float64)
    # Centred but not scaled per dimension: dB differences are comparable across bands, and
    # per-dimension scaling would blow up the many uninformative bands.
    return np.asarray((x - x.mean(axis=0)) / max(float(x.std()), 1e-6), dtype=np.float64)


def _pseudo_labels(x: NDArray[np.float64], k: int, seed: int) -> NDArray[np.int64]:
    if k <= 1 or x.shape[0] <= k:
        return np.zeros(x.shape[0], dtype=np.int64) if k <= 1 else np.arange(x.shape[0])
    from sklearn.cluster import KMeans  # noqa: PLC0415

    return np.asarray(KMeans(n_clusters=k, n_init=3, random_state=seed).fit_predict(x),
                      dtype=np.int64)


def auxiliary_labels(
    train: TrainSet, rule: str, pseudo_clusters: int, seed: int
) -> tuple[NDArray[np.int64], list[str]]:
    """Class index per training clip and the sorted class names, by the fixed ``rule``.

    See the module docstring for the rules. Returns ``(labels (n,), class_names)``.
    """
    if rule not in LABEL_RULES:
        raise ValueError(f"label_rule {rule!r}: must be one of {', '.join(LABEL_RULES)}")
    n = len(train)
    mts = np.asarray(train.machine_types).astype(str)
    secs = np.asarray(train.sections).astype(str)
    doms = np.asarray(train.domains).astype(str)
    attrs = np.asarray(train.attributes).astype(str)
    keys = [f"{mts[i]}|{secs[i]}|{doms[i]}" for i in range(n)]
    if rule == "attribute_domain":
        needs_pseudo = attrs == "noAttribute"
        keys = [k + ("" if needs_pseudo[i] else f"|{attrs[i]}") for i, k in enumerate(keys)]
    else:
        needs_pseudo = np.full(n, rule == "pseudo")
    if needs_pseudo.any() and pseudo_clusters > 1:
        pooled = _pooled(train.features)
        groups = sorted({keys[i] for i in np.flatnonzero(needs_pseudo)})
        for g, group in enumerate(groups):
            idx = np.array([i for i in np.flatnonzero(needs_pseudo) if keys[i] == group])
            k = max(1, min(pseudo_clusters, len(idx) // 20))
            lab = _pseudo_labels(pooled[idx], k, seed + g)
            for i, c in zip(idx, lab, strict=True):
                keys[i] = f"{keys[i]}|pc{int(c)}"
    if len(set(keys)) < 2 and n >= 2:
        lab = _pseudo_labels(_pooled(train.features), min(4, n), seed)
        keys = [f"{k}|fb{int(c)}" for k, c in zip(keys, lab, strict=True)]
    names = sorted(set(keys))
    index = {name: j for j, name in enumerate(names)}
    return np.array([index[k] for k in keys], dtype=np.int64), names


def _tile(x: NDArray[np.float32], n_frames: int) -> NDArray[np.float32]:
    if x.shape[0] >= n_frames:
        return x
    return np.tile(x, (-(-n_frames // x.shape[0]), 1))


def _crop_starts(n: int, crop: int) -> list[int]:
    starts = list(range(0, n - crop + 1, crop))
    if starts[-1] + crop < n:
        starts.append(n - crop)
    return starts


@register
class MarginDetector(Detector):
    """Compact ResNet trained with an angular-margin loss on auxiliary classes + a backend."""

    name = "margin_cnn"
    params = {
        "crop_frames": ParamSpec("int", 128, 8, 2048, help="frames per training crop"),
        "size": ParamSpec("str", "small", choices=tuple(SIZES), help="CNN width/depth"),
        "emb_dim": ParamSpec("int", 128, 8, 1024, help="embedding size per branch"),
        "spectrum_branch": ParamSpec("bool", True,
                                     help="second branch on the clip's mean spectrum"),
        "mean_subtract": ParamSpec("bool", True,
                                   help="remove each frequency's temporal mean per clip"),
        "level_norm": ParamSpec("bool", False,
                                help="remove the clip's overall dB level from the spectrum"),
        "loss": ParamSpec("str", "subcluster_adacos", choices=LOSSES),
        "n_subclusters": ParamSpec("int", 16, 1, 64, help="sub-clusters per class"),
        "arcface_scale": ParamSpec("float", 30.0, 1.0, 128.0),
        "arcface_margin": ParamSpec("float", 0.5, 0.0, 1.5),
        "mixup_prob": ParamSpec("float", 0.5, 0.0, 1.0),
        "label_rule": ParamSpec("str", "attribute_domain", choices=LABEL_RULES),
        "pseudo_clusters": ParamSpec("int", 8, 0, 64,
                                     help="k-means pseudo-classes per group (noAttribute)"),
        "epochs": ParamSpec("int", 10, 1, 500),
        "batch_size": ParamSpec("int", 64, 2, 1024),
        "lr": ParamSpec("float", 1e-3, 1e-6, 1.0),
        "weight_decay": ParamSpec("float", 1e-5, 0.0, 1.0),
        "device": ParamSpec("str", "auto", choices=("auto", "cpu", "cuda")),
        "amp": ParamSpec("bool", True, help="bf16 autocast on CUDA"),
        "backend": ParamSpec("backend", {"name": "knn", "params": {}},
                             help="scoring backend (name + params) on the embeddings"),
        "domain_rule": ParamSpec(
            "str", "nearest_clip", choices=DOMAIN_RULES,
            help="domain of a test clip for per-domain normalisation: that of the nearest "
                 "training embedding, or the backend's own (falls back to nearest_clip)"),
        "scope": ParamSpec(
            "str", "machine", choices=SCOPES,
            help="train one network per machine type, or one over all machine types of the "
                 "run (shared stage; backends stay per machine type)"),
        "featex": ParamSpec(
            "bool", False,
            help="feature exchange between the two branches as extra self-supervised classes "
                 "(needs spectrum_branch)"),
    }

    #: Tiny parameters for the registry-wide contract tests (seconds on CPU).
    test_params: ClassVar[dict[str, Any]] = {
        "size": "tiny", "crop_frames": 16, "emb_dim": 16, "epochs": 3, "batch_size": 16,
        "n_subclusters": 2, "lr": 3e-3}

    #: The backend and the domain rule act on the trained network's embeddings.
    scoring_params: ClassVar[frozenset[str] | None] = frozenset({"backend", "domain_rule"})
    #: The network's width and depth set the cost of an epoch.
    cost_params: ClassVar[tuple[str, ...]] = ("size",)

    crop_frames: int
    size: str
    emb_dim: int
    spectrum_branch: bool
    mean_subtract: bool
    level_norm: bool
    loss: str
    n_subclusters: int
    arcface_scale: float
    arcface_margin: float
    mixup_prob: float
    label_rule: str
    pseudo_clusters: int
    epochs: int
    batch_size: int
    lr: float
    weight_decay: float
    device: str
    amp: bool
    backend: dict[str, Any]
    domain_rule: str
    scope: str
    featex: bool

    # ----------------------------------------------------------------------------- helpers
    def set_device(self, device: str) -> None:
        """Device chosen by the caller (pipeline) when the ``device`` param is ``"auto"``."""
        self.device_request_ = device

    def _device(self) -> torch.device:
        import torch  # noqa: PLC0415

        want = self.device
        if want == "auto":
            want = getattr(self, "device_request_", "auto")
        return torch.device(resolve_device(want))

    def _make_backend(self) -> Backend:
        spec = self.backend
        return make_backend(str(spec["name"]), dict(spec.get("params", {})), self.seed)

    def _build(self, n_bins: int, n_classes: int) -> tuple[EmbeddingNet, torch.nn.Module]:
        import torch  # noqa: PLC0415

        from automl_asd.nn.losses import make_margin_loss  # noqa: PLC0415 (nn imports torch)
        from automl_asd.nn.resnet import EmbeddingNet, NetConfig  # noqa: PLC0415 (nn imports torch)

        config = NetConfig(n_bins=n_bins, size=self.size, emb_dim=self.emb_dim,
                           spectrum_branch=self.spectrum_branch)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            net = EmbeddingNet(config)
            head = make_margin_loss(self.loss, config.out_dim, n_classes,
                                    n_subclusters=self.n_subclusters,
                                    arcface_scale=self.arcface_scale,
                                    arcface_margin=self.arcface_margin)
        return net, head

    def _prepare(
        self, feat: NDArray[np.float32]
    ) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
        x = np.asarray(feat, dtype=np.float32)
        if x.ndim != 2 or x.shape[0] == 0:
            raise ValueError(f"{self.name}: expected a (n_frames>0, n_bins) matrix, got {x.shape}")
        spec = x.mean(axis=0)
        if self.mean_subtract:
            x = x - spec
        if self.level_norm:
            spec = spec - spec.mean()
        return x, spec

    def _normalise(
        self, x: NDArray[np.float32], spec: NDArray[np.float32]
    ) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
        xn = ((x - self.x_mean_) / self.x_std_).astype(np.float32)
        sn = ((spec - self.s_mean_) / self.s_std_).astype(np.float32)
        return _tile(xn, self.crop_frames), sn

    # --------------------------------------------------------------------------- training
    def _train_network(self, train: TrainSet) -> None:
        """Normalisation statistics + the embedding network (and its margin head)."""
        import torch  # noqa: PLC0415

        from automl_asd.nn.losses import feature_exchange, mixup  # noqa: PLC0415 (nn imports torch)

        n = len(train)
        if n < 2:
            raise ValueError(f"{self.name}: needs at least 2 training clips, got {n}")
        if self.featex and not self.spectrum_branch:
            raise ValueError(f"{self.name}: featex exchanges the two branches' embeddings and "
                             "needs spectrum_branch=true")
        prepared = [self._prepare(f) for f in train.features]
        n_bins = prepared[0][0].shape[1]
        if any(x.shape[1] != n_bins for x, _ in prepared):
            raise ValueError(f"{self.name}: training clips differ in n_bins")
        frames = np.concatenate([x for x, _ in prepared])
        self.x_mean_ = np.float32(frames.mean())
        self.x_std_ = np.float32(max(float(frames.std()), 1e-6))
        specs = np.stack([s for _, s in prepared])
        self.s_mean_ = specs.mean(axis=0).astype(np.float32)
        self.s_std_ = np.maximum(specs.std(axis=0), 1e-3 * float(specs.std()) + 1e-6).astype(
            np.float32)
        data = [self._normalise(x, s) for x, s in prepared]

        labels, class_names = auxiliary_labels(train, self.label_rule, self.pseudo_clusters,
                                               self.seed)
        n_classes = len(class_names)
        self.n_classes_ = n_classes * (2 if self.featex else 1)
        self.n_bins_ = n_bins
        logger.info("%s: training on %d clips of %d machine type(s), %d auxiliary classes%s",
                    self.name, n, len(set(np.asarray(train.machine_types).tolist())),
                    n_classes, " (+ FeatEx)" if self.featex else "")
        dev = self._device()
        net, head = self._build(n_bins, self.n_classes_)
        net.to(dev).train()
        head.to(dev).train()
        opt = torch.optim.Adam(list(net.parameters()) + list(head.parameters()),
                               lr=self.lr, weight_decay=self.weight_decay)
        rng = np.random.default_rng(self.seed)
        gen = torch.Generator().manual_seed(self.seed)
        eye = torch.eye(n_classes)
        bs = min(self.batch_size, n)
        use_amp = self.amp and dev.type == "cuda"
        progress = EpochLog(logger, f"{self.name} ({types_label(train.machine_types)})",
                                self.epochs)
        for epoch in range(self.epochs):
            order = rng.permutation(n)
            batches = [order[i : i + bs] for i in range(0, n, bs)]
            if len(batches) > 1 and len(batches[-1]) < 2:  # BatchNorm needs >= 2 samples
                batches[-2] = np.concatenate([batches[-2], batches.pop()])
            total = 0.0
            for idx in batches:
                crops = np.empty((len(idx), self.crop_frames, n_bins), dtype=np.float32)
                for j, i in enumerate(idx):
                    x = data[i][0]
                    start = int(rng.integers(0, x.shape[0] - self.crop_frames + 1))
                    crops[j] = x[start : start + self.crop_frames]
                spectra = np.stack([data[i][1] for i in idx])
                targets = eye[torch.from_numpy(labels[idx])]
                (xc, xs), targets = mixup(
                    (torch.from_numpy(crops), torch.from_numpy(spectra)), targets,
                    prob=self.mixup_prob, generator=gen)
                xc, xs, targets = xc.to(dev), xs.to(dev), targets.to(dev)
                with torch.autocast(device_type=dev.type, dtype=torch.bfloat16,
                                    enabled=use_amp):
                    emb = net(xc, xs if self.spectrum_branch else None)
                emb = emb.float()
                if self.featex:
                    emb, targets = feature_exchange(emb, targets, self.emb_dim, generator=gen)
                loss = head(emb, targets)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                total += float(loss.detach()) * len(idx)
            mean_loss = total / n
            if not math.isfinite(mean_loss):
                raise FloatingPointError(f"{self.name}: loss became {mean_loss} in epoch "
                                         f"{epoch + 1}; lower lr or use another loss")
            progress.log(epoch + 1, mean_loss)
        net.eval()
        head.eval()
        self.net_, self.head_ = net, head

    def fit(self, train: TrainSet) -> Self:
        """Train the network on ``train`` (``scope="machine"``) or take the shared one
        (``scope="all"``, set by :meth:`use_shared`), then fit the backend on ``train``."""
        t0 = time.perf_counter()
        if self.scope == "all":
            if getattr(self, "shared_", None) is None:
                raise ValueError(
                    f"{self.name}: scope='all' trains one network over every machine type of "
                    "the run; fit it with pipeline.fit_shared first (automl-asd apply/search "
                    "and pipeline.run_machine(shared=...) do this)")
        elif not getattr(self, "pretrained_", False):
            self._train_network(train)
        if len(train) < 1:
            raise ValueError(f"{self.name}: no training clips")
        self.fitted_ = True
        emb_train = self.embed(train.features)
        self.train_domains_ = np.asarray(train.domains).astype(str)
        self.backend_ = self._make_backend().fit(emb_train, self.train_domains_)
        self.train_emb_ = emb_train
        self.n_train_ = len(train)
        logger.info("%s: fitted in %.1f s on %s", self.name, time.perf_counter() - t0,
                    next(self.net_.parameters()).device)
        return self

    def representation_state(self) -> dict[str, NDArray[Any]]:
        """The trained network, its head and its input normalisation (``scope="machine"``)."""
        return self._network_state()

    def fit_with_representation(self, state: dict[str, NDArray[Any]], train: TrainSet) -> Self:
        self._load_network(state)
        self.pretrained_ = True
        return self.fit(train)

    # ------------------------------------------------------------------------ shared stage
    def needs_shared(self) -> bool:
        return self.scope == "all"

    def fit_shared(self, train: TrainSet) -> dict[str, NDArray[Any]]:
        """Train the network once on the pooled training clips of every machine type of the
        run (auxiliary classes include the machine type); return its state."""
        self._train_network(train)
        return self._network_state()

    def _network_state(self) -> dict[str, NDArray[Any]]:
        state: dict[str, NDArray[Any]] = {
            "net_meta": np.array([self.n_bins_, self.n_classes_], dtype=np.int64),
            "x_norm": np.array([self.x_mean_, self.x_std_], dtype=np.float32),
            "s_mean": self.s_mean_, "s_std": self.s_std_,
        }
        for prefix, module in (("net.", self.net_), ("head.", self.head_)):
            for key, value in module.state_dict().items():
                state[prefix + key] = value.detach().cpu().numpy().copy()
        return state

    def _load_network(self, state: dict[str, NDArray[Any]]) -> None:
        import torch  # noqa: PLC0415

        n_bins, n_classes = (int(v) for v in state["net_meta"])
        net, head = self._build(n_bins, n_classes)
        for prefix, module in (("net.", net), ("head.", head)):
            sub = {k[len(prefix):]: torch.from_numpy(np.array(v))
                   for k, v in state.items() if k.startswith(prefix)}
            module.load_state_dict(sub)
        dev = self._device()
        self.net_, self.head_ = net.to(dev).eval(), head.to(dev).eval()
        self.n_bins_, self.n_classes_ = n_bins, n_classes
        self.x_mean_, self.x_std_ = (np.float32(v) for v in state["x_norm"])
        self.s_mean_ = np.asarray(state["s_mean"], dtype=np.float32)
        self.s_std_ = np.asarray(state["s_std"], dtype=np.float32)

    def use_shared(self, state: dict[str, NDArray[Any]]) -> None:
        if self.scope != "all":
            raise ValueError(f"{self.name}: use_shared needs scope='all'")
        self._load_network(state)
        self.shared_ = True

    # ---------------------------------------------------------------------------- scoring
    def _embed_prepared(
        self, data: Sequence[tuple[NDArray[np.float32], NDArray[np.float32]]]
    ) -> NDArray[np.float32]:
        import torch  # noqa: PLC0415

        dev = next(self.net_.parameters()).device
        use_amp = self.amp and dev.type == "cuda"
        out = np.empty((len(data), self.net_.config.out_dim), dtype=np.float32)
        crops: list[NDArray[np.float32]] = []
        spectra: list[NDArray[np.float32]] = []
        owner: list[int] = []

        def flush() -> None:
            if not crops:
                return
            xc = torch.from_numpy(np.stack(crops)).to(dev)
            xs = torch.from_numpy(np.stack(spectra)).to(dev)
            with torch.no_grad(), torch.autocast(device_type=dev.type, dtype=torch.bfloat16,
                                                 enabled=use_amp):
                e = self.net_(xc, xs if self.spectrum_branch else None)
                e = torch.nn.functional.normalize(e.float(), dim=1).cpu().numpy()
            own = np.asarray(owner)
            for clip in np.unique(own):
                out[clip] += e[own == clip].sum(axis=0)
            crops.clear()
            spectra.clear()
            owner.clear()

        out[:] = 0.0
        for i, (x, s) in enumerate(data):
            for start in _crop_starts(x.shape[0], self.crop_frames):
                crops.append(x[start : start + self.crop_frames])
                spectra.append(s)
                owner.append(i)
            if len(crops) >= _EMBED_BATCH:
                flush()
        flush()
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return np.asarray(out / np.maximum(norms, 1e-12), dtype=np.float32)

    def embed(self, features: Sequence[NDArray[np.float32]]) -> NDArray[np.float32]:
        """L2-normalised clip embeddings ``(n_clips, out_dim)`` of the fitted network.

        The last call's result is remembered for the same ``features`` object and network
        (scoring and the domain rule embed the same test clips: extract once, score many)."""
        self._check_fitted()
        memo = getattr(self, "_embed_memo", None)
        if memo is not None and memo[0] is features and memo[1] is self.net_:
            return np.array(memo[2], copy=True)
        emb = self._embed_prepared([self._normalise(*self._prepare(f)) for f in features])
        self._embed_memo = (features, self.net_, emb)
        return np.array(emb, copy=True)

    def score_samples(self, features: Sequence[NDArray[np.float32]]) -> NDArray[np.float64]:
        self._check_fitted()
        return np.asarray(self.backend_.score(self.embed(features)), dtype=np.float64)

    def nearest_domain(self, features: Sequence[NDArray[np.float32]]) -> NDArray[np.str_]:
        """Per ``domain_rule``: the backend's domain (``backend``, when it has one) or the
        domain of each clip's nearest training embedding (cosine)."""
        self._check_fitted()
        emb = self.embed(features)
        if self.domain_rule == "backend":
            own = self.backend_.nearest_domain(emb)
            if own is not None:
                return np.asarray(own, dtype=np.str_)
        sim = emb @ self.train_emb_.T
        return np.asarray(self.train_domains_[sim.argmax(axis=1)], dtype=np.str_)

    def self_scores(self, train: TrainSet) -> NDArray[np.float64]:
        """The backend's leave-one-out/cross-fitted self-scores when ``train`` is the fitted set
        (the network itself has seen these clips, so these are still optimistic)."""
        self._check_fitted()
        if len(train) == self.n_train_:
            try:
                return np.asarray(self.backend_.self_scores(), dtype=np.float64)
            except NotImplementedError:
                logger.warning("backend %s has no self_scores(); using in-sample scores",
                               self.backend_.name)
        return self.score_samples(train.features)

    # ------------------------------------------------------------------------------ state
    def get_state(self) -> dict[str, NDArray[Any]]:
        self._check_fitted()
        state = self._network_state()
        state.update({
            "meta": np.array([self.n_train_], dtype=np.int64),
            "train_emb": self.train_emb_, "train_domains": self.train_domains_.astype(str),
        })
        for key, value in self.backend_.get_state().items():
            state[f"backend.{key}"] = value
        return state

    def set_state(self, state: dict[str, NDArray[Any]]) -> Self:
        self._load_network(state)
        self.n_train_ = int(np.asarray(state["meta"]).reshape(-1)[0])
        self.train_emb_ = np.asarray(state["train_emb"], dtype=np.float32)
        self.train_domains_ = np.asarray(state["train_domains"]).astype(str)
        prefix = "backend."
        sub_b = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
        self.backend_ = self._make_backend().set_state(sub_b)
        self.fitted_ = True
        return self
