"""Continuous flows against the lab's MAF at the same wall-clock training budget (issue 38, item 3).

Per seed, on the same 10,000 moons: the lab's MAF (3 x (128, 128), 80 epochs) is trained first and
its training seconds set the budget; then a continuous flow (3 x 128 swish velocity field) is trained
by flow matching, by flow matching with mini-batch OT pairing, and by maximum likelihood through the
ODE, each for the number of epochs that fits that budget (a 2-epoch pilot of the same model sets the
rate; the likelihood flow gets at least one epoch, whatever it costs), and flow matching with OT once
more at ``--long`` times the budget. Every model is scored the same way: held-out NLL and KL to the
exact density on 100,000 points, the sample metrics of ``flowlab compare`` on 10,000 samples, the
mass in the gap disc, seconds and ODE function evaluations per 10,000 samples and densities. Each
matching flow is then integrated with Euler at 1, 2, 5, 10, 50 steps and adaptively (KL on 10,000
held-out points, sample metrics), and its paths' straightness measured.

    python benchmarks/bench_continuous.py --seeds 0 1 2 --out benchmarks/results/continuous.json \\
        --notebook-data notebooks/data/continuous_flows_benchmark.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import time
from pathlib import Path

import flowlab  # before TensorFlow
import tensorflow as tf

from flowlab.data import make_moons, moons_entropy
from flowlab.studies.flow_matching import CNF_CONFIG, cost, straightness, train_cnf, with_solver
from flowlab.flows import FlowConfig, make_flow
from flowlab.measure import evaluate, gap_disc_mass, log_prob_numpy, sample_metrics
from flowlab.train import TrainSettings, fit

EULER_STEPS = (1, 2, 5, 10, 50)
SAMPLE_KEYS = ("energy_distance", "sample_log_p_true", "min_arc_ratio", "off_moons", "gap_disc_fraction")
#: method -> (objective, ot, budget multiple); None: the MAF.
METHODS = {"maf": None, "cnf_matching": ("matching", False, 1), "cnf_matching_ot": ("matching", True, 1),
           "cnf_likelihood": ("likelihood", False, 1), "cnf_matching_ot_long": ("matching", True, None)}


class EpochClock(tf.keras.callbacks.Callback):
    """Wall-clock seconds at the end of each epoch."""

    def on_train_begin(self, logs=None):
        self.start, self.ends = time.perf_counter(), []

    def on_epoch_end(self, epoch, logs=None):
        self.ends.append(time.perf_counter() - self.start)


def scores(flow, seed: int, heldout: int = 100_000) -> dict:
    """Held-out NLL and KL, sample metrics of 10,000 samples, the gap disc's mass, the cost per 10,000."""
    row = {key: value for key, value in evaluate(flow, n_samples=heldout).items() if not key.startswith("entropy")}
    samples = flow.sample(10_000, seed=seed).numpy()
    metrics = sample_metrics(samples, seed=seed + 7)
    row.update({key: metrics[key] for key in SAMPLE_KEYS})
    row["gap_disc_mass"] = gap_disc_mass(lambda x: log_prob_numpy(flow, x))
    row.update(cost(flow, 10_000, seed=seed))
    return row


def epochs_for(budget: float, objective: str, ot: bool, data, seed: int) -> tuple[int, float]:
    """Epochs of a fresh continuous flow that fit ``budget`` seconds, from a 2-epoch pilot's second epoch."""
    clock = EpochClock()
    flow = make_flow(dataclasses.replace(CNF_CONFIG, seed=seed))
    train_cnf(flow, data, TrainSettings(epochs=2, seed=seed), objective, ot, progress=False, callbacks=[clock])
    per_epoch = clock.ends[1] - clock.ends[0]
    return max(1, int(budget / per_epoch)), per_epoch


