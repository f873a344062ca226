"""The only package that imports ray and optuna: parallel apply, search, resume."""
