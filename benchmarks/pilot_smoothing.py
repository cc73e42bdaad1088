"""Pilot of two stall levers (issue 26), patched into flowlab.train for the run: --clip (Adam's
global_clipnorm) and --noise/--noise-epochs (Gaussian noise of std --noise, in data units, added to
each training batch and faded linearly to 0 over the first --noise-epochs epochs). Rows are appended
to benchmarks/results/pilot_smoothing.jsonl; the figures are in benchmarks/README.md."""
import argparse
import json
import time
import flowlab  # before TensorFlow
from pathlib import Path
import tensorflow as tf
from flowlab import train as T
from flowlab.flows import FlowConfig, make_flow
from flowlab.measure import evaluate

p = argparse.ArgumentParser()
p.add_argument("--families", nargs="+", default=["maf", "realnvp"])
p.add_argument("--seeds", type=int, nargs="+", default=list(range(200, 208)))
p.add_argument("--clip", type=float, default=None)
p.add_argument("--noise", type=float, default=0.0)
p.add_argument("--noise-epochs", type=int, default=10)
p.add_argument("--lr", type=float, default=3e-3)
p.add_argument("--warmup", type=int, default=None)
p.add_argument("--beta2", type=float, default=0.999)
p.add_argument("--batch", type=int, default=128)
p.add_argument("--tag", default="x")
a = p.parse_args()

def optimizer(self, n):
    """flowlab's Adam (its warm-up + cosine schedule), with --beta2 and --clip."""
    steps = self.steps_per_epoch(n)
    schedule = T.learning_rate_schedule(self.learning_rate, self.epochs * steps, self.effective_warmup_epochs * steps)
    return tf.keras.optimizers.Adam(schedule, beta_2=a.beta2, global_clipnorm=a.clip)
T.TrainSettings.optimizer = optimizer

orig_stream = T.batch_stream
def batch_stream(data, settings):
    ds = orig_stream(data, settings)
    if not a.noise:
        return ds
    spe = settings.steps_per_epoch(len(data))
    total = a.noise_epochs * spe
    def add(i, xy):
        x, y = xy
        frac = tf.maximum(0.0, 1.0 - tf.cast(i, tf.float32) / total)
        eps = tf.random.stateless_normal(tf.shape(x), seed=tf.stack([settings.seed + 7777, tf.cast(i, tf.int32)]))
        return x + a.noise * frac * eps, y
    return ds.enumerate().map(add)
T.batch_stream = batch_stream

Path("benchmarks/results").mkdir(parents=True, exist_ok=True)
for seed in a.seeds:
    for fam in a.families:
        data = flowlab.make_moons(10_000, seed=seed)
        flow = make_flow(FlowConfig(flow=fam, seed=seed))
        t = time.perf_counter()
        T.fit(flow, data, T.TrainSettings(seed=seed, learning_rate=a.lr, warmup_epochs=a.warmup, batch_size=a.batch), progress=False)
        s = time.perf_counter() - t
        kl = evaluate(flow)["kl_to_exact"]
        row = dict(tag=a.tag, family=fam, seed=seed, kl=kl, train_s=s)
        print(json.dumps(row), flush=True)
        with open("benchmarks/results/pilot_smoothing.jsonl", "a") as f:
            f.write(json.dumps(row) + "\n")
