"""A VAE, a GAN and flows trained on the same moons and scored the same way against the truth.

Every model trains on the same 10,000 points (the flow fitted by reverse KL draws its own
points from itself and scores them with the exact density: it sees no data) for the same number
of epochs, and is scored on 10,000 of its own samples with :func:`flowlab.measure.sample_metrics`.
Where a model has a likelihood it is scored on held-out points too: a flow's exact held-out NLL
(:func:`flowlab.measure.evaluate`), a VAE's upper bounds on it
(:func:`flowlab.measure.likelihood_bounds`); a GAN has none (its density is intractable).

A model is one entry of :data:`MODELS`: a trainer (seed, data, settings -> the trained model) and
a scorer of its likelihood. Adding one is one function and one registration.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from flowlab import _validate
from flowlab.data import make_moons, moons_entropy
from flowlab.train import TrainingDiverged, TrainSettings

__all__ = ["Model", "MODELS", "Trained", "train_model", "score_model", "compare_seed", "summarize",
           "HEADLINE", "compare"]

Scores = dict[str, Any]


@dataclass(frozen=True)
class Model:
    """A model of the comparison: how it trains and what likelihood it reports."""

    label: str
    train: Callable[[np.ndarray, TrainSettings, bool], Any]  # (data, settings, progress) -> model
    likelihood: Callable[[Any, float], Scores]  # (model, noise) -> heldout_nll / nll_upper_bound ...


def _train_vae(data: np.ndarray, settings: TrainSettings, progress: bool, prior: bool = False) -> Any:
    from flowlab.flows import FlowConfig, make_flow
    from flowlab.studies.vae import VAE, fit_vae

    flow_prior = make_flow(FlowConfig(num_layers=2, hidden_units=(32, 32), seed=settings.seed)) if prior else None
    vae = VAE(prior=flow_prior, seed=settings.seed)
    fit_vae(vae, data, settings, progress=progress)
    return vae


def _train_gan(data: np.ndarray, settings: TrainSettings, progress: bool) -> Any:
    from flowlab.studies.gan import GAN, GAN_SETTINGS, fit_gan

    gan = GAN(seed=settings.seed)
    fit_gan(gan, data, dataclasses.replace(settings, learning_rate=GAN_SETTINGS.learning_rate), progress=progress)
    return gan


def _train_flow(data: np.ndarray, settings: TrainSettings, progress: bool) -> Any:
    from flowlab.flows import FlowConfig, make_flow
    from flowlab.train import fit

    flow = make_flow(FlowConfig(seed=settings.seed))
    fit(flow, data, settings, progress=progress)
    return flow


def _train_reverse_kl(data: np.ndarray, settings: TrainSettings, progress: bool) -> Any:
    from flowlab.flows import make_flow
    from flowlab.studies.reverse_kl import REVERSE_KL_CONFIG, fit_reverse_kl

    flow = make_flow(dataclasses.replace(REVERSE_KL_CONFIG, seed=settings.seed))
    return fit_reverse_kl(flow, settings, n_points=len(data), progress=progress)[0]


def _flow_likelihood(flow: Any, noise: float) -> Scores:
    from flowlab.measure import evaluate

    scores = evaluate(flow, noise=noise)
    return {"heldout_nll": scores["heldout_nll"], "kl_to_exact": scores["kl_to_exact"], "nll_upper_bound": None}


def _vae_likelihood(vae: Any, noise: float) -> Scores:
    from flowlab.measure import likelihood_bounds

    bounds = likelihood_bounds(vae, noise=noise)
    return {"heldout_nll": None, "nll_upper_bound": bounds["nll_upper_bound"],
            "kl_upper_bound": bounds["kl_upper_bound"], "neg_elbo": bounds["neg_elbo"],
            **{key: value for key, value in bounds.items() if key.startswith("iwae_") and not key.endswith("_se")}}


def _no_likelihood(model: Any, noise: float) -> Scores:
    """A GAN's density is the pushforward of its noise through a network that is not invertible:
    no tractable value, so no held-out NLL and no bound."""
    return {"heldout_nll": None, "nll_upper_bound": None}


#: The models compared, by the name ``flowlab compare`` reports them under.
MODELS: dict[str, Model] = {
    "vae": Model("VAE (unit Gaussian prior)", _train_vae, _vae_likelihood),
    "vae_flow_prior": Model("VAE with a flow prior", lambda d, s, p: _train_vae(d, s, p, prior=True),
                            _vae_likelihood),
    "gan": Model("GAN", _train_gan, _no_likelihood),
    "flow": Model("flow, maximum likelihood (forward KL)", _train_flow, _flow_likelihood),
    "flow_reverse_kl": Model("flow fitted by reverse KL", _train_reverse_kl, _flow_likelihood),
}

#: The numbers every model reports (None where it has no such number).
HEADLINE = ("sample_log_p_true", "energy_distance", "gap_disc_fraction", "min_arc_ratio", "train_seconds",
            "heldout_nll", "nll_upper_bound")


@dataclass
class Trained:
    """A trained model (None if training diverged) and how long it took."""

    name: str
    model: Any
    train_seconds: float
    diverged: str | None = None

    def sample(self, n: int, seed: int) -> np.ndarray:
        """``n`` samples of the trained model, whatever its kind."""
        if hasattr(self.model, "log_prob"):  # a flow: a TFP distribution
            return self.model.sample(n, seed=seed).numpy()
        return self.model.sample(n, seed=seed)

    def parameters(self) -> int | None:
        """How many trainable numbers training adjusted (None if it diverged): for a VAE its
        encoder, decoder and any flow prior; for a GAN its generator and discriminator (sampling
        needs only the generator: ``model.generator.count_params()``); for a flow, its networks.

        Example:
            >>> from flowlab.flows import FlowConfig, make_flow
            >>> Trained("flow", make_flow(FlowConfig(num_layers=1, hidden_units=(4,))), 0.0).parameters()
            32
        """
        if self.model is None:
            return None
        if hasattr(self.model, "log_prob"):  # a flow: its networks are built on first use
            from flowlab.measure import parameter_count

            return parameter_count(self.model)
        return int(sum(int(np.prod(v.shape)) for v in self.model.trainable_variables))


def train_model(name: str, data: np.ndarray, settings: TrainSettings, progress: bool = False) -> Trained:
    """Train :data:`MODELS`'s ``name`` on ``data``; a run whose loss turns NaN is returned with
    ``diverged`` set (counted as a failure), not raised."""
    name = _validate.one_of("name", name, tuple(MODELS))
    start = time.perf_counter()
    try:
        model = MODELS[name].train(data, settings, progress)
    except TrainingDiverged as error:
        return Trained(name, None, time.perf_counter() - start, diverged=str(error))
    return Trained(name, model, time.perf_counter() - start)


def score_model(trained: Trained, noise: float = 0.05, seed: int = 0, n_samples: int = 10_000) -> Scores:
    """The sample metrics of ``n_samples`` of the model's samples, its likelihood scores, its
    training seconds, its size (``parameters``: :meth:`Trained.parameters`) and its failure flags
    (``diverged``, ``mode_collapse``)."""
    from flowlab.measure import sample_metrics

    scores: Scores = {"train_seconds": trained.train_seconds, "diverged": trained.diverged is not None,
                      "parameters": trained.parameters()}
    if trained.diverged is not None:
        return {**scores, **{key: None for key in HEADLINE if key != "train_seconds"}, "mode_collapse": None}
    samples = trained.sample(n_samples, seed)
    if not np.all(np.isfinite(samples)):
        return {**scores, "diverged": True, **{key: None for key in HEADLINE if key != "train_seconds"},
                "mode_collapse": None}
    scores.update(sample_metrics(samples, noise=noise, seed=seed + 7))
    scores.update(MODELS[trained.name].likelihood(trained.model, noise))
    return scores


def compare_seed(seed: int, epochs: int = 80, n_samples: int = 10_000, noise: float = 0.05,
                 models: Sequence[str] = tuple(MODELS), progress: bool = False,
                 keep: bool = False) -> tuple[dict[str, Scores], dict[str, Trained]]:
    """Train and score ``models`` on one seed's data; returns the scores by model and, with
    ``keep``, the trained models (for figures)."""
    settings = TrainSettings(epochs=epochs, seed=seed)
    data = make_moons(n_samples, noise=noise, seed=seed)
    scores, trained = {}, {}
    for name in models:
        if progress:
            print(f"seed {seed}: training {name} ...", flush=True)
        result = train_model(name, data, settings, progress=False)
        scores[name] = score_model(result, noise=noise, seed=seed)
        if keep:
            trained[name] = result
    return scores, trained


def _spread(values: list[float]) -> dict[str, float | None]:
    finite = [v for v in values if v is not None and math.isfinite(v)]
    if not finite:
        return {"mean": None, "std": None, "min": None, "max": None}
    return {"mean": statistics.fmean(finite), "std": statistics.stdev(finite) if len(finite) > 1 else 0.0,
            "min": min(finite), "max": max(finite)}


def summarize(per_seed: Mapping[int, Mapping[str, Scores]], noise: float = 0.05) -> dict[str, Any]:
    """``flowlab compare``'s JSON: the entropy and, per model, each headline number's mean over
    the seeds (None where the model has none), its spread (``spread``: mean, std, min, max), the
    failures counted (``diverged``, ``mode_collapse``) and every seed's scores (``per_seed``)."""
    names = list(next(iter(per_seed.values())))
    models: dict[str, Any] = {}
    for name in names:
        runs = [scores[name] for scores in per_seed.values()]
        spread = {key: _spread([run.get(key) for run in runs]) for key in HEADLINE}
        models[name] = {**{key: spread[key]["mean"] for key in HEADLINE}, "spread": spread,
                        "diverged": sum(bool(run["diverged"]) for run in runs),
                        "mode_collapse": sum(bool(run.get("mode_collapse")) for run in runs),
                        "per_seed": {str(seed): scores[name] for seed, scores in per_seed.items()}}
    return {"entropy": moons_entropy(noise), "noise": noise, "seeds": [int(s) for s in per_seed],
            "models": models}


def compare(seeds: Sequence[int] = (0,), epochs: int = 80, n_samples: int = 10_000, noise: float = 0.05,
            models: Sequence[str] = tuple(MODELS), progress: bool = False) -> dict[str, Any]:
    """Train and score every model on every seed; the :func:`summarize` JSON."""
    per_seed = {seed: compare_seed(seed, epochs, n_samples, noise, models, progress)[0] for seed in seeds}
    return summarize(per_seed, noise)
