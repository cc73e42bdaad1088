"""A latent-variable model's likelihood, bounded: the ELBO's and the importance-weighted bounds on
its held-out NLL, and the KL from the truth they imply (:func:`likelihood_bounds`), and how tight
each bound is against the model's NLL summed on a latent grid (:func:`bound_tightness`). Scored on
the very points :func:`flowlab.measure.evaluate` scores flows on
(:func:`flowlab.data.heldout_points`). :mod:`flowlab.measure` exports these names too.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from flowlab import _validate
from flowlab.data import heldout_points, monte_carlo_mean, moons_log_prob

__all__ = ["IWAE_KS", "likelihood_bounds", "bound_tightness"]

#: The numbers of importance samples :func:`likelihood_bounds` reports by default.
IWAE_KS = (1, 10, 100, 1000)


def likelihood_bounds(model: object, noise: float = 0.05, n_samples: int = 10_000, seed: int = 2024,
                      ks: Sequence[int] = IWAE_KS, bound_seed: int = 0) -> dict[str, float]:
    """Upper bounds on a latent-variable model's held-out NLL (e.g. a :class:`flowlab.studies.vae.VAE`:
    anything with ``elbo(x, seed)`` and ``iwae_bound(x, k, seed)``), on the points
    :func:`flowlab.measure.evaluate` uses (``heldout_points(noise, n_samples, seed)``), and the upper bounds on
    the KL divergence from the truth they imply (bound minus the exact NLL, point by point).

    Keys (each mean has a ``*_se``, its standard error): ``neg_elbo`` (the mean negative ELBO),
    ``iwae_{k}`` for each k, ``kl_upper_bound_elbo`` and ``kl_upper_bound_{k}``, ``entropy`` (the
    exact mean NLL on the same points: no bound may fall below it, beyond noise),
    ``nll_upper_bound`` and ``kl_upper_bound`` (the largest k's), ``n_samples``. In nats. The
    default 10,000 points (not evaluate's 100,000) keep k = 1000 to seconds.
    """
    if not (callable(getattr(model, "iwae_bound", None)) and callable(getattr(model, "elbo", None))):
        raise ValueError(f"model must have elbo(x, seed) and iwae_bound(x, k, seed) methods (e.g. a "
                         f"flowlab.vae.VAE), got {type(model).__name__}")
    n_samples = _validate.positive_int("n_samples", n_samples)
    if isinstance(ks, (str, bytes)) or not isinstance(ks, Sequence) or not ks:
        raise ValueError(f"ks must be a non-empty list of positive integers, got {ks!r}")
    ks = [_validate.positive_int(f"ks[{i}]", k) for i, k in enumerate(ks)]
    x = heldout_points(noise, n_samples, seed)
    log_p = moons_log_prob(x, noise=noise)
    entropy = monte_carlo_mean(-log_p)
    out: dict[str, float] = {"entropy": entropy.mean, "entropy_se": entropy.standard_error,
                             "n_samples": n_samples}

    def record(name: str, kl_name: str, bound: np.ndarray) -> None:
        mean, kl = monte_carlo_mean(bound), monte_carlo_mean(bound + log_p)
        out.update({name: mean.mean, f"{name}_se": mean.standard_error,
                    kl_name: kl.mean, f"{kl_name}_se": kl.standard_error})

    record("neg_elbo", "kl_upper_bound_elbo", -np.asarray(model.elbo(x, seed=bound_seed)))
    for k in ks:
        record(f"iwae_{k}", f"kl_upper_bound_{k}", np.asarray(model.iwae_bound(x, k=k, seed=bound_seed)))
    out["nll_upper_bound"] = out[f"iwae_{max(ks)}"]
    out["kl_upper_bound"] = out[f"kl_upper_bound_{max(ks)}"]
    return out


def bound_tightness(model: object, noise: float = 0.05, n_samples: int = 10_000, seed: int = 2024,
                    ks: Sequence[int] = IWAE_KS, lim: float = 6.0, n: int = 200) -> dict[str, float]:
    """:func:`likelihood_bounds` and the model's exact NLL on the same held-out points, summed on
    a latent grid (``model.grid_nll(x, lim, n)``, e.g. a :class:`flowlab.studies.vae.VAE`), with each
    bound's tightness: the bound minus that NLL (``tightness_elbo``, ``tightness_{k}``), in nats.
    Adds ``grid_nll`` (and ``grid_nll_se``), ``grid_kl`` (its KL from the truth: grid NLL minus
    the entropy on the same points) and ``grid_prior_mass`` (the prior's mass on the grid).

    Example:
        >>> from flowlab.studies.vae import VAE
        >>> out = bound_tightness(VAE(hidden_units=(8,)), n_samples=50, ks=(1, 10), n=50)
        >>> sorted(key for key in out if key.startswith("tightness"))
        ['tightness_1', 'tightness_10', 'tightness_elbo']
    """
    if not callable(getattr(model, "grid_nll", None)):
        raise ValueError(f"model must have a grid_nll(x, lim, n) method (e.g. a flowlab.vae.VAE), "
                         f"got {type(model).__name__}")
    out = likelihood_bounds(model, noise=noise, n_samples=n_samples, seed=seed, ks=ks)
    nll = monte_carlo_mean(np.asarray(model.grid_nll(heldout_points(noise, n_samples, seed), lim=lim, n=n)))
    out.update({"grid_nll": nll.mean, "grid_nll_se": nll.standard_error, "grid_kl": nll.mean - out["entropy"],
                "grid_prior_mass": float(model.grid_prior_mass(lim=lim, n=n)),
                "tightness_elbo": out["neg_elbo"] - nll.mean})
    out.update({f"tightness_{k}": out[f"iwae_{k}"] - nll.mean for k in ks})
    return out
