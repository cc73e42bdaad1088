"""Every number the four notebooks' prose states, and where it comes from (issue 35).

A :class:`Claim` is a number about the notebook's own results: a regex captures it in a markdown
cell, and its source points at a code cell's stored output, a stored JSON results file or a stored
text (``benchmarks/README.md``, flowlab's source), never at a copy of the value. A
:class:`Citation` is another project's figure (or a reference): its source and version must be
written in the same cell. A :class:`Setting` is a number that is no result at all (a data set's
size, an epoch count, a label). ``tests/test_prose_numbers.py`` checks them; a prose number in none
of the three lists fails it. Single-digit integers (list numbers, "2 of 8") are not scanned.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Union


@dataclass(frozen=True)
class Output:
    """A number in the stored text output of code cell ``cell`` (regex group 1)."""
    cell: str
    pattern: str


@dataclass(frozen=True)
class Stored:
    """A value in a stored JSON file, ``path`` relative to the repository, ``key`` dotted."""
    path: str
    key: str


@dataclass(frozen=True)
class Text:
    """A number in a stored text file, ``path`` relative to the repository (regex group 1)."""
    path: str
    pattern: str


@dataclass(frozen=True)
class Difference:
    """``a - b``, for prose that states a gap between two sourced numbers."""
    a: "Source"
    b: "Source"


Source = Union[Output, Stored, Text, Difference]


@dataclass(frozen=True)
class Claim:
    """``prose`` (regex, group 1 the number as written) in markdown cell ``cell`` equals ``source``
    rounded to ``digits`` decimals (None: as many as the prose writes; -3: to thousands)."""
    notebook: str
    cell: str
    prose: str
    source: Source
    digits: int | None = None


@dataclass(frozen=True)
class Citation:
    """Numbers of another project (or of a reference) in ``cell``, which must name ``source`` and
    ``version``."""
    notebook: str
    cell: str
    numbers: tuple[str, ...]
    source: str
    version: str


@dataclass(frozen=True)
class Setting:
    """Numbers in ``cell`` that are not results, and why."""
    notebook: str
    cell: str
    numbers: tuple[str, ...]
    why: str


VGF, IMG, FAM, LAB = ("vae_gan_flow.ipynb", "image_flows.ipynb", "flow_families.ipynb",
                      "normalizing_flows.ipynb")
#: continuous_flows.ipynb: its result numbers are rendered from the run (IPython.display.Markdown), none in prose
CNF = "continuous_flows.ipynb"
README = "benchmarks/README.md"
FIVE = "notebooks/data/vae_gan_flow_5_seeds.json"
THREE = "notebooks/data/image_flows_3_seeds.json"
LAB_RECIPE = "notebooks/data/lab_recipe_seeds.json"


def _table(model: str, column: int) -> Output:
    """Column ``column`` (0: bits/dim, 2: weighted) of image_flows' three-seed table."""
    return Output("8da15363", rf"{model}\s+" + r"\S+\s+" * column + r"(\d\.\d+)")


#: vae_gan_flow's five-seed table of bounds against the grid's NLL (cell vgf-34c): a model's NLL,
#: its bound at k = 1000, and its ``bound minus NLL`` row's column (0: the ELBO, 4: k = 1000)
_GRID = r"\n{}\s+(\d\.\d+)"
_K1000 = r"\n{}\s+(?:\S+\s+){{5}}(\S+)"
_BOUNDS = r"\n{}\s.*?bound minus NLL\s+(?:\S+\s+){{{}}}(\S+)"

FLAT, MULTI, VARIATIONAL = "one scale, uniform", "multi-scale, uniform", "multi-scale, variational"
#: the one-scale flow as wide as the multi-scale one (61 channels), its rows added to the stored seeds
WIDE = "one scale, wide, uniform"

