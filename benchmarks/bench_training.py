"""Side-by-side benchmark: the lab sheet's literal training vs flowlab's default training.

Same architecture (3 x [MAF(128, 128, relu) + Permute]), same 10,000 training points, 80 epochs.
Runs are interleaved seed by seed (and alternate which goes first) so that drifting machine load
hits both alike. Reports training seconds, held-out NLL on 100,000 fresh points, KL to the exact
density, and the ratio of times; also times log_prob on a 200 x 200 grid and drawing 10,000 samples.

    python benchmarks/bench_training.py --seeds 0 1 2 3 4 --out benchmarks/results/training.json
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
import tensorflow as tf
import tensorflow_probability as tfp

from flowlab import measure
from flowlab.flows import FlowConfig, make_flow
from flowlab.measure import evaluate
from flowlab.train import TrainSettings, build_model, fit, nll_loss

tfd, tfb = tfp.distributions, tfp.bijectors


def sheet_flow() -> tfd.TransformedDistribution:
    """The lab sheet's flow, built exactly as the sheet does (unseeded initializers)."""
    bijectors = []
    for _ in range(3):
        anet = tfb.AutoregressiveNetwork(params=2, hidden_units=[128, 128], activation="relu")
        bijectors += [tfb.MaskedAutoregressiveFlow(anet), tfb.Permute([1, 0])]
    return tfd.TransformedDistribution(tfd.MultivariateNormalDiag(loc=[0.0, 0.0]), tfb.Chain(bijectors))


def train_sheet(data: np.ndarray, seed: int, epochs: int):
    """The sheet's literal training: Adam(1e-3), Keras' default batch of 32."""
    tf.keras.utils.set_random_seed(seed)
    flow = sheet_flow()
    model = build_model(flow)
    model.compile(optimizer=tf.keras.optimizers.Adam(), loss=nll_loss)
    start = time.perf_counter()
    model.fit(x=data, y=np.zeros(len(data)), epochs=epochs, verbose=0)
    return flow, time.perf_counter() - start


def train_flowlab(data: np.ndarray, seed: int, epochs: int):
    """flowlab's default recipe for the same architecture."""
    flow = make_flow(FlowConfig(seed=seed))
    start = time.perf_counter()
    fit(flow, data, TrainSettings(epochs=epochs, seed=seed), progress=False)
    return flow, time.perf_counter() - start


def time_inference(flow, repeats: int = 3) -> dict[str, float]:
    """Best-of-``repeats`` seconds for log_prob on a 200 x 200 grid and for 10,000 samples."""
    _, _, points = measure.grid(2.5, n=200)
    return {"grid_log_prob_s": measure.best_time(lambda: flow.log_prob(points).numpy(), repeats),
            "sample_10k_s": measure.best_time(lambda: flow.sample(10_000, seed=1).numpy(), repeats)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=80)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/training.json"))
    args = parser.parse_args()

    runners = {"sheet": train_sheet, "flowlab": train_flowlab}
    rows = []
    for i, seed in enumerate(args.seeds):
        data = flowlab.make_moons(10_000, noise=0.05, seed=seed)
        order = list(runners) if i % 2 == 0 else list(reversed(runners))
        for name in order:
            flow, seconds = runners[name](data, seed, args.epochs)
            row = {"recipe": name, "seed": seed, "train_s": seconds, **evaluate(flow),
                   **time_inference(flow)}
            rows.append(row)
            print(f"  {name:8s} seed {seed}: {seconds:6.1f} s  NLL {row['heldout_nll']:.4f}  "
                  f"KL {row['kl_to_exact']:.4f}", flush=True)

    print(f"\n{'recipe':8s} {'seed':>4s} {'train s':>8s} {'NLL':>7s} {'KL':>7s} {'grid s':>7s} {'10k smp s':>9s}")
    for row in rows:
        print(f"{row['recipe']:8s} {row['seed']:>4d} {row['train_s']:8.1f} {row['heldout_nll']:7.4f} "
              f"{row['kl_to_exact']:7.4f} {row['grid_log_prob_s']:7.3f} {row['sample_10k_s']:9.3f}")
    summary = {}
    for name in runners:
        mine = [r for r in rows if r["recipe"] == name]
        summary[name] = {
            "median_train_s": statistics.median(r["train_s"] for r in mine),
            "median_kl": statistics.median(r["kl_to_exact"] for r in mine),
            "max_kl": max(r["kl_to_exact"] for r in mine),
            "median_nll": statistics.median(r["heldout_nll"] for r in mine),
        }
        print(f"{name:8s} median: {summary[name]['median_train_s']:.1f} s, "
              f"KL {summary[name]['median_kl']:.4f} (max {summary[name]['max_kl']:.4f})")
    ratios = [s["train_s"] / f["train_s"] for s, f in zip(
        [r for r in rows if r["recipe"] == "sheet"], [r for r in rows if r["recipe"] == "flowlab"], strict=True)]
    summary["time_ratio_sheet_over_flowlab"] = statistics.median(ratios)
    print(f"training time ratio (sheet / flowlab, median over seeds): {summary['time_ratio_sheet_over_flowlab']:.2f}x")
    print(f"load average during run: {os.getloadavg()}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"rows": rows, "summary": summary, "epochs": args.epochs,
                                    "loadavg": os.getloadavg()}, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
