"""Flow families side by side: MAF, IAF, RealNVP and a spline flow at the lab's budget.

Each family: 3 x [layer + Permute], hidden units [128, 128], relu, 80 epochs, flowlab's default
training, the same 10,000 points per seed. Families are interleaved within each seed (rotating
the order) so machine load hits all alike. Prints a table per run and the medians; writes JSON.

    python benchmarks/bench_families.py --seeds 0 1 2 --out benchmarks/results/families.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import flowlab  # before TensorFlow
from flowlab.flows import LAYER_FLOWS as FLOWS, FlowConfig, make_flow  # the layered families (not cnf)
from flowlab.measure import flow_row, gap_disc_mass
from flowlab.train import TrainSettings, fit

COLUMNS = ("params", "train_s", "log_prob_100k_s", "sample_10k_s", "heldout_nll", "kl_to_exact", "kl_se",
           "gap_disc_mass")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=80)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/families.json"))
    args = parser.parse_args()

    rows = []
    header = f"{'family':8s} {'seed':>4s}" + "".join(f"{c:>16s}" for c in COLUMNS)
    print(header, flush=True)
    for i, seed in enumerate(args.seeds):
        data = flowlab.make_moons(10_000, seed=seed)
        order = FLOWS[i % len(FLOWS):] + FLOWS[:i % len(FLOWS)]
        for family in order:
            flow = make_flow(FlowConfig(flow=family, seed=seed))
            start = time.perf_counter()
            fit(flow, data, TrainSettings(epochs=args.epochs, seed=seed), progress=False)
            row = {"family": family, "seed": seed, **flow_row(flow, time.perf_counter() - start)}
            rows.append(row)
            print(f"{family:8s} {seed:>4d}" + "".join(f"{row[c]:16.4g}" for c in COLUMNS), flush=True)

    print("\nmedians over seeds")
    print(f"{'family':8s}     " + "".join(f"{c:>16s}" for c in COLUMNS))
    medians = {}
    for family in FLOWS:
        mine = [r for r in rows if r["family"] == family]
        medians[family] = {c: statistics.median(r[c] for r in mine) for c in COLUMNS}
        print(f"{family:8s}     " + "".join(f"{medians[family][c]:16.4g}" for c in COLUMNS))
    print(f"exact gap disc mass: {gap_disc_mass(flowlab.moons_log_prob):.1e}")
    maf = medians["maf"]
    for family in ("iaf", "realnvp", "spline"):
        m = medians[family]
        print(f"{family}: sampling {maf['sample_10k_s'] / m['sample_10k_s']:.2f}x faster than MAF, "
              f"log_prob {m['log_prob_100k_s'] / maf['log_prob_100k_s']:.2f}x MAF's time, "
              f"training {m['train_s'] / maf['train_s']:.2f}x MAF's time")
    print(f"load average: {os.getloadavg()}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"rows": rows, "medians": medians, "loadavg": os.getloadavg()},
                                   indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