CLAIMS: tuple[Claim, ...] = (
    # vae_gan_flow.ipynb
    Claim(VGF, "vgf-00", r"same ([\d,]+) points", Output("vgf-03", r"training points: ([\d,]+)")),
    Claim(VGF, "vgf-00", r"for (\d+) epochs", Output("vgf-03", r"epochs: (\d+)")),
    Claim(VGF, "vgf-00", r"batches of (\d+)", Output("vgf-03", r"batch size: (\d+)")),
    Claim(VGF, "vgf-00", r"rate of (1e-3)", Output("vgf-03", r"the GAN's: (\S+)\)")),
    Claim(VGF, "vgf-00", r"peaks at (3e-3)", Output("vgf-03", r"peak learning rate: (\S+) ")),
    Claim(VGF, "vgf-04", r"at most (2e-4) nats", Output("vgf-04b", r"at most (\S+) nats")),
    Claim(VGF, "vgf-04", r"about (0\.7),", Output("vgf-04b", r"mean of the seeds: (\d\.\d+)")),
    Claim(VGF, "vgf-04", r"against (0\.07) with", Output("vgf-04b", r"without annealing, (\d\.\d+) with")),
    Claim(VGF, "vgf-04", r"bound of (1\.\d+) nats", Output("vgf-04b", r"without annealing: bound (\d\.\d+) to")),
    Claim(VGF, "vgf-04", r"(2\.\d+) nats at best", Output("vgf-04b", r"at best (\d\.\d+) nats")),
    Claim(VGF, "vgf-04", r"VAE's (0\.\d+) to", Output("vgf-04b", r"with annealing: bound (\d\.\d+) to")),
    Claim(VGF, "vgf-04", r"VAE's 0\.\d+ to (0\.\d+)", Output("vgf-04b", r"with annealing: bound \d\.\d+ to (\d\.\d+)")),
    Claim(VGF, "vgf-21", r"above \$-(0\.\d+)\$", Output("vgf-03", r"entropy of the truth: (\d\.\d+)")),
    Claim(VGF, "vgf-27", r"about (\d) %", Output("vgf-28", r"flow (\d+)%")),
    Claim(VGF, "vgf-29", r"own \$-(0\.\d+)\$", Output("vgf-03", r"entropy of the truth: (\d\.\d+)")),
    Claim(VGF, "vgf-31", r"bound of (1\.\d+) nats", Output("vgf-04b", r"without annealing: bound (\d\.\d+) to")),
    Claim(VGF, "vgf-31", r"peak rate of (1e-3)", Text("flowlab/studies/gan.py", r"peak rate of (1e-3)")),
    Claim(VGF, "vgf-31", r"against\s+(3e-3)", Text("flowlab/studies/gan.py", r"at (3e-3)")),
    Claim(VGF, "vgf-33", r"from (0\.\d+) to", Output("vgf-34", r"k=100: (\d\.\d+)")),
    Claim(VGF, "vgf-33", r"to (0\.\d+) between", Output("vgf-34", r"k=1000: (\d\.\d+)")),
    Claim(VGF, "vgf-33", r"lies (0\.\d+) nats above", Output("vgf-34c", _BOUNDS.format("vae", 4))),
    Claim(VGF, "vgf-33", r"ELBO (0\.\d+) nats\.", Output("vgf-34c", _BOUNDS.format("vae", 0))),
    Claim(VGF, "vgf-33", r"NLL itself, (0\.\d+) nats", Output("vgf-34c", _GRID.format("vae"))),
    Claim(VGF, "vgf-33", r"exact\s+(0\.\d+) on", Stored(FIVE, "models.flow.per_seed.0.heldout_nll")),
    Claim(VGF, "vgf-35", r"spread of (0\.\d+) nats", Output("vgf-36", r"a spread of (\d\.\d+)")),
    Claim(VGF, "vgf-35", r"move by (0\.\d+) to", Difference(Stored(FIVE, "models.vae.spread.nll_upper_bound.max"),
                                                          Stored(FIVE, "models.vae.spread.nll_upper_bound.min"))),
    Claim(VGF, "vgf-35", r"move by 0\.\d+ to (0\.\d+)",
          Difference(Stored(FIVE, "models.vae_flow_prior.spread.nll_upper_bound.max"),
                     Stored(FIVE, "models.vae_flow_prior.spread.nll_upper_bound.min"))),
    Claim(VGF, "vgf-35", r"span\s+(0\.\d+) to", Output("vgf-36", r"span (\d\.\d+) to")),
    Claim(VGF, "vgf-35", r"span\s+0\.\d+ to (0\.\d+)", Output("vgf-36", r"span \d\.\d+ to (\d\.\d+)")),
    Claim(VGF, "vgf-35", r"NLLs (0\.\d+) to", Output("vgf-36", r"5 seeds: (\d\.\d+) to")),
    Claim(VGF, "vgf-35", r"NLLs 0\.\d+ to (0\.\d+)", Output("vgf-36", r"5 seeds: \d\.\d+ to (\d\.\d+)")),
    Claim(VGF, "vgf-37", r"\((0\.\d+) against", Output("vgf-38", r"flow prior (\d\.\d+)")),
    Claim(VGF, "vgf-37", r"against (0\.\d+) nats", Output("vgf-38", r"unit-Gaussian prior (\d\.\d+)")),
    Claim(VGF, "vgf-37", r"grid is (0\.\d+) against", Output("vgf-34c", _GRID.format("vae_flow_prior"))),
    Claim(VGF, "vgf-37", r"grid is 0\.\d+ against (0\.\d+)", Output("vgf-34c", _GRID.format("vae"))),
    Claim(VGF, "vgf-37", r"lying\s+(0\.\d+) nats", Output("vgf-34c", _BOUNDS.format("vae_flow_prior", 0))),
    Claim(VGF, "vgf-37", r"NLL against (0\.\d+)", Output("vgf-34c", _BOUNDS.format("vae", 0))),
    Claim(VGF, "vgf-37", r"1000\$ (0\.\d+) against", Output("vgf-34c", _BOUNDS.format("vae_flow_prior", 4))),
    Claim(VGF, "vgf-37", r"1000\$ 0\.\d+ against (0\.\d+)", Output("vgf-34c", _BOUNDS.format("vae", 4))),
    Claim(VGF, "vgf-37", r"that is (0\.\d+) of", Difference(Output("vgf-34c", _BOUNDS.format("vae", 4)),
                                                          Output("vgf-34c", _BOUNDS.format("vae_flow_prior", 4)))),
    Claim(VGF, "vgf-37", r"of the (0\.\d+) nats", Difference(Output("vgf-34c", _K1000.format("vae")),
                                                           Output("vgf-34c", _K1000.format("vae_flow_prior")))),
    Claim(VGF, "vgf-41", r"within (0\.\d+) nats", Output("vgf-34c", _BOUNDS.format("vae", 4))),
    # image_flows.ipynb
    Claim(IMG, "03bef6fd", r"into ([\d,]+) for training", Output("4781b13d", r"train\s+\((\d+),")),
    Claim(IMG, "03bef6fd", r"training, (\d+)\s+for validation", Output("4781b13d", r"validation\s+\((\d+),")),
    Claim(IMG, "03bef6fd", r"and (\d+) for the test", Output("4781b13d", r"test\s+\((\d+),")),
    Claim(IMG, "648e551a", r"over the (\d+) levels", Output("4781b13d", r"grey levels: (\d+)")),
    Claim(IMG, "10854f4f", r"needs (\d\.\d+) bits/dim", _table(VARIATIONAL, 0)),
    Claim(IMG, "10854f4f", r"and (\d\.\d+) on the importance", _table(VARIATIONAL, 2)),
    Claim(IMG, "10854f4f", r"about (0\.\d+)\s+times", Output("6f6cb7b3", r"independent pixels: (\d\.\d+)")),
    Claim(IMG, "10854f4f", r"pixels' (\d\.\d+)", Output("8da15363", r"independent pixels \(exact\)\s+(\d\.\d+)")),
    Claim(IMG, "10854f4f", r"about (0\.\d+) bits/dim \(", Difference(_table(FLAT, 0), _table(MULTI, 0))),
    Claim(IMG, "10854f4f", r"\((0\.\d+) on the weighted", Difference(_table(FLAT, 2), _table(MULTI, 2))),
    Claim(IMG, "10854f4f", r"parameters \(([\d,]+) against", Output("372af5fd", r"trainable parameters: ([\d,]+)"), -3),
    Claim(IMG, "10854f4f", r"against ([\d,]+)\)", Stored(THREE, "rows.2.parameters"), -3),
    Claim(IMG, "10854f4f", r"buys about (0\.\d+)", Difference(_table(FLAT, 0), _table(WIDE, 0))),
    Claim(IMG, "10854f4f", r"still about\s+(0\.\d+) lower", Difference(_table(WIDE, 0), _table(MULTI, 0))),
    Claim(IMG, "10854f4f", r"lower than it \((0\.\d+) on", Difference(_table(WIDE, 2), _table(MULTI, 2))),
    Claim(IMG, "10854f4f", r"uniform\*\* by about (0\.\d+)", Difference(_table(MULTI, 0), _table(VARIATIONAL, 0))),
    Claim(IMG, "10854f4f", r"lies (0\.\d+) above", Difference(_table(VARIATIONAL, 0), _table(VARIATIONAL, 2))),
    Claim(IMG, "10854f4f", r"noise's (0\.\d+)", Difference(_table(MULTI, 0), _table(MULTI, 2))),
    Claim(IMG, "10854f4f", r"is (0\.\d+) to 0\.\d+ lower", Difference(_table(FLAT, 0), _table(FLAT, 2))),
    Claim(IMG, "10854f4f", r"to (0\.\d+) lower", Difference(_table(MULTI, 0), _table(MULTI, 2))),
    Claim(IMG, "10854f4f", r"about (0\.\d+) below", Difference(Output("21564149", r"epoch 60/60.*?val_loss (\S+)"),
                                                            Output("21564149", r"epoch 60/60\s+loss (\S+)"))),
    Claim(IMG, "10854f4f", r"([\d,]+) images are few", Output("4781b13d", r"train\s+\((\d+),")),
    Claim(IMG, "10854f4f", r"few for ([\d,]+)\s+parameters", Output("372af5fd", r"trainable parameters: ([\d,]+)"), -3),
    Claim(IMG, "f10026f9", r"model of ([\d,]+) images", Output("4781b13d", r"train\s+\((\d+),")),
    Claim(IMG, "27a2b374", r"about (\d+) grey levels", Output("e33260cf", r"samples_median_nearest_distance: (\S+)"), 0),
    Claim(IMG, "27a2b374", r"against\s+about (\d+)\)", Output("e33260cf", r"test_median_nearest_distance: (\S+)"), 0),
    # flow_families.ipynb
    Claim(FAM, "59144a03", r"spline \((\d+) bins\)", Output("8f5f85db", r"spline coupling layer: (\d+)")),
    Claim(FAM, "d774c9b8", r"on (2), 2 and 3", Text(README, r"RealNVP \| warmed \| \*\*[\d.]+\*\* \| \*\*[\d.]+\*\* \| \*\*(\d) of 8")),
    Claim(FAM, "d774c9b8", r"on 2, (2) and 3", Text(README, r"RealNVP \| warmed \(the default\) \| [\d.]+ \| [\d.]+ \| (\d) of 8")),
    Claim(FAM, "d774c9b8", r"on 2, 2 and (3)", Text(README, r"\*\*(\d) -> \d\*\*")),
    Claim(FAM, "d774c9b8", r"worst at (0\.\d+)", Text(README, r"\| 0\.114 -> 0\.081 \| (0\.\d+) ->")),
    Claim(FAM, "d774c9b8", r"between (0\.\d+) and", Text(README, r"now lie between\s+(0\.\d+)")),
    Claim(FAM, "d774c9b8", r"between 0\.\d+ and (0\.\d+)", Text(README, r"now lie between\s+0\.\d+ and (0\.\d+)")),
    Claim(FAM, "d774c9b8", r"stalled on (2) of 8", Text(README, r"MAF \| warmed \(the default\) \| [\d.]+ \| [\d.]+ \| (\d) of 8")),
    Claim(FAM, "d774c9b8", r"up to (0\.\d+)\)", Text(README, r"MAF \| warmed \(the default\) \| [\d.]+ \| ([\d.]+)")),
    Claim(FAM, "d774c9b8", r"A (\d+)-bin spline", Output("8f5f85db", r"spline coupling layer: (\d+)")),
    Claim(FAM, "d774c9b8", r"took (\d\.\d+)x", Text(README, r"the (1\.\d+)x of the first study")),
    Claim(FAM, "d774c9b8", r"median (\d+\.\d) s", Text(README, r"spline \| warmed \| [\d.]+ \| [\d.]+ \| \| 0 \| 0 of 8 \| ([\d.]+)")),
    Claim(FAM, "d774c9b8", r"against (\d+\.\d) s", Text(README, r"MAF \| warmed \| \*\*[\d.]+\*\* .*? \| ([\d.]+) \| 1\.02x")),
    Claim(FAM, "d774c9b8", r"and (1\.\d+)x and", Text(README, r"\(seeds 300-307, default; median (1\.\d+)x")),
    Claim(FAM, "d774c9b8", r"and (1\.\d+)x in two", Text(README, r"\(400-403, 06878c1;\s+median (1\.\d+)x")),
    # normalizing_flows.ipynb (the lab), from the VAE/GAN/flow notebook's stored five seeds
    Claim(LAB, "e3077261", r"is (0\.\d+) ±", Stored(FIVE, "models.flow.spread.heldout_nll.mean")),
    Claim(LAB, "e3077261", r"± (0\.\d+) nats", Stored(FIVE, "models.flow.spread.heldout_nll.std")),
    Claim(LAB, "e3077261", r"own is (0\.\d+)\)", Stored(FIVE, "entropy")),
    Claim(LAB, "e3077261", r"above, at (0\.\d+)", Stored(FIVE, "models.vae.nll_upper_bound")),
    Claim(LAB, "e3077261", r"\((0\.\d+) with a small", Stored(FIVE, "models.vae_flow_prior.nll_upper_bound")),
    # the lab's own recipe over ten seeds (issue 34), from benchmarks/bench_lab_recipe.py's stored rows
    Claim(LAB, "56e20c84", r"exact density was (0\.\d+)", Stored(LAB_RECIPE, "recipes.lab.median_kl")),
    Claim(LAB, "56e20c84", r"ten-epoch warm-up the median was (0\.\d+)", Stored(LAB_RECIPE, "recipes.bounded+reseed+warm10.median_kl")),
    Claim(LAB, "56e20c84", r"with (\d+) runs of 10 above 0\.07", Stored(LAB_RECIPE, "recipes.bounded+reseed+warm10.above_0.07")),
    Claim(LAB, "56e20c84", r"used here it is (0\.\d+)", Stored(LAB_RECIPE, "recipes.bounded+reseed+warm=20.median_kl")),
    Claim(LAB, "56e20c84", r"with (\d+) of 10 above 0\.07", Stored(LAB_RECIPE, "recipes.bounded+reseed+warm=20.above_0.07")),
    Claim(LAB, "56e20c84", r"the best run \((0\.\d+)\)", Stored(LAB_RECIPE, "recipes.bounded+reseed+warm=20.min_kl")),
    Claim(LAB, "56e20c84", r"median to (0\.\d+)\)", Stored(LAB_RECIPE, "recipes.warm10.median_kl")),
)

