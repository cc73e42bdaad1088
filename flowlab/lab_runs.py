"""The lab's training measured over several seeds, and where a student's trained flow stands among
those runs: what the training check says beside its OK line, and what the lab prints after its scores.

The numbers are ``benchmarks/bench_lab_recipe.py``'s (``benchmarks/README.md`` has the study). They sit
here, in flowlab's sources, because a grader's kernel gets flowlab's Python files and not its data.
"""

from __future__ import annotations

__all__ = ["NOTEBOOK_RECIPE", "SHEET_RECIPE", "MEASURED_KL", "STANDING_NOTE", "standing"]

#: How the training check's stderr line starts that says where the trained flow stands among the
#: lab's measured runs (:func:`standing`); the grader passes it on as a note too.
STANDING_NOTE = "Where your flow stands:"

#: The recipes of ``benchmarks/bench_lab_recipe.py`` that :func:`standing` compares with.
NOTEBOOK_RECIPE, SHEET_RECIPE = "bounded+reseed+warm=20", "bounded+reseed+sheet"
#: The lab's training over several seeds, per recipe: (seeds, median, min, max) of the KL to the exact
#: density, as ``benchmarks/bench_lab_recipe.py`` stored them in notebooks/data/lab_recipe_seeds.json
#: (tests/test_lab_runs.py keeps the two equal; a grader's kernel has flowlab's sources, not its data).
MEASURED_KL = {"notebook": (10, 0.0475, 0.0434, 0.097), "sheet": (5, 0.164, 0.0718, 0.1925)}


def standing(kl: float, n_points: int = 20_000) -> str:
    """Where a trained flow's KL to the exact density sits among the lab's measured runs
    (:data:`MEASURED_KL`): this notebook's recipe and the sheet's literal settings. ``n_points``: how
    many fresh points the KL was estimated on.

    Example:
        >>> standing(0.06).startswith("Where your flow stands: KL 0.060")
        True
    """
    (seeds, median, low, high), (sheet_seeds, sheet_median, sheet_low, sheet_high) = \
        MEASURED_KL["notebook"], MEASURED_KL["sheet"]
    if kl <= high:
        verdict = "within the range of this notebook's recipe."
    elif kl <= sheet_high:
        verdict = "above this notebook's recipe, within the sheet's: check the schedule, batch size and epochs."
    else:
        verdict = ("above every measured run: a poorer optimum. Check the schedule, batch size and epochs, "
                   "and re-run the notebook from the top (Kernel -> Restart & Run All).")
    return (f"{STANDING_NOTE} KL {kl:.3f} nats to the exact density ({n_points:,} fresh points). "
            f"Over {seeds} seeds this notebook's recipe reached {low:.3f}-{high:.3f} (median {median:.3f}); "
            f"over {sheet_seeds} the sheet's literal settings (Adam's constant 0.001, batches of 32) reached "
            f"{sheet_low:.3f}-{sheet_high:.3f} (median {sheet_median:.3f}). Yours is " + verdict)
