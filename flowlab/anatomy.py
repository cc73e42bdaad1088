"""A flow at work: its chain one bijector at a time, and its density as it trains.

:func:`chain_stages` pushes base points through a flow's bijectors in sampling order and
keeps every intermediate set of points; :class:`DensitySnapshots` is a Keras callback that
records the density on a grid, and its held-out NLL, at chosen epochs of one training run.
:mod:`flowlab.plots` draws both.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from flowlab import _validate
from flowlab.data import make_moons
from flowlab.flows import FAMILIES, Flow, density_steps, kind_name
from flowlab.measure import grid

tfd, tfb = tfp.distributions, tfp.bijectors

__all__ = ["Stage", "bijectors_in_sampling_order", "stage_name", "chain_stages", "Snapshot",
           "snapshot_epochs", "DensitySnapshots"]

@dataclass(frozen=True)
class Stage:
    """The points after one step of sampling: ``name`` says which bijector made them."""

    name: str
    points: np.ndarray


def bijectors_in_sampling_order(flow: tfd.TransformedDistribution) -> list[tfb.Bijector]:
    """The flow's bijectors in the order sampling applies them, base to data.

    ``tfb.Chain([b0, b1, b2])`` computes ``b0(b1(b2(z)))``: its list runs right to left.

    Example:
        >>> flow = tfd.TransformedDistribution(tfd.MultivariateNormalDiag(loc=[0.0, 0.0]),
        ...     tfb.Chain([tfb.Shift([1.0, 0.0]), tfb.Scale(2.0)]))
        >>> [stage_name(b) for b in bijectors_in_sampling_order(flow)]
        ['Scale', 'Shift']
    """
    if kind_name(flow) != "TransformedDistribution" and not isinstance(flow, Flow):
        raise TypeError(f"flow must be a tfd.TransformedDistribution, got {type(flow).__name__}")
    return density_steps(flow.bijector)[::-1]  # sampling runs the density direction backwards


def stage_name(bijector: tfb.Bijector) -> str:
    """A short label: ``MAF``, ``Permute [1, 0]``, ``inverse MAF`` (an IAF layer), ..."""
    kind = kind_name(bijector)
    if kind == "Invert":
        inner = stage_name(bijector.bijector)
        return "IAF" if inner == "MAF" else f"inverse {inner}"
    if kind == "Permute":
        return f"Permute {np.asarray(tf.get_static_value(bijector.permutation)).tolist()}"
    return _short_names().get(kind, kind)


def _short_names() -> dict[str, str]:
    """Layer class -> its short name in figures, as the families registered them
    (:data:`flowlab.flows.FAMILIES`), read at each call: a family registered later has its names."""
    return {kind: short for registered in FAMILIES.values() for kind, short in registered.layer_names.items()}


def chain_stages(flow: tfd.TransformedDistribution, z: np.ndarray) -> list[Stage]:
    """Push base points ``z`` through the flow one bijector at a time.

    Returns ``len(bijectors) + 1`` stages: the base points, then the points after each
    bijector in sampling order; the last stage is ``flow.bijector.forward(z)``, a sample.

    Example:
        >>> from flowlab.flows import FlowConfig, make_flow
        >>> flow = make_flow(FlowConfig(num_layers=1, hidden_units=(4,)))
        >>> [s.name for s in chain_stages(flow, np.zeros((3, 2), np.float32))]
        ['base z', 'Permute [1, 0]', 'MAF']
    """
    points = _validate.points("z", z).astype(np.float32)
    stages = [Stage("base z", points)]
    for bijector in bijectors_in_sampling_order(flow):
        points = np.asarray(bijector.forward(points), dtype=np.float32)
        stages.append(Stage(stage_name(bijector), points))
    return stages


@dataclass(frozen=True)
class Snapshot:
    """The density on the grid after ``epoch`` epochs (0: before training), and its held-out NLL."""

    epoch: int
    density: np.ndarray
    heldout_nll: float


def snapshot_epochs(total: int) -> tuple[int, ...]:
    """Epochs worth a snapshot in a run of ``total`` epochs: the start, early ones, the end.

    Example:
        >>> snapshot_epochs(80), snapshot_epochs(3)
        ((0, 1, 5, 20, 80), (0, 1, 3))
    """
    total = _validate.positive_int("total", total)
    return tuple(sorted({e for e in (0, 1, 5, 20) if e < total} | {total}))


class DensitySnapshots(tf.keras.callbacks.Callback):
    """Keras callback: the flow's density on a grid at chosen epochs of one training run.

    Epoch 0 is taken when training begins. Each snapshot also scores the flow's mean
    negative log-likelihood on ``n_heldout`` fresh moons (seeded, never trained on).

    Args:
        flow: the distribution being trained.
        epochs: after how many epochs to take a snapshot (0 = before the first).
        lim, n: the grid (see :func:`flowlab.measure.grid`).
        noise, n_heldout, seed: the held-out moons.
    """

    def __init__(self, flow: tfd.Distribution, epochs: Iterable[int] = (0, 1, 5, 20, 80),
                 lim: float | Sequence[float] = 2.5, n: int = 100, noise: float = 0.05,
                 n_heldout: int = 5_000, seed: int = 777):
        super().__init__()
        self.flow = flow
        self.epochs = sorted({_validate.non_negative_int("epochs", e) for e in epochs})
        if not self.epochs:
            raise ValueError("epochs must name at least one epoch, got none")
        self.xx, self.yy, self._points = grid(lim, n)
        self.lim = lim
        heldout = make_moons(_validate.positive_int("n_heldout", n_heldout), noise=noise, seed=seed)
        # grid and held-out points in one traced call: cheaper than eager calls (benchmarks/README.md)
        self._all_points = tf.constant(np.concatenate([self._points, heldout]), tf.float32)
        self._log_prob = tf.function(flow.log_prob)
        self.snapshots: list[Snapshot] = []

    def _take(self, epoch: int) -> None:
        log_p = np.asarray(self._log_prob(self._all_points), np.float64)
        cells = self.xx.size
        density = np.exp(log_p[:cells]).reshape(self.xx.shape)
        self.snapshots.append(Snapshot(epoch, density, -float(log_p[cells:].mean())))

    def on_train_begin(self, logs=None):
        self.snapshots = []
        if 0 in self.epochs:
            self._take(0)

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 in self.epochs:
            self._take(epoch + 1)