CITATIONS: tuple[Citation, ...] = (
    Citation(VGF, "vgf-23", ("2021", "2.3"), "Papamakarios et al.", "JMLR, 2021"),
    Citation(VGF, "vgf-31", ("2016", "2e-4"), "Radford et al.", "2016"),
    Citation(IMG, "518fbe39", ("11", "256"), "University of Amsterdam", "tutorial 11"),
    Citation(IMG, "194a2716", ("2016",), "Theis, van den Oord and Bethge", "ICLR 2016"),
    Citation(IMG, "27a2b374", ("2016",), "Bethge", "(2016)"),
    # one version of the UvA tutorial: its PyTorch notebook's stored outputs at one commit
    Citation(IMG, "uva-mnist", ("11", "1.080", "1.078", "20", "18", "556,312", "1.045", "1.043", "26", "628,388",
                                "1.022", "1.020", "23", "15", "1,711,818", "64", "256"),
             "docs/tutorial_notebooks/tutorial11/NF_image_modeling.ipynb",
             "phlippe/uvadlc_notebooks at commit a1e6e7af8c9c06cc58d54ac448a89936930bc58e"),
    Citation(FAM, "2f11caff", ("2019",), "Durkan et al.", "2019"),
    Citation(LAB, "6771a6cc", ("2.16",), "TensorFlow", "2.16"),
    Citation(LAB, "21809d59", ("2020", "2019"), "Cornish et al.", "Hoogeboom et al."),
    Citation(LAB, "495c091b", ("2021", "2.3"), "Papamakarios et", "JMLR, 2021"),
    Citation(LAB, "1c6c3154", ("2017", "2015", "2018"), "Dinh et al.", "Kim et al., 2018"),
    Citation(LAB, "5af50f6d", ("1908.09257",), "Kobyzev, Prince and Brubaker", "arXiv:1908.09257"),
    Citation(CNF, "cnf-00", ("2018", "2019", "2023"), "Grathwohl et al.", "2019"),
)

