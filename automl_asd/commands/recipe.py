"""``automl-asd recipe show|validate|list``: inspect and check frozen recipes."""

from __future__ import annotations

import argparse
import sys

from automl_asd.errors import ResourceLimitError
from automl_asd.recipe import RecipeError, load_recipe, shipped_recipe, shipped_recipe_names
from automl_asd.recipe_checks import check_cost, estimate_cost

HELP = "show, validate or list frozen recipes (a path or a shipped name)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="recipe_action", metavar="ACTION", required=True)
    show = sub.add_parser("show", help="print a recipe as resolved JSON with its content hash")
    show.add_argument("recipe", metavar="RECIPE",
                      help="recipe.json path or shipped name (e.g. baseline_ae_mse)")
    validate = sub.add_parser("validate", help="strictly check one or more recipes")
    validate.add_argument("recipes", nargs="+", metavar="RECIPE",
                          help="recipe.json paths or shipped names")
    add_cost_arguments(validate, data="the DCASE 2025 development set")
    sub.add_parser("list", help="list the recipes shipped with the package")


def add_cost_arguments(parser: argparse.ArgumentParser, data: str = "the data") -> None:
    """``--max-cache-gb`` / ``--max-member-epochs`` / ``--max-train-flops`` (see
    :mod:`automl_asd.recipe_checks`); ``data``: what the cost is estimated on (``recipe
    validate`` has no data and estimates on the DCASE 2025 development set)."""
    parser.add_argument("--max-cache-gb", type=float, default=None, metavar="GB",
                        help=f"refuse recipes whose feature cache for {data} would exceed "
                             "this (default: $AUTOML_ASD_MAX_CACHE_GB or 200)")
    parser.add_argument("--max-member-epochs", type=int, default=None, metavar="N",
                        help="refuse recipes with more ensemble.size x epochs (default: "
                             "$AUTOML_ASD_MAX_MEMBER_EPOCHS or 20000)")
    parser.add_argument("--max-train-flops", type=float, default=None, metavar="F",
                        help=f"refuse autoencoder recipes whose training on {data} would "
                             "take more floating-point operations (default: "
                             "$AUTOML_ASD_MAX_TRAIN_FLOPS or 1e17, ~300x the official "
                             "baseline on the DCASE 2025 development set)")


def run(args: argparse.Namespace) -> int:
    if args.recipe_action == "list":
        for name in shipped_recipe_names():
            recipe = shipped_recipe(name)  # never a file of that name here
            print(f"{name}\t{recipe.content_hash()[:12]}\t{recipe.description}")
        return 0
    if args.recipe_action == "show":
        recipe = load_recipe(args.recipe)
        # on stderr: `recipe show X > r.json` is a recipe file `recipe validate` accepts
        print(f"# content hash: {recipe.content_hash()}", file=sys.stderr)
        print(recipe.to_json(), end="")
        return 0
    failures = 0
    for item in args.recipes:
        try:
            recipe = load_recipe(item)
            estimate = estimate_cost(recipe)
            check_cost(recipe, estimate, max_cache_gb=args.max_cache_gb,
                       max_member_epochs=args.max_member_epochs,
                       max_train_flops=args.max_train_flops, source=item)
        except (RecipeError, FileNotFoundError, ResourceLimitError) as exc:
            print(f"INVALID {exc}")
            failures += 1
            continue
        print(f"OK {item}: {recipe.name} ({recipe.detector.name}) "
              f"hash {recipe.content_hash()[:12]}; estimate: {estimate.describe()}")
    return 1 if failures else 0
