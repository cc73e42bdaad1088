"""Where a trained flow stands among the lab's measured runs (flowlab.lab_runs, issue 34)."""

import json
from pathlib import Path

import pytest

from flowlab import lab_runs

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("kl, verdict", [
    (0.06, "within the range of this notebook's recipe."),
    (0.12, "above this notebook's recipe, within the sheet's: check the schedule, batch size and epochs."),
    (0.45, "above every measured run: a poorer optimum."),
])
def test_standing_places_a_flow_among_the_measured_runs(monkeypatch, kl, verdict):
    monkeypatch.setattr(lab_runs, "MEASURED_KL", {"notebook": (10, 0.05, 0.04, 0.09), "sheet": (5, 0.1, 0.07, 0.2)})
    line = lab_runs.standing(kl)
    assert line.startswith(f"Where your flow stands: KL {kl:.3f} nats")
    assert "Over 10 seeds this notebook's recipe reached 0.040-0.090 (median 0.050)" in line
    assert "over 5 the sheet's literal settings (Adam's constant 0.001, batches of 32) reached 0.070-0.200" in line
    assert verdict in line


def test_measured_kl_is_what_the_benchmark_stored():
    stored = json.loads((ROOT / "notebooks" / "data" / "lab_recipe_seeds.json").read_text())["recipes"]
    for key, recipe in (("notebook", lab_runs.NOTEBOOK_RECIPE), ("sheet", lab_runs.SHEET_RECIPE)):
        runs = stored[recipe]
        assert lab_runs.MEASURED_KL[key] == (runs["seeds"], *(round(runs[k], 4) for k in ("median_kl", "min_kl", "max_kl")))


def test_the_notebooks_seed_is_the_median_run_of_its_recipe():
    """The lab's stored run is a typical one: ``lab_seed`` (set in its data cell) is the seed whose
    measured KL ranks at the median (the lower of the two middle runs of ten) of the notebook's recipe,
    as the data cell says; re-measuring the recipe without updating the seed fails here."""
    import re

    notebook = json.loads((ROOT / "notebooks" / "normalizing_flows.ipynb").read_text())
    sources = ["".join(cell["source"]) for cell in notebook["cells"] if cell["cell_type"] == "code"]
    seeds = [int(m) for source in sources for m in re.findall(r"^lab_seed = (\d+)$", source, re.M)]
    stored = json.loads((ROOT / "notebooks" / "data" / "lab_recipe_seeds.json").read_text())
    runs = sorted((row["kl"], row["seed"]) for row in stored["rows"] if row["recipe"] == lab_runs.NOTEBOOK_RECIPE)
    assert len(runs) == 10 and seeds == [runs[(len(runs) - 1) // 2][1]]
