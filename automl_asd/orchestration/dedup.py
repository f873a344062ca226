"""A Ray Tune searcher wrapper that does not launch a recipe the search has already run.

In a mostly categorical space (``demo``) Optuna's TPE proposes the same point again and again:
in a pilot search 9 of the top 10 trials were one recipe. :class:`DedupSearcher` sits between
Tune and the wrapped searcher (OptunaSearch) and maps each proposal to its recipe's behaviour
hash (``key``; :meth:`~automl_asd.recipe.Recipe.behaviour_hash`: the content hash with inert
parameters at their defaults, so two proposals that differ only there are one recipe). A
proposal whose recipe

* already finished at full fidelity is not launched: the wrapped searcher is told the known
  final result for that proposal (so TPE learns the point once more) and asked again;
* is still running (or was stopped or failed while a proposal waited on it: the wrapped
  searcher is told then, see below) is not launched either. TPE cannot be told a value
  that is not known yet, so the proposal is left open in the wrapped searcher and asked
  again; when the running trial completes, each proposal that waited on it is told exactly
  what the trial itself was told (its final result, a stopped trial's last result, or an
  error).

* was stopped early (by ASHA, or the reference by its time cap) is not launched either: the
  wrapped searcher is told that trial's last result, as Tune told it for the trial itself,
  and asked again. Evaluations are deterministic, so a re-run only reaches the same rung
  results again; until 2026-12-08 it ran (in a 26-trial capped smoke search 9 trials were
  such repeats while 9 points of the space were never tried).

A recipe whose trial failed (an error, or ended by the budget or an interrupt without a
result) is not "known": TPE may propose it again and it runs again. A stopped reference still
runs again at full fidelity on ``--resume`` without a cap (:meth:`DedupSearcher.queue_again`).
After ``retries`` duplicates in a row, a finite space's first point not yet run (``untried``:
the space's points in a seeded order) is launched instead, as a re-run is (TPE is not told its
result: it cannot be handed a define-by-run point); found 2026-12-08, TPE on ``smoke`` (26
recipes) found 14 of them in 26 trials and the other 12 trials were duplicates. When every
point has run, the search ends (a deterministic re-run cannot change a result). A continuous
space (no ``untried``) launches the last proposal anyway (a warning, once), so a search never
stalls. With one trial at a time
and a seed the trial sequence is deterministic (every rule here is).

A trial the search's time budget stopped before its first report ran nothing the search can use
(it may be the space's reference trial). :meth:`DedupSearcher.requeue_unreported` keeps its
config, and the next ``--resume`` launches it again before asking the wrapped searcher (TPE was
told the original trial ended without a result; it cannot be handed a define-by-run point, so
the re-run's result reaches it only if it proposes that recipe again, as a known duplicate).

Skipped proposals are counted (:attr:`DedupSearcher.skipped`) and, with ``out_dir``, the count
is written to ``<out>/duplicates.json`` at every launch (``search_report.md`` shows "duplicate
proposals skipped: N"; after ``--resume`` the count goes on from the restored checkpoint).

The wrapper follows Tune's own wrappers (``ConcurrencyLimiter``, ``Repeater``): the wrapped
searcher is its ``searcher`` attribute, so Tune checkpoints the wrapped searcher itself and
this wrapper's :meth:`get_state` beside it, and ``--resume`` restores both.

Imports Ray: import this module only where Ray is used anyway.
"""

from __future__ import annotations

import copy
import logging
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, cast

from ray.tune.search import Searcher

from automl_asd.errors import PermanentError
from automl_asd.io import search_report as io

__all__ = ["DedupSearcher", "DEFAULT_RETRIES", "set_run_folder"]

logger = logging.getLogger(__name__)

#: Proposals asked for in a row before a duplicate is launched anyway.
DEFAULT_RETRIES = 25

#: Attributes that are not search state: the wrapped searcher (Tune saves it itself) and the
#: construction arguments (the restored object keeps its own).
_NOT_STATE = ("searcher", "_key", "_out_dir", "_untried", "_untried_keys")


