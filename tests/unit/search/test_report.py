"""search_report.md's sections, rendered from hand-made tables."""

from __future__ import annotations

import math
from pathlib import Path


def test_the_novel_section_says_why_rho_is_missing(tmp_path: Path) -> None:
    """Found by a review (2026-12-07): with 2 trials the report printed "Spearman ρ (in-search
    Ω vs novel Ω): " with nothing after it."""
    import pandas as pd

    from automl_asd.io.search_report import append_novel_section
    from automl_asd.search.novel_check import carry_summary

    df = pd.DataFrame({"trial_id": ["a", "b"], "in_search_omega": [0.7, 0.6],
                       "novel_omega": [0.65, 0.62], "frozen": [True, False]})
    (tmp_path / "search_report.md").write_text("# Search report\n")
    summary = carry_summary(df)
    assert math.isnan(summary["spearman_rho"])
    text = append_novel_section(tmp_path, df, summary, novel_root="n",
                                novel_types=["pump"]).read_text()
    assert ("Spearman ρ (in-search Ω vs novel Ω): undefined (needs at least 3 complete "
            "trials") in text


def test_the_novel_section_says_how_many_near_ties_it_scored(tmp_path: Path) -> None:
    """Found 2026-12-07: `search --novel-top-k 2` scored 1 of the pick's 3 near ties on the
    novel types and reported it as the "best novel Ω among the pick's near ties"."""
    import pandas as pd

    from automl_asd.io.search_report import append_novel_section
    from automl_asd.search.novel_check import carry_summary

    df = pd.DataFrame({"trial_id": ["a", "b"], "in_search_omega": [0.7, 0.69],
                       "novel_omega": [0.65, 0.62], "frozen": [True, False],
                       "near_tie": [False, True]})

    def section(frozen: int, table: pd.DataFrame) -> str:
        (tmp_path / "search_report.md").write_text("# Search report\n")
        summary = {**carry_summary(table), "near_ties_frozen": float(frozen)}
        return append_novel_section(tmp_path, table, summary, novel_root="n",
                                    novel_types=["pump"]).read_text()

    best = ("- best novel Ω among the pick's near ties (`near_tie`, frozen in `near_ties/`): "
            "0.6200, 0.0300 below the frozen recipe's")
    assert f"{best}\n" in section(1, df)  # every near tie scored: nothing to add
    assert (f"{best} (1 of the 3 near ties frozen: the others are not among the trials scored "
            "here, `--novel-top-k`; apply them to compare)\n") in section(3, df)
    none = df.assign(near_tie=[False, False])
    assert ("- the pick's 2 near ties (frozen in `near_ties/`): none among the trials scored "
            "here (`--novel-top-k`); apply them to compare\n") in section(2, none)
    assert "near ties" not in section(0, none).split("## Does the choice carry?")[1]


def test_the_omega_plot_keeps_its_legend_off_the_trials(tmp_path: Path) -> None:
    """Found 2026-12-07: the legend sat in the lower right, over the last stopped trials
    (low Ω, late): the plot showed 13 of the table's 14 trials."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    from automl_asd.io.search_report import _omega_figure, plot_omega

    omega = [0.53, 0.49, 0.55, 0.53, 0.59, 0.49, 0.49, 0.49, 0.59, 0.58, 0.57, 0.55, 0.49, 0.57]
    status = ["complete", "stopped_early"] * 2 + ["complete"] + ["stopped_early"] * 3 \
        + ["complete"] * 4 + ["stopped_early", "complete"]
    table = pd.DataFrame({"order": range(1, 15), "omega": omega, "status": status,
                          "is_reference": [True] + [False] * 13})
    fig = _omega_figure(table, "reference point (fast_default)")
    fig.canvas.draw()
    ax, = fig.axes
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    legend = ax.get_legend().get_window_extent(renderer)
    assert not legend.overlaps(ax.get_window_extent(renderer))
    # the labels still fit in the saved image
    assert legend.x1 <= fig.bbox.x1
    plt.close(fig)
    assert plot_omega(tmp_path, table).is_file()
