"""Thread settings of a stage (``components/device.torch_threads``)."""

from __future__ import annotations

import torch
from threadpoolctl import threadpool_info, threadpool_limits

from automl_asd.components.device import torch_threads


def _blas_threads() -> set[int]:
    return {d["num_threads"] for d in threadpool_info() if d["user_api"] == "blas"}


def test_stage_sets_blas_threads_like_torch_threads_and_restores() -> None:
    """Probe (2026-12-08): ``apply --cpus-per-task 2`` under Ray scored ``hedge_logz_frame``
    otherwise than ``apply --serial`` on two cores (~1e-12): the stage set torch's thread count
    but left BLAS at the count the process started with (a Ray worker: 1)."""
    import numpy as np

    np.ones(2) @ np.ones(2)  # BLAS loaded
    assert _blas_threads(), "no BLAS library found by threadpoolctl"
    with threadpool_limits(limits=1, user_api="blas"):  # a Ray worker's start-up count
        with torch_threads(2) as n:
            assert n == 2 and torch.get_num_threads() == 2
            assert _blas_threads() == {2}
        assert _blas_threads() == {1}
