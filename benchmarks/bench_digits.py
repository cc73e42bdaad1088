"""Digits flows side by side: bits per dimension and training time over seeds.

For each seed (which also draws the train / validation / test split): the two baselines
(independent categorical pixels, a full-covariance Gaussian), the flow without the multi-scale
structure (the same couplings, all at 8x8, uniform dequantization), the multi-scale flow with
uniform dequantization, and the multi-scale flow with variational dequantization, each at
flowlab's digits settings; on request (``--models``) also the one-scale flow made as wide as
the multi-scale one (61 hidden channels: about 212,000 parameters, as many as the multi-scale
flow's), so that "multi-scale beats one scale" is not a comparison of 101,000 parameters with
212,000. Test bits/dim are the dequantization bound (4 noise draws per image) and the
importance-weighted bound (64 draws); each flow's row also keeps its best epoch's validation bound.
Prints a table per run and the means; writes JSON.

    python benchmarks/bench_digits.py --seeds 0 1 2 --out benchmarks/results/digits.json
    # add a model's rows (same seeds, same splits) to a stored file, its summary recomputed:
    python benchmarks/bench_digits.py --seeds 0 1 2 --models flat_uniform_wide \
        --add-to notebooks/data/image_flows_3_seeds.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from dataclasses import replace
from pathlib import Path

import flowlab  # noqa: F401  (before TensorFlow)
from flowlab.studies.digits.data import load_digit_splits
from flowlab.studies.digits.lab import baselines
from flowlab.studies.digits.flows import ImageFlowConfig, VariationalDequantizer, make_image_flow
from flowlab.studies.digits.train import DIGITS_SETTINGS, bits_per_dim_estimate, fit_digits

#: model name -> (flow options, variational dequantization?)
MODELS = {"flat_uniform": ({"multiscale": False}, False), "multiscale_uniform": ({}, False),
          "multiscale_variational": ({}, True),
          # one scale, as many parameters as the multi-scale flow (61 channels: 212,640 against 211,972)
          "flat_uniform_wide": ({"multiscale": False, "hidden_channels": 61}, False)}
#: the models a plain run trains (the wide one-scale flow only when asked for)
DEFAULT_MODELS = ("flat_uniform", "multiscale_uniform", "multiscale_variational")
COLUMNS = ("test_bits_per_dim", "test_bits_per_dim_se", "test_bits_per_dim_iw64", "train_seconds")


def run_model(name: str, seed: int, epochs: int) -> dict:
    options, variational = MODELS[name]
    splits = load_digit_splits(seed=seed)
    flow = make_image_flow(replace(ImageFlowConfig(), seed=seed, **options))
    dequantizer = VariationalDequantizer(seed=seed) if variational else None
    start = time.perf_counter()
    history = fit_digits(flow, splits, replace(DIGITS_SETTINGS, epochs=epochs, seed=seed), dequantizer,
                         progress=False)
    seconds = time.perf_counter() - start
    plain = bits_per_dim_estimate(flow, splits.test, dequantizer, draws=4, seed=seed + 1)
    weighted = bits_per_dim_estimate(flow, splits.test, dequantizer, draws=64, seed=seed + 1, importance=True)
    return {"model": name, "seed": seed, "test_bits_per_dim": plain.mean, "test_bits_per_dim_se": plain.standard_error,
            "test_bits_per_dim_iw64": weighted.mean, "train_seconds": seconds,
            # the kept (best) epoch's bound on the validation images, the number training chose by
            "validation_bits_per_dim": min(history.history["val_loss"]),
            "parameters": int(sum(v.shape.num_elements() for v in flow.trainable_variables)
                              + (sum(v.shape.num_elements() for v in dequantizer.trainable_variables)
                                 if dequantizer else 0))}


def summarize(rows: list[dict]) -> dict:
    """Per model (in the order first seen): the means of COLUMNS over its rows and the spread
    (max - min) of its test bits/dim; printed, with each flow's ratio to independent pixels."""
    print("\nmeans over seeds (and the spread, max - min)")
    summary = {}
    for name in dict.fromkeys(r["model"] for r in rows):
        mine = [r for r in rows if r["model"] == name]
        summary[name] = {c: statistics.mean(r[c] for r in mine) for c in COLUMNS if c in mine[0]}
        summary[name]["spread"] = max(r["test_bits_per_dim"] for r in mine) - min(r["test_bits_per_dim"] for r in mine)
        print(f"{name:24s}     " + "".join(f"{summary[name][c]:24.4f}" for c in COLUMNS if c in summary[name])
              + f"   spread {summary[name]['spread']:.4f}")
    independent = summary["independent_pixels"]["test_bits_per_dim"]
    for name in summary:
        if name in MODELS:
            print(f"{name}: {summary[name]['test_bits_per_dim'] / independent:.3f} x independent pixels "
                  f"(importance-weighted: {summary[name]['test_bits_per_dim_iw64'] / independent:.3f} x)")
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=DIGITS_SETTINGS.epochs)
    parser.add_argument("--models", nargs="+", choices=list(MODELS), default=list(DEFAULT_MODELS))
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/digits.json"))
    parser.add_argument("--add-to", type=Path, default=None,
                        help="a stored results file (same epochs) to add these models' rows to, in place; "
                             "its baselines are kept, not rerun")
    args = parser.parse_args()

    stored = json.loads(args.add_to.read_text()) if args.add_to else None
    if stored is not None and stored["epochs"] != args.epochs:
        parser.error(f"{args.add_to} was trained for {stored['epochs']} epochs, not {args.epochs}")
    rows = [r for r in stored["rows"] if r["model"] not in args.models] if stored else []
    print(f"{'model':24s} {'seed':>4s}" + "".join(f"{c:>24s}" for c in COLUMNS), flush=True)
    for i, seed in enumerate(args.seeds):
        if stored is None:
            splits = load_digit_splits(seed=seed)
            for name, value in baselines(splits, seed=seed).items():
                rows.append({"model": name, "seed": seed, "test_bits_per_dim": value})
                print(f"{name:24s} {seed:>4d} {value:24.4f}", flush=True)
        names = list(args.models)
        for name in names[i % len(names):] + names[:i % len(names)]:  # rotate: load hits all alike
            row = run_model(name, seed, args.epochs)
            rows.append(row)
            print(f"{name:24s} {seed:>4d}" + "".join(f"{row[c]:24.4f}" for c in COLUMNS), flush=True)

    summary = summarize(rows)
    if stored is not None:
        added = stored.get("added", []) + [{"models": args.models, "seeds": args.seeds,
                                             "load_average": os.getloadavg()}]
        args.add_to.write_text(json.dumps({**stored, "rows": rows, "summary": summary, "added": added},
                                          indent=1) + "\n")
        print(f"added {args.models} to {args.add_to}; load average {os.getloadavg()[0]:.1f}")
        return
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"seeds": args.seeds, "epochs": args.epochs, "rows": rows, "summary": summary,
                                    "load_average": os.getloadavg()}, indent=1) + "\n")
    print(f"wrote {args.out}; load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