SETTINGS: tuple[Setting, ...] = (
    Setting(VGF, "vgf-02", ("10,000", "10", "0.3", "100,000", "1000"), "sample and point counts, bins, k; the truth's 0.3 % is the noise's 3-std tail"),
    Setting(VGF, "vgf-12", ("10,000", "100,000"), "sample and point counts"),
    Setting(VGF, "vgf-33", ("10", "100", "1000", "200"), "values of k, the grid's cells a side"),
    Setting(IMG, "518fbe39", ("1,797", "16"), "the data set's size and grey levels"),
    Setting(IMG, "03bef6fd", ("1,797",), "the data set's size"),
    Setting(IMG, "c0928b9a", ("64", "32", "16", "17"), "dimensions, channels, the squeeze demo's numbers, levels"),
    Setting(IMG, "2b681bbc", ("64",), "noise draws"),
    Setting(IMG, "941121da", ("64",), "noise draws"),
    Setting(IMG, "10854f4f", ("64", "61", "32"), "noise draws; the wide and the default flows' channels"),
    Setting(IMG, "c56279e1", ("64",), "dimensions"),
    Setting(IMG, "0cac3cd0", ("0.7",), "the temperature"),
    Setting(IMG, "27a2b374", ("64", "300", "17"), "dimensions, sample count, grey levels"),
    Setting(IMG, "uva-mnist", ("17",), "this notebook's grey levels"),
    Setting(FAM, "2f11caff", ("128", "80", "10,000"), "the budget"),
    Setting(FAM, "60065146", ("100,000", "10,000"), "point counts"),
    Setting(FAM, "3a63e24f", ("1,500",), "point count"),
    Setting(FAM, "70c9d2ef", ("10,000",), "point count"),
    Setting(FAM, "d774c9b8", ("0.12",), "the stall studies' threshold"),
    Setting(LAB, "e3077261", ("10,000", "80"), "the budget"),
    Setting(LAB, "56e20c84", ("20", "0.07"), "the warm-up epochs, and the threshold bench_lab_recipe.py counts runs above"),
    Setting(LAB, "dc8cfe5d", ("0.5",), "the example bijector's scale"),
    Setting(LAB, "93fdf795", ("0.5",), "the exercise's scale"),
    Setting(LAB, "25d56b88", ("0.5",), "the exercise's scale"),
    Setting(LAB, "c05420cc", ("128",), "hidden units"),
    Setting(LAB, "56e20c84", ("80", "32", "10", "128"), "epochs, batch sizes, warm-up and progress interval"),
    Setting(LAB, "18f7265f", ("2,000",), "point count"),
    Setting(LAB, "5198fb8c", ("5,000",), "point count"),
    Setting(LAB, "eac5cf7a", ("100,000",), "point count"),
    Setting(LAB, "21809d59", ("80",), "epochs"),
    Setting(LAB, "a8b7e4ef", ("10,000",), "point count"),
    Setting(CNF, "cnf-12", ("5,000",), "sample count"),
    Setting(CNF, "cnf-14", ("20,000",), "point count"),
)
