"""The VAEs of vae_gan_flow.ipynb on several seeds: their exact NLL, how tight their bounds are,
and how much of the latent they use, with and without KL annealing.

Per seed: the same 10,000 moons and 80 epochs as ``flowlab compare``; three VAEs: the unit-Gaussian
prior with the default KL annealing (a quarter of the epochs), the same with none, and the flow
prior (annealed). Each is scored on the 10,000 held-out points of ``flowlab.measure.likelihood_bounds``:
the ELBO and IWAE bounds (k = 1, 10, 100, 1000), the exact NLL on a 200 x 200 latent grid over
[-6, 6]^2 (``VAE.grid_nll``) with each bound's tightness (bound minus that NLL), and the latent's
use (``VAE.latent_usage``: the KL term per dimension, the activity of each unit, the encoder's
sigma), with the decoder's mean sigma at the encoder's means. Also written: the best NLL of a
model that ignores its latent (one diagonal Gaussian fitted to the held-out points).

    python benchmarks/bench_vae_latent.py --seeds 0 1 2 3 4 --out notebooks/data/vae_latent_5_seeds.json
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import flowlab  # before TensorFlow
import numpy as np
import tensorflow as tf

from flowlab.flows import FlowConfig, make_flow
from flowlab.measure import bound_tightness, heldout_points
from flowlab.train import TrainSettings
from flowlab.studies.vae import ACTIVE_UNIT_THRESHOLD, VAE, fit_vae

#: name -> (flow prior?, KL warm-up epochs: None is fit_vae's default, a quarter)
VARIANTS = {"vae": (False, None), "vae_no_annealing": (False, 0), "vae_flow_prior": (True, None)}
LIM, CELLS = 6.0, 200


def train(variant: str, data: np.ndarray, seed: int, epochs: int) -> tuple[VAE, float]:
    """One VAE of ``variant`` trained as ``flowlab compare`` trains it; and its seconds."""
    flow_prior, warmup = VARIANTS[variant]
    prior = make_flow(FlowConfig(num_layers=2, hidden_units=(32, 32), seed=seed)) if flow_prior else None
    vae = VAE(prior=prior, seed=seed)
    start = time.perf_counter()
    fit_vae(vae, data, TrainSettings(epochs=epochs, seed=seed), progress=False, kl_warmup_epochs=warmup)
    return vae, time.perf_counter() - start


def score(vae: VAE) -> dict[str, object]:
    """Bounds, grid NLL, tightness and the latent's use on the held-out points."""
    out = bound_tightness(vae, lim=LIM, n=CELLS)
    x = heldout_points(n_samples=10_000)
    usage = vae.latent_usage(x)
    mean, _ = vae.encode(tf.constant(x, tf.float32))
    decoder_std = tf.exp(vae.decode(mean)[1]).numpy().mean(axis=0)
    out.update({key: value.tolist() if vae.unit_prior or key != "kl" else None for key, value in usage.items()})
    out.update({"active_units": int((usage["activity"] > ACTIVE_UNIT_THRESHOLD).sum()),
                "kl_total": float(usage["kl"].sum()) if vae.unit_prior else None, "decoder_std": decoder_std.tolist(),
                "parameters": int(sum(int(np.prod(v.shape)) for v in vae.trainable_variables))})
    return out


def diagonal_gaussian_nll() -> float:
    """The NLL of the best diagonal Gaussian on the held-out points (a VAE ignoring its latent)."""
    x = heldout_points(n_samples=10_000)
    return float(0.5 * np.sum(np.log(2 * math.pi * math.e * x.var(axis=0))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--epochs", type=int, default=80)
    parser.add_argument("--out", type=Path, default=Path("notebooks/data/vae_latent_5_seeds.json"))
    args = parser.parse_args()
    runs: dict[str, dict[str, dict]] = {name: {} for name in VARIANTS}
    for seed in args.seeds:
        data = flowlab.make_moons(10_000, noise=0.05, seed=seed)
        for name in VARIANTS:
            vae, seconds = train(name, data, seed, args.epochs)
            runs[name][str(seed)] = {"train_seconds": seconds, **score(vae)}
            r = runs[name][str(seed)]
            print(f"seed {seed} {name:17s} iwae_1000 {r['iwae_1000']:.3f} grid {r['grid_nll']:.3f} "
                  f"tight {r['tightness_1000']:.4f} elbo-tight {r['tightness_elbo']:.3f} kl/dim "
                  f"{np.round(r['kl'], 2)} activity {np.round(r['activity'], 3)} decoder std "
                  f"{np.round(r['decoder_std'], 3)} ({seconds:.0f} s)", flush=True)
    result = {"seeds": args.seeds, "epochs": args.epochs, "grid": {"lim": LIM, "cells_per_side": CELLS},
              "active_unit_threshold": ACTIVE_UNIT_THRESHOLD, "diagonal_gaussian_nll": diagonal_gaussian_nll(),
              "runs": runs}
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