class DedupSearcher(Searcher):
    """Wrap ``searcher`` so that no proposal re-runs a recipe already run (at full fidelity or
    stopped early) or running.

    Args:
        searcher: the wrapped searcher (OptunaSearch), with its metric and mode set.
        key: config -> recipe identity (the recipe content hash); a config it cannot map
            (it raises) is launched as proposed, and the trial reports the error.
        retries: proposals asked for in a row before a duplicate is launched anyway.
        full_fidelity: a result at this ``fidelity`` (or one without the key) is final.
        out_dir: where to write ``duplicates.json`` (``None``: nowhere).
        untried: every point of a finite space, in the order to fill in when the wrapped
            searcher keeps proposing run recipes (``None``: a continuous space).
    """

    def __init__(self, searcher: Searcher, key: Callable[[Mapping[str, Any]], str], *,
                 retries: int = DEFAULT_RETRIES, full_fidelity: float = 1.0,
                 out_dir: Path | None = None,
                 untried: Sequence[Mapping[str, Any]] | None = None) -> None:
        if retries < 0:
            raise ValueError(f"retries: {retries}; expected >= 0")
        self.searcher = searcher
        self._key = key
        self._out_dir = out_dir
        self._untried = None if untried is None else [dict(p) for p in untried]
        #: the recipe key of each ``untried`` point, made at the first fill-in (a recipe and
        #: its hash per point: up to seconds for a large space, once)
        self._untried_keys: list[str | None] | None = None
        #: points launched from ``untried`` (none of TPE's proposals)
        self._filled = 0
        #: the distinct recipes run when every point of the space had run (``None``: not yet)
        self._exhausted: int | None = None
        self._retries = retries
        self._full_fidelity = full_fidelity
        #: recipe key -> the final result of a trial that ran it at full fidelity.
        self._known: dict[str, dict[str, Any]] = {}
        #: recipe key -> the last result of a trial stopped below full fidelity (ASHA, a cap).
        self._stopped: dict[str, dict[str, Any]] = {}
        #: launched trial id -> (its recipe key or None, the wrapped searcher's id for it: None for
        #: a re-run, which no proposal of the wrapped searcher waits on).
        self._live: dict[str, tuple[str | None, str | None]] = {}
        #: recipe key of a running trial -> wrapped-searcher ids of proposals waiting on it.
        self._waiting: dict[str, list[str]] = {}
        #: launched trial id -> its config, until the trial's first result.
        self._unreported: dict[str, dict[str, Any]] = {}
        #: configs of trials the time budget stopped before they reported: launched again first.
        self._reruns: list[dict[str, Any]] = []
        self._skipped = 0
        self._warned = False
        #: proposals not launched because their recipe is invalid, and the reasons said
        self._invalid = 0
        self._invalid_said: set[str] = set()
        super().__init__(metric=searcher.metric, mode=searcher.mode)

    # ----------------------------------------------------------------------------- counts
    @property
    def skipped(self) -> int:
        """Proposals not launched because they duplicated a run or running recipe."""
        return self._skipped

    # ------------------------------------------------------------------------ Searcher API
    def set_search_properties(self, metric: str | None, mode: str | None,
                              config: dict[str, Any], **spec: Any) -> bool:
        ok = bool(self.searcher.set_search_properties(metric, mode, config, **spec))
        self._metric, self._mode = self.searcher.metric, self.searcher.mode
        return ok

    def set_max_concurrency(self, max_concurrent: int) -> bool:
        return bool(self.searcher.set_max_concurrency(max_concurrent))

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        running = {k for k, _ in self._live.values() if k is not None}
        while self._reruns:
            again = self._reruns.pop(0)
            again_key = self._key_of(again)
            if again_key is not None and (again_key in self._known or again_key in running):
                continue  # run since, or running: nothing left to run again
            self._live[trial_id] = (again_key, None)
            self._unreported[trial_id] = dict(again)
            logger.info("running again a trial the time budget stopped (before it "
                        "reported, or the reference at its cap)")
            return dict(again)
        for attempt in range(self._retries + 1):
            inner_id = trial_id if attempt == 0 else f"{trial_id}#dup{attempt}"
            raw: Any = self.searcher.suggest(inner_id)
            if not isinstance(raw, dict):  # None (nothing to propose now) or FINISHED
                return cast("dict[str, Any] | None", raw)
            config: dict[str, Any] = raw
            key, invalid = self._key_or_reason(config)
            if invalid is not None and attempt < self._retries:
                # found 2026-12-07: values valid one by one but not together (256 mels on a
                # 512-point FFT) ran as trials, each failing twice (Ray's retry) with a
                # traceback; the searcher is told the point failed and asked again
                self._invalid += 1
                self.searcher.on_trial_complete(inner_id, result=None, error=True)
                if invalid not in self._invalid_said:
                    self._invalid_said.add(invalid)
                    logger.warning("a proposal of the searcher gives an invalid recipe, not "
                                   "launched (asked again): %s", invalid)
                continue
            duplicate = key is not None and (key in self._known or key in self._stopped
                                             or key in running)
            if duplicate and attempt == self._retries and self._untried is not None:
                assert key is not None
                self._skip(inner_id, key, trial_id, attempt)
                return self._fill_in(trial_id, running)
            if not duplicate or attempt == self._retries:
                if duplicate and not self._warned:
                    self._warned = True
                    logger.warning("TPE keeps proposing evaluated recipes; the space may be "
                                   "exhausted (launching a duplicate after %d retries)",
                                   self._retries)
                self._live[trial_id] = (key, inner_id)
                self._unreported[trial_id] = dict(config)
                self._write_counts()
                return dict(config)
            assert key is not None
            self._skip(inner_id, key, trial_id, attempt)
        return None  # unreachable: the last attempt always returns

    def _skip(self, inner_id: str, key: str, trial_id: str, attempt: int) -> None:
        """A proposal not launched: TPE is told its recipe's known result, or it waits on
        the running trial of that recipe."""
        self._skipped += 1
        known = self._known.get(key) or self._stopped.get(key)
        if known is not None:
            # TPE learns the known value for this proposal too, then proposes again.
            self.searcher.on_trial_complete(inner_id, result=dict(known))
        else:
            self._waiting.setdefault(key, []).append(inner_id)
        logger.debug("trial %s: proposal %d duplicates recipe %s; asking again",
                     trial_id, attempt + 1, key[:12])

    def _fill_in(self, trial_id: str, running: set[str]) -> dict[str, Any] | None:
        """The first point of ``untried`` whose recipe has not run and is not running, launched
        as ``trial_id`` (TPE keeps proposing run recipes); when every point has run,
        ``FINISHED`` (``None``, "ask later", while some still run)."""
        assert self._untried is not None
        if self._untried_keys is None:
            self._untried_keys = [self._key_of(config) for config in self._untried]
        for config, key in zip(self._untried, self._untried_keys, strict=True):
            if key is None or key in self._known or key in self._stopped or key in running:
                continue
            if not self._warned:
                self._warned = True
                logger.info("TPE keeps proposing evaluated recipes: trying the space's points "
                            "it has not proposed yet, in turn")
            self._filled += 1
            self._live[trial_id] = (key, None)
            self._unreported[trial_id] = dict(config)
            self._write_counts()
            return dict(config)
        if not running:  # every point has run: nothing a trial could add
            self._exhausted = len(set(self._known) | set(self._stopped))
        self._write_counts()
        if running:
            return None
        return cast("dict[str, Any] | None", Searcher.FINISHED)  # Tune's "no more trials"

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        self._unreported.pop(trial_id, None)
        inner_id = self._live[trial_id][1] if trial_id in self._live else None
        if inner_id is not None:  # a re-run (None) has no proposal in the wrapped searcher
            self.searcher.on_trial_result(inner_id, result)

    def on_trial_complete(self, trial_id: str, result: dict[str, Any] | None = None,
                          error: bool = False) -> None:
        self._unreported.pop(trial_id, None)
        if trial_id not in self._live:
            return
        key, inner_id = self._live.pop(trial_id)
        if inner_id is not None:  # a re-run (None) has no proposal open in the wrapped searcher
            self.searcher.on_trial_complete(inner_id, result=result, error=error)
        if key is None:
            return
        if not error and result is not None and self._is_final(result):
            self._known.setdefault(key, dict(result))
            self._stopped.pop(key, None)
        elif not error and result is not None and self._has_value(result) \
                and key not in self._known:
            self._stopped[key] = dict(result)  # stopped early: its rungs would only repeat
        # Proposals that waited on this trial are told what it was told.
        for waiting_id in self._waiting.pop(key, []):
            self.searcher.on_trial_complete(
                waiting_id, result=None if result is None else dict(result), error=error)

    def requeue_unreported(self, trial_ids: Iterable[str]) -> int:
        """Keep the configs of those of ``trial_ids`` that have not reported yet, to launch
        them again first on ``--resume`` (call it when the time budget stops them, before
        their completion is reported). Returns how many were kept."""
        kept = [self._unreported[t] for t in sorted(trial_ids) if t in self._unreported]
        self._reruns.extend(kept)
        return len(kept)

    def queue_again(self, config: Mapping[str, Any]) -> bool:
        """Launch ``config`` again first (as :meth:`requeue_unreported` does for a trial the
        budget stopped before it reported), unless its recipe already finished at full
        fidelity, is running, or is queued already. Returns whether it was queued."""
        key = self._key_of(config)
        running = {k for k, _ in self._live.values()}
        if key is None or key in self._known or key in running \
                or any(self._key_of(c) == key for c in self._reruns):
            return False
        self._reruns.append(dict(config))
        return True

    def add_evaluated_point(self, parameters: dict[str, Any], value: float,
                            error: bool = False, pruned: bool = False,
                            intermediate_values: list[float] | None = None) -> None:
        self.searcher.add_evaluated_point(parameters, value, error, pruned,
                                          intermediate_values)

    # --------------------------------------------------------------------- checkpointing
    def get_state(self) -> dict[str, Any]:
        """This wrapper's state (Tune saves the wrapped searcher separately)."""
        state = {k: v for k, v in self.__dict__.items() if k not in _NOT_STATE}
        return copy.deepcopy(state)

    def set_state(self, state: dict[str, Any]) -> None:
        self.__dict__.update({k: v for k, v in state.items() if k not in _NOT_STATE})
        # a search saved before re-runs existed
        self.__dict__.setdefault("_unreported", {})
        self.__dict__.setdefault("_reruns", [])
        self.__dict__.setdefault("_invalid", 0)
        self.__dict__.setdefault("_invalid_said", set())
        self.__dict__.setdefault("_stopped", {})
        self.__dict__.setdefault("_filled", 0)
        self.__dict__.setdefault("_exhausted", None)

    def save(self, checkpoint_path: str) -> None:
        self.searcher.save(checkpoint_path)

    def restore(self, checkpoint_path: str) -> None:
        self.searcher.restore(checkpoint_path)

    # --------------------------------------------------------------------------- helpers
    def _key_or_reason(self, config: Mapping[str, Any]) -> tuple[str | None, str | None]:
        """The recipe key of ``config`` (:meth:`_key_of`), and why its recipe is invalid when
        the key function says so with a :class:`~automl_asd.errors.PermanentError` (the
        recipe parser's ``RecipeError``), from one call of the key function."""
        try:
            return self._key(config), None
        except PermanentError as exc:
            text = str(exc).strip()
            return None, text.splitlines()[-1][:300] if text else repr(exc)
        except Exception as exc:  # noqa: BLE001  (not a verdict on the recipe: the trial reports it)
            logger.debug("no recipe key for a proposal (%s); launching it as proposed", exc)
            return None, None

    @property
    def invalid(self) -> int:
        """Proposals not launched because their recipe is invalid."""
        return self._invalid

    def _key_of(self, config: Mapping[str, Any]) -> str | None:
        """The recipe key of ``config``, ``None`` when it has none (the trial itself reports
        why its config is invalid)."""
        return self._key_or_reason(config)[0]

    def _has_value(self, result: Mapping[str, Any]) -> bool:
        value = result.get(self.searcher.metric)
        return isinstance(value, int | float) and not math.isnan(float(value))

    def _is_final(self, result: Mapping[str, Any]) -> bool:
        if not self._has_value(result):
            return False
        fidelity = result.get("fidelity")
        return fidelity is None or float(fidelity) >= self._full_fidelity

    def _write_counts(self) -> None:
        out_dir = _run_folder or self._out_dir
        if out_dir is not None:
            io.write_duplicates(out_dir, self._skipped, self._filled, self._exhausted)


#: the run folder of the search this process runs (:func:`set_run_folder`)
_run_folder: Path | None = None


def set_run_folder(out_dir: Path | None) -> None:
    """Where the running search writes ``duplicates.json``: this invocation's ``--out``. A
    restored searcher keeps the folder it was created for, which is another one when the run
    folder was moved or copied since (found 2026-12-07: the count went to the old folder)."""
    global _run_folder
    _run_folder = out_dir
