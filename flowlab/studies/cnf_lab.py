"""The continuous flow headless (``flowlab train --flow cnf``): a continuous flow trained on the
moons by likelihood or flow matching, scored like every flow, with its cost (function
evaluations, seconds per 10,000) and its paths' straightness, written to a folder. The command line
only parses and prints (:mod:`flowlab.cli.lab`)."""

from __future__ import annotations

import time
from pathlib import Path

from flowlab.flows import FlowConfig
from flowlab.headless import write_metrics
from flowlab.train import TrainSettings

__all__ = ["run_cnf"]


def run_cnf(out: Path, config: FlowConfig, settings: TrainSettings, samples: int, noise: float, objective: str,
            ot: bool, recorded_settings: dict, progress: bool = True) -> dict:
    """Train ``config``'s continuous flow (``flow="cnf"``) on ``samples`` moons of ``noise`` by
    ``objective`` (with ``ot`` pairing for matching), evaluate it, and write metrics.json
    (``recorded_settings`` under "settings"), the flow (flow/) and the figures into ``out``, an
    existing folder. Returns the metrics; raises :class:`flowlab.train.TrainingDiverged` (nothing
    written) when training diverges."""
    # imported here, on each run, so that a patched function of these modules is the one used
    from flowlab.data import make_moons
    from flowlab.flows import make_flow
    from flowlab.flows.continuous import function_evaluations
    from flowlab.io import save_flow
    from flowlab.measure import evaluate
    from flowlab.studies.flow_matching import cost, straightness, train_cnf

    flow = make_flow(config)
    data = make_moons(samples, noise=noise, seed=config.seed)
    start, before = time.perf_counter(), function_evaluations(flow)
    history = train_cnf(flow, data, settings, objective, ot, progress=progress)
    metrics = {"flow": "cnf", "objective": objective, "ot": ot, "epochs": settings.epochs,
               "train_seconds": round(time.perf_counter() - start, 3),
               "train_evaluations": function_evaluations(flow) - before, **evaluate(flow, noise=noise),
               "final_train_loss": float(history.history["loss"][-1]), "ode": dict(flow.config.options),
               **{f"{key[:-2]}_10k_s" if key.endswith("_s") else key: value
                  for key, value in cost(flow, 10_000, seed=config.seed).items()},
               **straightness(flow, seed=config.seed), "settings": recorded_settings}
    write_metrics(out, metrics)
    save_flow(flow, out / "flow")
    _figures(out, flow, history.history["loss"], metrics["entropy"], samples, noise, objective, config.seed)
    return metrics


def _figures(out, flow, losses, entropy, samples, noise, objective, seed) -> None:  # type: ignore[no-untyped-def]
    """density, samples, loss and paths PNGs of a continuous flow's run, into ``out``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from flowlab import plots
    from flowlab.data import moons_log_prob
    from flowlab.studies.flow_matching import euler_paths

    figures = {
        "density.png": lambda: plots.plot_densities(
            {"learned density": flow, "exact density": lambda x: moons_log_prob(x, noise=noise)},
            lim=2.5, suptitle=f"Continuous flow ({objective}) after {len(losses)} epochs"),
        "samples.png": lambda: plots.plot_points(flow.sample(samples, seed=seed).numpy(),
                                                 "Samples from the trained flow", lim=2.5),
        "loss.png": lambda: plots.plot_loss(losses, floor=entropy if objective == "likelihood" else None,
                                            loss_name="negative log-likelihood (nats)" if objective == "likelihood"
                                            else "flow-matching loss"),
        "paths.png": lambda: plots.plot_paths(euler_paths(flow, flow.distribution.sample(300, seed=(seed, 1)).numpy(),
                                                          steps=50), "Paths from noise (t = 0) to samples (t = 1)"),
    }
    for name, draw in figures.items():
        draw()
        plt.savefig(out / name, dpi=100, bbox_inches="tight")
        plt.close("all")
