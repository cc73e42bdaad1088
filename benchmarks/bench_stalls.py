"""The stall study: how often default training ends far from the truth or diverges, per family,
with the affine layers' log-scales unbounded and a one-epoch warm-up (``unbounded``, flowlab
before the study), soft-bounded with a one-epoch warm-up (``bounded``), and soft-bounded with
the warm-up over the first eighth of the epochs (``warmed``: 10 of 80, the default), and that with
an ActNorm before each layer (``actnorm``; the spline flow has no such option and trains as warmed).

Each run is ``flowlab train``'s recipe: 10,000 moons drawn with the seed, the flow built with the
seed, 80 epochs of flowlab's default training. Recipes alternate order within each seed so that
machine load hits them alike. A run "stalls" when its KL to the exact density is above the issue's
bound (0.12 for MAF and RealNVP, 0.15 for IAF, 0.02 for the spline flow's median); a diverged run
stops with :class:`flowlab.train.TrainingDiverged`. ``nonfinite`` counts grid points where the
trained flow's log_prob is not finite, on the grids the project draws (2.5, 150 x 150) and
integrates (8, 300 x 300). Rows are appended to ``--out`` as they finish (JSON lines).

    python benchmarks/bench_stalls.py --recipes bounded warmed --seeds 100 101 102 103 104 105 106 107

The figures, and the pilots that chose the recipe, are in ``benchmarks/README.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import flowlab  # before TensorFlow
import numpy as np

from flowlab.flows import FAMILIES, LAYER_FLOWS as FLOWS, FlowConfig, make_flow  # the layered families (not cnf)
from flowlab.measure import evaluate, grid
from flowlab.train import TrainingDiverged, TrainSettings, fit

#: recipe -> (FlowConfig fields, TrainSettings fields) that differ from the defaults
RECIPES = {"unbounded": ({"log_scale_bound": None}, {"warmup_epochs": 1}),
           "bounded": ({}, {"warmup_epochs": 1}),
           "warmed": ({}, {}),
           "actnorm": ({"actnorm": True}, {})}  # an ActNorm before each layer (the affine families)
STALL_KL = {"maf": 0.12, "realnvp": 0.12, "iaf": 0.15, "spline": 0.02}
GRIDS = ((2.5, 150), (8.0, 300))


def nonfinite_on_grids(flow) -> int:
    """Grid points, over the drawn and the integrated grid, where log_prob is NaN or infinite."""
    count = 0
    for lim, n in GRIDS:
        _, _, points = grid(lim, n)
        count += int((~np.isfinite(flow.log_prob(points).numpy())).sum())
    return count


def run(family: str, seed: int, recipe: str, epochs: int) -> dict:
    data = flowlab.make_moons(10_000, seed=seed)
    flow_fields, train_fields = RECIPES[recipe]
    own = {key: value for key, value in flow_fields.items() if key in FAMILIES[family].options}
    flow = make_flow(FlowConfig(flow=family, seed=seed, options=own))
    start = time.perf_counter()
    try:
        fit(flow, data, TrainSettings(epochs=epochs, seed=seed, **train_fields), progress=False)
    except TrainingDiverged as error:
        return {"family": family, "seed": seed, "recipe": recipe, "train_s": time.perf_counter() - start,
                "kl": float("nan"), "kl_se": float("nan"), "nonfinite": -1, "diverged": str(error)}
    seconds = time.perf_counter() - start
    scores = evaluate(flow)
    return {"family": family, "seed": seed, "recipe": recipe, "train_s": seconds,
            "kl": scores["kl_to_exact"], "kl_se": scores["kl_se"], "nonfinite": nonfinite_on_grids(flow),
            "diverged": ""}


def summarize(rows: list[dict]) -> None:
    print(f"\n{'family':8s} {'recipe':9s} {'runs':>4s} {'median KL':>9s} {'max KL':>7s} {'stalled':>7s} "
          f"{'diverged':>8s} {'nonfinite':>9s} {'median s':>8s}")
    for family in FLOWS:
        for recipe in RECIPES:
            mine = [r for r in rows if r["family"] == family and r["recipe"] == recipe]
            if not mine:
                continue
            kls = [r["kl"] for r in mine if not r["diverged"]]
            stalled = sum(1 for k in kls if k > STALL_KL[family])
            print(f"{family:8s} {recipe:9s} {len(mine):4d} {statistics.median(kls) if kls else float('nan'):9.4f} "
                  f"{max(kls) if kls else float('nan'):7.4f} {stalled:7d} {sum(bool(r['diverged']) for r in mine):8d} "
                  f"{sum(r['nonfinite'] > 0 for r in mine):9d} {statistics.median(r['train_s'] for r in mine):8.1f}")
        for before, after in (("unbounded", "bounded"), ("bounded", "warmed"), ("unbounded", "warmed"),
                              ("warmed", "actnorm")):
            pairs = [(b, a) for b in rows for a in rows if b["family"] == a["family"] == family
                     and b["seed"] == a["seed"] and b["recipe"] == before and a["recipe"] == after
                     and not b["diverged"] and not a["diverged"]]
            if pairs:
                ratio = statistics.median(a["train_s"] / b["train_s"] for b, a in pairs)
                print(f"{family:8s} training time {after} / {before}, median over {len(pairs)} seeds: {ratio:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", nargs="+", choices=FLOWS, default=list(FLOWS))
    parser.add_argument("--seeds", type=int, nargs="+", default=list(range(100, 108)))
    parser.add_argument("--recipes", nargs="+", choices=list(RECIPES), default=["bounded", "warmed"])
    parser.add_argument("--epochs", type=int, default=80)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/stalls.jsonl"))
    parser.add_argument("--summary-only", action="store_true", help="summarize --out without training")
    args = parser.parse_args()

    rows = [json.loads(line) for line in args.out.read_text().splitlines()] if args.out.exists() else []
    if not args.summary_only:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        for i, seed in enumerate(args.seeds):
            for family in args.families:
                order = args.recipes if i % 2 == 0 else list(reversed(args.recipes))
                for recipe in order:
                    row = run(family, seed, recipe, args.epochs)
                    rows.append(row)
                    with args.out.open("a") as out:
                        out.write(json.dumps(row) + "\n")
                    print(f"{family:8s} seed {seed:4d} {recipe:9s} {row['train_s']:6.1f} s  KL {row['kl']:.4f}"
                          f"  nonfinite {row['nonfinite']}  {row['diverged']}", flush=True)
    summarize(rows)
    print(f"load average: {os.getloadavg()}")


if __name__ == "__main__":
    main()
