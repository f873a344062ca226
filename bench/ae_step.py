"""Where the baseline autoencoder's training time goes: one training step of ``dcase_ae``,
timed side by side in one run.

On one H200 (2026-12-04, ``bench/gpu_check.sh``) an AE epoch took 6.9 s: ~6.4 ms per step of
256 vectors through a 640-input MLP, far above its arithmetic. This bench times the step the
detector runs (same network builder, same gather of stacked frames, fused Adam, MSE) on random
frames shaped like one full-size machine type (1000 clips x 309 frames x 128 mels):

  (a) ``eager``: the step as ``DcaseAE.fit`` runs it (deterministic algorithms on);
  (b) ``eager_nondet``: the same with deterministic algorithms off;
  (c) ``eager_b4096``: (a) at batch 4096, per 256 vectors: what arithmetic alone costs;
  (d) ``graph`` (CUDA only): the whole step captured once as a CUDA graph and replayed, the
      batch's indices copied into a fixed buffer (Adam ``capturable``).

Prints ms per step and the seconds one epoch of batch-256 steps would take for each, and the
ratios (a)/(d) and (a)/(c): if (a)/(d) is large, the step is bound by launching kernels, and
capturing it would cut the AE family's cost (95 % of a search's GPU-hours in
``bench/scale.py``'s projection) by that factor. Without CUDA, (d) is left out. Written on
2026-12-04 after the lease ended: (a)-(c) ran on CPU, (d) has not yet run on a GPU (a failing
mode is reported as FAILED and the others still print). ``bench/gpu_check.sh`` runs it.

    .venv/bin/python bench/ae_step.py --device cpu --steps 50     # proves the script
    python3 bench/ae_step.py --device cuda --steps 300 --json OUT.json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _setup(device: str, n_vec: int, seed: int = 0) -> dict[str, Any]:
    import torch

    from automl_asd.detectors.dcase_ae import DcaseAE, _build_net, _init_weights

    det = DcaseAE(seed=seed)
    n_mels = 128
    gen = torch.Generator().manual_seed(seed)
    frames = torch.randn(n_vec + det.n_frames, n_mels, generator=gen).to(device)
    starts = torch.arange(n_vec, device=device)
    net = _build_net(n_mels * det.n_frames, det.hidden, det.bottleneck, det.n_layers)
    _init_weights(net, gen)
    net.to(device).train()
    return {"det": det, "frames": frames, "starts": starts, "net": net, "gen": gen}


def _eager(device: str, batch: int, n_vec: int, deterministic: bool) -> Callable[[int], None]:
    import torch

    from automl_asd.components.device import deterministic_torch

    s = _setup(device, n_vec)
    det, frames, starts, net = s["det"], s["frames"], s["starts"], s["net"]
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, fused=device.startswith("cuda"))
    loss_fn = torch.nn.MSELoss()
    order = starts[torch.randperm(n_vec, generator=s["gen"]).to(device)]

    def run(steps: int) -> None:
        total = torch.zeros((), device=device)
        ctx = deterministic_torch(device) if deterministic else contextlib.nullcontext()
        with ctx:
            for i in range(steps):
                b = (i * batch) % max(1, n_vec - batch)
                x = det._gather(frames, order[b:b + batch])
                loss = loss_fn(net(x), x)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                total += loss.detach()
        float(total)  # one sync at the end, as fit() does once per epoch

    return run


def _graph(device: str, batch: int, n_vec: int) -> Callable[[int], None]:
    import torch

    s = _setup(device, n_vec)
    det, frames, starts, net = s["det"], s["frames"], s["starts"], s["net"]
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, capturable=True)
    loss_fn = torch.nn.MSELoss()
    order = starts[torch.randperm(n_vec, generator=s["gen"]).to(device)]
    static_idx = order[:batch].clone()

    def step() -> torch.Tensor:
        x = det._gather(frames, static_idx)
        loss = loss_fn(net(x), x)
        loss.backward()
        opt.step()
        return loss

    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):  # warm-up outside the graph (allocations, Adam state)
        for _ in range(3):
            opt.zero_grad(set_to_none=True)
            step()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    opt.zero_grad(set_to_none=True)
    with torch.cuda.graph(graph):
        static_loss = step()

    def run(steps: int) -> None:
        total = torch.zeros((), device=device)
        for i in range(steps):
            b = (i * batch) % max(1, n_vec - batch)
            static_idx.copy_(order[b:b + batch])
            graph.replay()
            total += static_loss.detach()
        float(total)

    return run


def _time(run: Callable[[int], None], steps: int, device: str, repeat: int) -> float:
    """Best seconds per step over ``repeat`` runs of ``steps`` steps (after one warm-up)."""
    run(min(steps, 10))
    _sync(device)
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        run(steps)
        _sync(device)
        best = min(best, (time.perf_counter() - t0) / steps)
    return best


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cuda")
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--n-vec", type=int, default=1000 * 305, help="stacked vectors per epoch")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("ae_step: --device cuda but torch sees no CUDA device", file=sys.stderr)
        return 2
    per256: dict[str, float] = {}
    modes: list[tuple[str, Callable[[], Callable[[int], None]], int]] = [
        ("eager", lambda: _eager(args.device, 256, args.n_vec, True), 256),
        ("eager_nondet", lambda: _eager(args.device, 256, args.n_vec, False), 256),
        ("eager_b4096", lambda: _eager(args.device, 4096, args.n_vec, True), 4096),
    ]
    if args.device.startswith("cuda"):
        modes.append(("graph", lambda: _graph(args.device, 256, args.n_vec), 256))
    errors: dict[str, str] = {}
    for name, make, batch in modes:
        try:
            steps = max(5, args.steps * 256 // batch)
            per256[name] = _time(make(), steps, args.device, args.repeat) * 256 / batch
        except Exception as exc:  # report the mode as failed, keep the others
            errors[name] = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
    epoch_steps = args.n_vec // 256
    rows = ["| mode | ms per 256 vectors | s per epoch (batch 256) |", "|---|---|---|"]
    rows += [f"| {k} | {v * 1e3:.3f} | {v * epoch_steps:.2f} |" for k, v in per256.items()]
    rows += [f"| {k} | FAILED: {v} | |" for k, v in errors.items()]
    ratios = {}
    if "eager" in per256 and "graph" in per256:
        ratios["eager/graph"] = per256["eager"] / per256["graph"]
    if "eager" in per256 and "eager_b4096" in per256:
        ratios["eager/eager_b4096"] = per256["eager"] / per256["eager_b4096"]
    if "eager" in per256 and "eager_nondet" in per256:
        ratios["eager/eager_nondet"] = per256["eager"] / per256["eager_nondet"]
    name = torch.cuda.get_device_name(0) if args.device.startswith("cuda") else "cpu"
    print(f"# bench/ae_step.py on {name} (torch {torch.__version__}, {epoch_steps} steps/epoch)")
    print("\n".join(rows))
    print("ratios: " + ", ".join(f"{k} x{v:.2f}" for k, v in ratios.items()))
    out = {"device": name, "torch": torch.__version__, "ms_per_256": {
        k: v * 1e3 for k, v in per256.items()}, "ratios": ratios, "errors": errors}
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=2) + "\n")
    return 0 if not errors else 1


if __name__ == "__main__":
    sys.exit(main())
