"""The run outputs' file formats, one module per kind of output: submission CSVs, results
tables and reports, plots, per-machine summaries, the search's tables and report, a trial's
per-clip scores, the score CSV of ``automl-asd score`` and the run folder's manifest.

Other files have their writer beside their format: the model bundle in :mod:`automl_asd.bundle`,
the feature cache in :mod:`automl_asd.features`, trained embeddings in
:mod:`automl_asd.representation_cache`, the synthetic data set in :mod:`automl_asd.synth`,
downloads in :mod:`automl_asd.download`."""
