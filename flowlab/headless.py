"""The lab headless (``flowlab train``, the moons): build a flow, train it on the two moons, score
it against the exact density, and write its metrics, the flow and its figures to a folder. The
command line only parses and prints (:mod:`flowlab.cli.lab`); the digits' run is
:func:`flowlab.studies.digits.lab.run_digits`, the continuous flow's
:func:`flowlab.studies.cnf_lab.run_cnf`."""

from __future__ import annotations

import json
import time
from pathlib import Path

from flowlab.flows import FlowConfig
from flowlab.train import TrainSettings

__all__ = ["run_moons", "write_metrics"]


def write_metrics(out: Path, metrics: dict) -> None:
    """``metrics.json`` in ``out``, indented, as every headless run writes it."""
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")


def run_moons(out: Path, config: FlowConfig, settings: TrainSettings, samples: int, noise: float,
              recorded_settings: dict, progress: bool = True) -> dict:
    """Train ``config``'s flow on ``samples`` moons of ``noise`` (drawn with the config's seed),
    evaluate it, and write metrics.json (``recorded_settings`` under "settings"), the flow (flow/)
    and the figures into ``out``, an existing folder. Returns the metrics; raises
    :class:`flowlab.train.TrainingDiverged` (nothing written) when training diverges."""
    # imported here, on each run, so that a patched flowlab.train.fit or flowlab.flows.make_flow is the one used
    from flowlab.anatomy import DensitySnapshots, snapshot_epochs
    from flowlab.data import make_moons
    from flowlab.flows import make_flow
    from flowlab.io import save_flow
    from flowlab.measure import evaluate
    from flowlab.train import fit

    flow = make_flow(config)
    data = make_moons(samples, noise=noise, seed=config.seed)
    snapshots = DensitySnapshots(flow, snapshot_epochs(settings.epochs), noise=noise)
    start = time.perf_counter()
    history = fit(flow, data, settings, progress=progress, callbacks=[snapshots])
    metrics = {"flow": config.flow, "epochs": settings.epochs, "train_seconds": round(time.perf_counter() - start, 3),
               **evaluate(flow, noise=noise), "final_train_loss": float(history.history["loss"][-1]),
               "settings": recorded_settings}
    write_metrics(out, metrics)
    save_flow(flow, out / "flow")
    _figures(out, config, flow, data, history.history["loss"], snapshots, metrics["entropy"], noise)
    return metrics


def _figures(out, config, flow, data, losses, snapshots, entropy, noise) -> None:  # type: ignore[no-untyped-def]
    """data, density, samples, loss, layers and training PNGs of a moons run, into ``out``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from flowlab import plots
    from flowlab.data import moons_log_prob

    figures = {
        "data.png": lambda: plots.plot_points(data, "Training data: two moons", lim=2.5),
        "density.png": lambda: plots.plot_densities(
            {"learned density": flow, "exact density": lambda x: moons_log_prob(x, noise=noise)},
            lim=2.5, suptitle=f"{config.flow.upper()} after {len(losses)} epochs"),
        "samples.png": lambda: plots.plot_points(flow.sample(len(data), seed=config.seed).numpy(),
                                                 "Samples from the trained flow", lim=2.5),
        "loss.png": lambda: plots.plot_loss(losses, floor=entropy),
        "layers.png": lambda: plots.plot_chain_stages(
            flow, flow.distribution.sample(2000, seed=(config.seed, 1)).numpy()),
        "training.png": lambda: plots.plot_density_snapshots(snapshots.snapshots, entropy=entropy, log=True, columns=3),
    }
    for name, draw in figures.items():
        draw()
        plt.savefig(out / name, dpi=100, bbox_inches="tight")
        plt.close("all")
