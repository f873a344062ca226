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
