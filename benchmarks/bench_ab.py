"""A/B benchmark: the lab's training (`flowlab train`, the notebook's MAF) at two git refs or trees.

Each seed trains once in each tree, `python -m flowlab train --seed S --json` in a fresh process with
PYTHONPATH set to that tree; the trees take turns going first (A B, B A, A B, ...) so drifting
machine load hits both alike. Prints per seed the `train_seconds` of A and B, their ratio B / A,
both held-out NLLs and whether they are identical bit for bit, then the median ratio. A ref is
checked out into a temporary git worktree (removed afterwards); a folder is used as it is.

    python benchmarks/bench_ab.py fcd32a3 HEAD --seeds 0 1 2 3 --out benchmarks/results/ab.json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Run:
    """One `flowlab train --json` run: its seed, training seconds and held-out NLL and KL."""

    seed: int
    train_seconds: float
    heldout_nll: float
    kl_to_exact: float


@dataclass(frozen=True)
class Pair:
    """The same seed trained in tree A and in tree B."""

    a: Run
    b: Run

    @property
    def ratio(self) -> float:
        """B's training time over A's: above 1, B is slower."""
        return self.b.train_seconds / self.a.train_seconds

    @property
    def identical(self) -> bool:
        """Whether both trees gave the same held-out NLL and KL, bit for bit."""
        return (self.a.heldout_nll, self.a.kl_to_exact) == (self.b.heldout_nll, self.b.kl_to_exact)


def parse_run(seed: int, stdout: str) -> Run:
    """The run `flowlab train --json` reports on the last line of ``stdout``.

    Example:
        >>> parse_run(3, 'epoch 1\\n{"train_seconds": 2.5, "heldout_nll": 0.3, "kl_to_exact": 0.05}\\n')
        Run(seed=3, train_seconds=2.5, heldout_nll=0.3, kl_to_exact=0.05)
    """
    lines = stdout.strip().splitlines()
    if not lines:
        raise ValueError("flowlab train printed nothing")
    metrics = json.loads(lines[-1])
    return Run(seed, float(metrics["train_seconds"]), float(metrics["heldout_nll"]), float(metrics["kl_to_exact"]))


def median_ratio(pairs: Sequence[Pair]) -> float:
    """The median over seeds of B's training time over A's.

    Example:
        >>> runs = [Pair(Run(s, 10.0, 0.3, 0.05), Run(s, t, 0.3, 0.05)) for s, t in enumerate([9.0, 11.0, 12.0])]
        >>> median_ratio(runs)
        1.1
    """
    if not pairs:
        raise ValueError("no pairs to take the median of")
    return statistics.median(pair.ratio for pair in pairs)


def table(pairs: Sequence[Pair], names: tuple[str, str] = ("A", "B")) -> str:
    """The per-seed table: seconds of A and B, B / A, both NLLs, identical?, and the median ratio."""
    a, b = names
    lines = [f"{'seed':>4} {a + ' s':>10} {b + ' s':>10} {'B/A':>6} {a + ' NLL':>20} {b + ' NLL':>20} identical"]
    for pair in pairs:
        lines.append(f"{pair.a.seed:>4} {pair.a.train_seconds:>10.2f} {pair.b.train_seconds:>10.2f} "
                     f"{pair.ratio:>6.3f} {pair.a.heldout_nll:>20.16f} {pair.b.heldout_nll:>20.16f} "
                     f"{'yes' if pair.identical else 'NO'}")
    lines.append(f"median B/A over {len(pairs)} seeds: {median_ratio(pairs):.3f}")
    return "\n".join(lines)


def order(index: int) -> tuple[int, int]:
    """Which tree goes first for the ``index``-th seed: A then B, then B then A, in turn.

    Example:
        >>> [order(i) for i in range(3)]
        [(0, 1), (1, 0), (0, 1)]
    """
    return (0, 1) if index % 2 == 0 else (1, 0)


def train(tree: Path, seed: int, extra: Sequence[str], python: str) -> Run:
    """One `flowlab train --json` of ``tree`` in a fresh process (its output folder temporary)."""
    with tempfile.TemporaryDirectory(prefix="bench_ab_") as out:
        command = [python, "-m", "flowlab", "train", "--seed", str(seed), "--json", "--out", out, *extra]
        env = {**os.environ, "PYTHONPATH": str(tree)}
        done = subprocess.run(command, cwd=tree, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"flowlab train in {tree} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return parse_run(seed, done.stdout)


@contextlib.contextmanager
def checked_out(ref_or_tree: str) -> Iterator[Path]:
    """A folder holding ``ref_or_tree``: the folder itself, or a temporary git worktree of the ref."""
    if Path(ref_or_tree).is_dir():
        yield Path(ref_or_tree).resolve()
        return
    with tempfile.TemporaryDirectory(prefix="bench_ab_tree_") as parent:
        tree = Path(parent) / "tree"
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(tree), ref_or_tree],
                       check=True, capture_output=True)
        try:
            yield tree
        finally:
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(tree)], check=False,
                           capture_output=True)


def imported_from(tree: Path, python: str) -> Path:
    """The folder ``python`` imports flowlab from with PYTHONPATH set to ``tree`` (it must be ``tree``'s)."""
    done = subprocess.run([python, "-c", "import flowlab; print(flowlab.__file__)"], cwd=tree, check=True,
                          env={**os.environ, "PYTHONPATH": str(tree)}, capture_output=True, text=True)
    return Path(done.stdout.strip().splitlines()[-1]).resolve().parent.parent


def compare(trees: tuple[Path, Path], seeds: Sequence[int], extra: Sequence[str], python: str) -> list[Pair]:
    """Train every seed in both trees, the trees taking turns going first; print each pair as it ends."""
    pairs = []
    for index, seed in enumerate(seeds):
        runs: dict[int, Run] = {}
        for which in order(index):
            runs[which] = train(trees[which], seed, extra, python)
        pairs.append(Pair(runs[0], runs[1]))
        print(f"seed {seed}: {pairs[-1].a.train_seconds:.2f} s vs {pairs[-1].b.train_seconds:.2f} s "
              f"({pairs[-1].ratio:.3f})", flush=True)
    return pairs


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("a", help="baseline: a git ref (checked out into a temporary worktree) or a folder")
    parser.add_argument("b", help="candidate: a git ref or a folder")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3])
    parser.add_argument("--epochs", type=int, default=None, help="flowlab train's --epochs (default: its own, 80)")
    parser.add_argument("--python", default=sys.executable, help="the interpreter (a venv with TensorFlow)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/ab.json"))
    args = parser.parse_args(argv)

    extra = ["--epochs", str(args.epochs)] if args.epochs else []
    with checked_out(args.a) as tree_a, checked_out(args.b) as tree_b:
        for tree in (tree_a, tree_b):
            if imported_from(tree, args.python) != tree:
                parser.error(f"{args.python} imports flowlab from {imported_from(tree, args.python)}, not {tree}")
        pairs = compare((tree_a, tree_b), args.seeds, extra, args.python)
    print(f"\nA = {args.a}, B = {args.b}\n{table(pairs)}")
    print(f"load average during run: {os.getloadavg()}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"a": args.a, "b": args.b, "extra": extra, "median_ratio": median_ratio(pairs),
                                    "pairs": [{"a": asdict(p.a), "b": asdict(p.b), "ratio": p.ratio,
                                               "identical": p.identical} for p in pairs],
                                    "loadavg": os.getloadavg()}, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
