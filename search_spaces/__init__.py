"""The shipped search spaces (``automl-asd search --space NAME``): one YAML file per space.

Edit or add ``*.yaml`` files in this folder. A wheel (``pip install .``) installs them as the
package data of ``automl_asd.search_spaces`` (see ``[tool.setuptools.package-dir]`` in
``pyproject.toml``); ``automl_asd.search.space`` finds them in either place.
"""
