"""The search engine without Ray: search spaces, trial records, freezing the best trial into a
recipe, leave-one-out, the selection rules, the time budget and the novel-type check.

Nothing here imports ray or optuna; :mod:`automl_asd.orchestration.tune` runs the trials with
Ray Tune and hands this package plain :class:`~automl_asd.search.trials.TrialRecord` objects.
"""