def train_continuous(method: str, budget: float, long: float, data, seed: int) -> tuple[object, dict]:
    objective, ot, multiple = METHODS[method]
    epochs, per_epoch = epochs_for(budget * (multiple or long), objective, ot, data, seed)
    flow = make_flow(dataclasses.replace(CNF_CONFIG, seed=seed))
    start = time.perf_counter()
    history = train_cnf(flow, data, TrainSettings(epochs=epochs, seed=seed), objective, ot, progress=False)
    seconds = time.perf_counter() - start
    return flow, {"epochs": epochs, "pilot_epoch_s": per_epoch, "train_s": seconds, "budget_s": budget * (multiple or long),
                  "final_train_loss": float(history.history["loss"][-1])}


def solver_sweep(flow, seed: int) -> dict:
    """KL (10,000 points), sample metrics and cost per solver: Euler at each step count, and adaptive."""
    sweep = {}
    for name, options in [(f"euler_{n}", {"solver": "euler", "steps": n}) for n in EULER_STEPS] + [("adaptive", {})]:
        variant = with_solver(flow, **options)
        row = {"kl_to_exact": evaluate(variant, n_samples=10_000)["kl_to_exact"]}
        metrics = sample_metrics(variant.sample(10_000, seed=seed).numpy(), seed=seed + 7)
        row.update({key: metrics[key] for key in SAMPLE_KEYS})
        row.update(cost(variant, 10_000, seed=seed))
        sweep[name] = row
    return sweep


def run_seed(seed: int, epochs: int, long: float) -> dict:
    data = make_moons(10_000, seed=seed)
    maf = make_flow(FlowConfig(seed=seed))
    start = time.perf_counter()
    fit(maf, data, TrainSettings(epochs=epochs, seed=seed), progress=False)
    budget = time.perf_counter() - start
    rows = {"maf": {"epochs": epochs, "train_s": budget, **scores(maf, seed)}}
    print(f"seed {seed}: maf {budget:.1f} s, KL {rows['maf']['kl_to_exact']:.4f}", flush=True)
    for method in list(METHODS)[1:]:
        flow, training = train_continuous(method, budget, long, data, seed)
        rows[method] = {**training, **scores(flow, seed)}
        if METHODS[method][0] == "matching":
            rows[method]["straightness"] = straightness(flow, seed=seed)
            rows[method]["solvers"] = solver_sweep(flow, seed)
        print(f"seed {seed}: {method} {training['epochs']} epochs {training['train_s']:.1f} s, "
              f"KL {rows[method]['kl_to_exact']:.4f}", flush=True)
    return rows


def summarize(per_seed: dict) -> dict:
    """Medians over seeds of each method's headline numbers and of the solver sweep's KL."""
    medians = {}
    for method in METHODS:
        runs = [rows[method] for rows in per_seed.values()]
        keys = [k for k, v in runs[0].items() if isinstance(v, (int, float)) and not isinstance(v, bool)]
        medians[method] = {k: statistics.median(r[k] for r in runs if r[k] is not None) for k in keys
                           if all(r[k] is not None for r in runs)}
        if "solvers" in runs[0]:
            medians[method]["solvers"] = {name: {k: statistics.median(r["solvers"][name][k] for r in runs)
                                                 for k in ("kl_to_exact", "energy_distance", "sample_s")}
                                          for name in runs[0]["solvers"]}
    return medians


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=80, help="the MAF's epochs (its time is the budget)")
    parser.add_argument("--long", type=float, default=4.0, help="the long OT run's budget, in MAF budgets")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/continuous.json"))
    parser.add_argument("--notebook-data", type=Path, default=None, help="also write the JSON here")
    args = parser.parse_args()
    per_seed = {}
    for seed in args.seeds:
        per_seed[str(seed)] = run_seed(seed, args.epochs, args.long)
        result = {"entropy": moons_entropy(0.05), "exact_gap_disc_mass": gap_disc_mass(flowlab.moons_log_prob),
                  "seeds": list(per_seed), "per_seed": per_seed, "medians": summarize(per_seed),
                  "loadavg": os.getloadavg(), "command": "python benchmarks/bench_continuous.py "
                  f"--seeds {' '.join(map(str, args.seeds))} --epochs {args.epochs} --long {args.long:g}"}
        for path in filter(None, (args.out, args.notebook_data)):
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result["medians"], indent=1))


if __name__ == "__main__":
    main()
