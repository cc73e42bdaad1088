"""The lab's training as students write it, over many seeds, with one lever changed at a time.

Each run replays the lab notebook's path: ``tf.keras.utils.set_random_seed(seed)``, 10,000 moons from
scikit-learn, the chain of 3 x [MAF(128, 128, relu) + Permute] built from TFP's unseeded
``AutoregressiveNetwork``, the functional Keras model ``Model(x, td.log_prob(x))``, Adam on
``flowlab.train.learning_rate_schedule`` and ``model.fit`` on the NumPy arrays. Recipes:

- ``lab``: the notebook as it stood at issue 34 (batches of 128, peak 3e-3, one epoch of warm-up);
- ``warm10``: the same, warming up over the first eighth of the epochs (10 of 80) as ``flowlab.train``;
- ``bounded``: ``lab`` with the log-scales soft-bounded as ``flowlab.flows`` does (3 tanh(s / 3)),
  by wrapping each network in ``flowlab.flows.SoftClampedLogScale`` as the notebook does since issue 34;
- ``stream``: ``lab`` fed by ``flowlab.train.batch_stream`` (full batches only, stateless shuffle);
- ``sheet``: the sheet's literal settings (Adam's constant 1e-3, Keras' default batches of 32).

- ``flowinit``: the chain built by ``flowlab.flows.maf_chain(seed=seed)`` (the same layers and bound,
  flowlab's seeded Glorot initializers) instead of the lab's unseeded networks;
- ``reseed``: seeded as the notebook is since issue 34: ``set_random_seed(seed)`` again right before
  the data are drawn, before the chain's weights are made (built at once) and before ``fit``; the
  notebook's own run is seed 0 of ``bounded+reseed+warm10``.

Levers combine with ``+``: ``bounded+warm10+stream`` is the lab's path with flowlab's training recipe.

Scores are ``flowlab.evaluate`` (held-out NLL and KL to the exact density on 100,000 fresh points).

    python benchmarks/bench_lab_recipe.py --recipes lab warm10 --seeds 0 1 2 3 4 5 6 7 8 9 \
        --out benchmarks/results/lab_recipe.jsonl
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import flowlab  # before TensorFlow: Keras 2
import numpy as np
import sklearn.datasets as datasets
import tensorflow as tf
import tensorflow_probability as tfp

from flowlab.flows import SoftClampedLogScale, maf_chain
from flowlab.train import TrainSettings, batch_stream, learning_rate_schedule

tfd, tfb = tfp.distributions, tfp.bijectors
EPOCHS, BATCH, PEAK, N = 80, 128, 3e-3, 10_000


def lab_flow(bound: float | None) -> tfd.TransformedDistribution:
    """The lab's chain, unseeded initializers (the global seed decides); log-scales soft-bounded to
    ``(-bound, bound)`` unless ``bound`` is None."""
    bijectors = []
    for _ in range(3):
        anet = tfb.AutoregressiveNetwork(params=2, hidden_units=[128, 128], activation="relu")
        network = anet if bound is None else SoftClampedLogScale(anet, bound=bound)
        bijectors += [tfb.MaskedAutoregressiveFlow(network), tfb.Permute([1, 0])]
    return tfd.TransformedDistribution(tfd.MultivariateNormalDiag(loc=[0.0, 0.0]), tfb.Chain(bijectors))


LEVERS = ("lab", "warm10", "bounded", "stream", "sheet", "reseed", "flowinit")
# levers with a value, ``name=value``: the batch size, the peak rate, the warm-up epochs, the bound on
# the log-scales (implies ``bounded``) and Adam's gradient-norm clip
VALUED = {"batch": int, "peak": float, "warm": int, "bound": float, "clip": float}


def levers(recipe: str) -> set[str]:
    """The levers of a recipe name such as ``bounded+warm10`` or ``bounded+batch=64``."""
    chosen = set(recipe.split("+"))
    for lever in chosen:
        name, _, value = lever.partition("=")
        if (not value and name not in LEVERS) or (value and name not in VALUED):
            raise argparse.ArgumentTypeError(
                f"recipe levers must be among {', '.join(LEVERS)} or name=value with name among "
                f"{', '.join(VALUED)}, got {lever!r} in {recipe!r}")
        if value:
            VALUED[name](value)  # refuses a value of the wrong type
    return chosen


def valued(chosen: set[str], name: str, default):
    """The value of lever ``name`` in ``chosen`` (``batch=64`` -> 64), else ``default``."""
    for lever in chosen:
        key, _, value = lever.partition("=")
        if key == name and value:
            return VALUED[name](value)
    return default


def train(recipe: str, seed: int) -> tuple[tfd.Distribution, float, float]:
    """Train one recipe from ``seed``; return the flow, its seconds and its final loss."""
    chosen = levers(recipe)
    tf.keras.utils.set_random_seed(seed)
    data = datasets.make_moons(N, noise=0.05)[0].astype(np.float32)
    if "reseed" in chosen:
        tf.keras.utils.set_random_seed(seed)
    bounded = "bounded" in chosen or valued(chosen, "bound", None) is not None
    td = lab_flow(bound=valued(chosen, "bound", 3.0) if bounded else None)
    if "flowinit" in chosen:  # flowlab's own chain: the same layers, its seeded initializers
        td = tfd.TransformedDistribution(tfd.MultivariateNormalDiag(loc=[0.0, 0.0]), maf_chain(seed=seed))
    if "reseed" in chosen:
        td.log_prob(tf.zeros((1, 2)))  # the weights drawn now
    x = tf.keras.Input(shape=(2,), dtype=tf.float32)
    model = tf.keras.Model(x, td.log_prob(x))
    batch = 32 if "sheet" in chosen else valued(chosen, "batch", BATCH)
    steps_per_epoch = N // batch if "stream" in chosen else int(np.ceil(N / batch))
    steps = EPOCHS * steps_per_epoch
    warm_epochs = valued(chosen, "warm", EPOCHS // 8 if "warm10" in chosen else 1)
    warmup = warm_epochs * steps // EPOCHS
    peak = valued(chosen, "peak", PEAK)
    rate = 1e-3 if "sheet" in chosen else learning_rate_schedule(peak, total_steps=steps, warmup_steps=warmup)
    clip = valued(chosen, "clip", None)
    optimizer = tf.keras.optimizers.Adam(rate) if clip is None else tf.keras.optimizers.Adam(rate, global_clipnorm=clip)
    model.compile(optimizer=optimizer, loss=lambda _, lp: -lp, steps_per_execution=20)
    if "reseed" in chosen:
        tf.keras.utils.set_random_seed(seed)
    start = time.perf_counter()
    if "stream" in chosen:
        history = model.fit(batch_stream(data, TrainSettings(seed=seed)), epochs=EPOCHS,
                            steps_per_epoch=steps_per_epoch, verbose=0)
    else:
        history = model.fit(x=data, y=np.zeros(N), epochs=EPOCHS, batch_size=batch, verbose=0)
    return td, time.perf_counter() - start, float(history.history["loss"][-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipes", nargs="+", default=["lab", "warm10"], type=lambda r: "+".join(sorted(levers(r))),
                        help=f"recipes: levers among {', '.join(LEVERS)} joined by '+'")
    parser.add_argument("--seeds", type=int, nargs="+", default=list(range(10)))
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/lab_recipe.jsonl"))
    parser.add_argument("--summary", type=Path, default=None,
                        help="also write every row and the per-recipe summary to this JSON file")
    parser.add_argument("--rows", type=Path, default=None,
                        help="summarize the rows of this JSONL file (from --out) instead of training")
    args = parser.parse_args()
    if args.rows:
        report([json.loads(line) for line in args.rows.read_text().splitlines() if line.strip()], args.summary)
        return
    args.out.parent.mkdir(parents=True, exist_ok=True)
    rows = []
    for i, seed in enumerate(args.seeds):
        for recipe in (args.recipes if i % 2 == 0 else list(reversed(args.recipes))):
            td, seconds, loss = train(recipe, seed)
            scores = flowlab.evaluate(td, noise=0.05, n_samples=100_000)
            row = {"recipe": recipe, "seed": seed, "train_s": seconds, "final_loss": loss,
                   "heldout_nll": scores["heldout_nll"], "kl": scores["kl_to_exact"],
                   "loadavg": os.getloadavg()[0]}
            rows.append(row)
            with args.out.open("a") as out:
                out.write(json.dumps(row) + "\n")
            print(f"{recipe:8s} seed {seed}: KL {row['kl']:.4f}  NLL {row['heldout_nll']:.4f}  "
                  f"loss {loss:.4f}  {seconds:.0f} s", flush=True)
    report(rows, args.summary)


def report(rows: list[dict], path: Path | None) -> None:
    """Print the per-recipe :func:`summarize` of ``rows``; with ``path``, also write it and every row as
    JSON (what the lab's prose and check read)."""
    summary = summarize(rows)
    for recipe, stats in summary.items():
        print(f"{recipe:8s} KL median {stats['median_kl']:.4f}  min {stats['min_kl']:.4f}  "
              f"max {stats['max_kl']:.4f}  above 0.07: {stats['above_0.07']} of {stats['seeds']}")
    if path is not None:
        path.write_text(json.dumps({"command": " ".join(sys.argv), "recipes": summary, "rows": rows},
                                   indent=1) + "\n")
        print(f"wrote {path}")


def summarize(rows: list[dict]) -> dict[str, dict]:
    """Per recipe: seeds, median, min and max KL and held-out NLL, and how many runs are above 0.07.

    Example:
        >>> summarize([{"recipe": "a", "kl": k, "heldout_nll": k + 0.3} for k in (0.1, 0.05, 0.2)])["a"]["median_kl"]
        0.1
    """
    summary = {}
    for recipe in dict.fromkeys(row["recipe"] for row in rows):
        kls = sorted(row["kl"] for row in rows if row["recipe"] == recipe)
        nlls = sorted(row["heldout_nll"] for row in rows if row["recipe"] == recipe)
        summary[recipe] = {"seeds": len(kls), "median_kl": statistics.median(kls), "min_kl": kls[0],
                           "max_kl": kls[-1], "median_nll": statistics.median(nlls),
                           "above_0.07": sum(k > 0.07 for k in kls)}
    return summary


if __name__ == "__main__":
    main()
