"""The lab's sub-commands of ``flowlab``: ``train`` (a flow on the moons, or with ``--data digits``
a multi-scale flow on 8x8 digits), ``compare`` (VAE, GAN and flows side by side) and ``notebooks``
(the lab's notebooks copied out of the package). Their options are added, and TensorFlow imported,
only when the command is parsed. The runs are library functions (:func:`flowlab.headless.run_moons`,
:func:`flowlab.studies.cnf_lab.run_cnf`, :func:`flowlab.studies.digits.lab.run_digits`): this module
parses, checks and prints."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from flowlab.cli._common import counts, fail, hidden_units, usable_folder
from flowlab._validate import LIMITS, Range

__all__ = ["add_commands"]

#: ``train``'s options that only the moons use, and their defaults (None in the parser, so that
#: an option given with ``--data digits`` is noticed).
MOONS_ONLY = {"flow": "maf", "layers": 3, "hidden_units": (128, 128), "activation": "relu", "samples": 10_000,
              "noise": 0.05}
#: ``train``'s options that only the continuous flow (``--flow cnf``) takes; None: not given.
CNF_ONLY = ("objective", "ot", "solver", "rtol", "atol", "steps", "trace")
#: Training images of the digits' default split (flowlab.studies.digits.data.load_digit_splits).
DIGITS_TRAINING_IMAGES = 1350
#: ``train``'s options that only the digits use.
DIGITS_ONLY = {"image_flow": "multiscale", "dequantization": "variational", "couplings": None,
               "hidden_channels": None}


def add_commands(commands: argparse._SubParsersAction) -> None:
    """Add ``train``, ``compare`` and ``notebooks`` to ``flowlab``'s sub-commands."""
    train = commands.add_parser(
        "train", help="train a flow on the two moons (or on 8x8 digits), evaluate it and save figures",
        description="Train a flow on two-moons data, evaluate it on 100,000 fresh points against the exact "
                    "density, and write metrics, figures and the flow to --out. With --data digits: train a "
                    "multi-scale flow on scikit-learn's 8x8 digits and score it in bits per dimension against "
                    "baselines measured in the same run.",
        add_arguments=_add_train_arguments)
    train.set_defaults(handler=_train)
    compare = commands.add_parser(
        "compare", help="train a VAE, a GAN and flows on the same moons and score them against the truth",
        description="Train every model of flowlab.compare (VAE, VAE with a flow prior, GAN, flow by maximum "
                    "likelihood, flow by reverse KL) on the same data for each seed, score each on its "
                    "samples and, where it has one, its likelihood; write compare.json and figures to --out.",
        add_arguments=_add_compare_arguments)
    compare.set_defaults(handler=_compare)
    notebooks = commands.add_parser(
        "notebooks", help="copy the lab's notebooks (the hand-out and the ones it points to) into a folder",
        description="Copy the hand-out (normalizing_flows_student.ipynb), flow_families.ipynb, vae_gan_flow.ipynb "
                    "and image_flows.ipynb, with the stored results they read (data/), out of the installed "
                    "flowlab into DIR, so that a student who installed only the wheel can open them.",
        add_arguments=_add_notebooks_arguments)
    notebooks.set_defaults(handler=_notebooks)


def _add_train_arguments(train: argparse.ArgumentParser) -> None:
    """``flowlab train``'s options; their defaults come from flowlab.flows, flowlab.studies.digits.flows and
    flowlab.train."""
    train.add_argument("--data", choices=("moons", "digits"), default="moons",
                       help="moons (the lab) or digits (8x8 images, the further reading) (default: moons)")
    _add_moons_arguments(train)
    _add_cnf_arguments(train)
    _add_digits_arguments(train)
    train.add_argument("--epochs", type=LIMITS["epochs"].parse, default=None,
                       help="training epochs (default: 80 on the moons, 60 on the digits)")
    train.add_argument("--batch-size", type=LIMITS["batch_size"].parse, default=None,
                       help="mini-batch size, at most the training points (default: 128)")
    train.add_argument("--learning-rate", type=LIMITS["learning_rate"].parse, default=None,
                       help="peak Adam learning rate (default: 0.003)")
    train.add_argument("--seed", type=LIMITS["seed"].parse, default=0,
                       help="random seed (default: 0; on the digits it also draws the split)")
    train.add_argument("--out", type=Path, default=Path("flowlab-run"),
                       help="output folder, created if missing (default: flowlab-run)")
    train.add_argument("--json", action="store_true",
                       help="print the metrics as one JSON object on the last line of stdout")


def _add_moons_arguments(train: argparse.ArgumentParser) -> None:
    from flowlab.flows import ACTIVATIONS, FLOWS

    moons = train.add_argument_group("the moons (--data moons)")
    moons.add_argument("--flow", choices=FLOWS, default=None, help="flow family (default: maf)")
    moons.add_argument("--layers", type=LIMITS["layers"].parse, default=None,
                       help="number of [flow layer + Permute] blocks (default: 3)")
    moons.add_argument("--hidden-units", type=hidden_units, default=None,
                       help="hidden layer sizes of each network, comma-separated (default: 128,128)")
    moons.add_argument("--activation", choices=ACTIVATIONS, default=None, help="hidden activation (default: relu)")
    for name, owners in _offered_options().items():  # the families' own options, each flag once
        first = owners[0]
        moons.add_argument(f"--{name.replace('_', '-')}", type=LIMITS[name].parse, default=None,
                           help=f"{first.cli[name]}; {_flows(owners)} only (default: {first.options[name]:g})")
    moons.add_argument("--samples", type=LIMITS["samples"].parse, default=None,
                       help="training points (default: 10000)")
    moons.add_argument("--noise", type=LIMITS["noise"].parse, default=None, help="moons noise std (default: 0.05)")


def _add_cnf_arguments(train: argparse.ArgumentParser) -> None:
    from flowlab.flows.continuous import CNF_OPTIONS, SOLVERS, TRACES
    from flowlab.studies.flow_matching import CNF_CONFIG, OBJECTIVES

    cnf = train.add_argument_group(
        "the continuous flow (--flow cnf; its defaults: --layers 1, --hidden-units "
        f"{','.join(map(str, CNF_CONFIG.hidden_units))}, --activation {CNF_CONFIG.activation})")
    cnf.add_argument("--objective", choices=OBJECTIVES, default=None,
                     help="maximum likelihood through the ODE, or conditional flow matching (default: matching)")
    cnf.add_argument("--ot", action="store_const", const=True, default=None,
                     help="pair each batch's noise with its data by optimal transport (matching only)")
    cnf.add_argument("--solver", choices=SOLVERS, default=None,
                     help=f"ODE solver: adaptive Dormand-Prince or fixed-step Euler (default: {CNF_OPTIONS['solver']})")
    for name in ("rtol", "atol"):
        cnf.add_argument(f"--{name}", type=LIMITS["ode_tolerance"].parse, default=None,
                         help=f"Dormand-Prince's {'relative' if name == 'rtol' else 'absolute'} tolerance "
                              f"(default: {CNF_OPTIONS[name]:g})")
    cnf.add_argument("--steps", type=LIMITS["ode_steps"].parse, default=None,
                     help=f"Euler steps (--solver euler only; default: {CNF_OPTIONS['steps']})")
    cnf.add_argument("--trace", choices=TRACES, default=None,
                     help=f"the Jacobian's trace, exact or Hutchinson's estimate (default: {CNF_OPTIONS['trace']})")


def _add_digits_arguments(train: argparse.ArgumentParser) -> None:
    from flowlab.studies.digits.flows import ImageFlowConfig

    # the class's field defaults, not an instance: ImageFlowConfig() validates by building a whole
    # digits flow (12 couplings, 36 convolutions), which every `flowlab train` paid for (issue 39)
    default = ImageFlowConfig
    digits = train.add_argument_group("the digits (--data digits)")
    digits.add_argument("--image-flow", choices=("multiscale", "flat"), default=None,
                        help="multi-scale (squeeze and split) or one scale, the same couplings (default: multiscale)")
    digits.add_argument("--dequantization", choices=("uniform", "variational"), default=None,
                        help="noise that makes the pixels continuous (default: variational)")
    digits.add_argument("--couplings", type=counts("couplings", 3), default=None,
                        help="coupling layers at 8x8x1, 4x4x4 and 4x4x2, comma-separated "
                             f"(default: {','.join(map(str, default.couplings))})")
    digits.add_argument("--hidden-channels", type=LIMITS["hidden_channels"].parse, default=None,
                        help=f"channels of each coupling's convolutions (default: {default.hidden_channels})")


def _add_compare_arguments(compare: argparse.ArgumentParser) -> None:
    """``flowlab compare``'s options; the models come from flowlab.studies.compare's registry."""
    from flowlab.studies.compare import MODELS

    compare.add_argument("--seeds", type=LIMITS["seed"].parse, nargs="+", default=[0],
                         help="seeds to train every model with (default: 0); 5 seeds take about 8 minutes")
    compare.add_argument("--epochs", type=LIMITS["epochs"].parse, default=80,
                         help="training epochs of every model (default: 80)")
    compare.add_argument("--samples", type=Range(1_000, LIMITS["samples"].high, integer=True).parse, default=10_000,
                         help="training points (default: 10000)")
    compare.add_argument("--noise", type=LIMITS["noise"].parse, default=0.05,
                         help="moons noise std (default: 0.05)")
    compare.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS),
                         help="models to compare (default: all)")
    compare.add_argument("--out", type=Path, default=Path("flowlab-compare"),
                         help="output folder, created if missing (default: flowlab-compare)")
    compare.add_argument("--json", action="store_true",
                         help="print the summary as one JSON object on the last line of stdout")


def _add_notebooks_arguments(notebooks: argparse.ArgumentParser) -> None:
    notebooks.add_argument("dir", type=Path, metavar="DIR", help="folder to copy them into, created if missing")
    notebooks.add_argument("--force", action="store_true", help="overwrite files of the same names in DIR")


def _notebooks(args: argparse.Namespace) -> int:
    """``flowlab notebooks DIR``: the lab's notebooks copied out of the package, never over a file unasked."""
    from flowlab.grader.lab_notebooks import HANDOUT, copy_notebooks, existing

    if args.dir.exists() and not args.dir.is_dir():
        return fail("notebooks", f"argument DIR: {str(args.dir)!r} is a file, not a folder")
    clash = existing(args.dir)
    if clash and not args.force:
        return fail("notebooks", f"argument DIR: {str(args.dir)!r} already holds {', '.join(clash)}; pass --force "
                                 "to overwrite them, or name another folder")
    problem = usable_folder(args.dir)
    if problem is not None:
        return fail("notebooks", f"argument DIR: cannot write to the folder {str(args.dir)!r}: {problem}")
    try:
        written = copy_notebooks(args.dir, force=args.force)
    except FileNotFoundError as error:
        return fail("notebooks", str(error), status=1)
    print(f"copied {len(written)} files to {args.dir}/: " + ", ".join(p.relative_to(args.dir).as_posix() for p in written))
    print(f"open {args.dir / HANDOUT} (the lab) or the others there; keep data/ next to them")
    return 0


def _train(args: argparse.Namespace) -> int:
    """``flowlab train``: the options of the other data set are refused, then the run."""
    others = DIGITS_ONLY if args.data == "moons" else {**MOONS_ONLY, **dict.fromkeys(CNF_ONLY)}
    given = [name for name in others if getattr(args, name) is not None]
    if given:
        option = "--" + given[0].replace("_", "-")
        return fail("train", f"argument {option}: applies to --data {'digits' if args.data == 'moons' else 'moons'} "
                             f"only, not --data {args.data}")
    if args.data == "moons":
        problem = _cnf_problem(args)
        if problem is not None:
            return fail("train", problem)
        for name, default in MOONS_ONLY.items():
            if getattr(args, name) is None:
                setattr(args, name, default)
        args.family_options = _family_options(args)
        if isinstance(args.family_options, str):
            return fail("train", args.family_options)
    batch_size, most = args.batch_size or 128, args.samples if args.data == "moons" else DIGITS_TRAINING_IMAGES
    if batch_size > most:
        limit = f"--samples ({most})" if args.data == "moons" else f"the {most} training images"
        return fail("train", f"argument --batch-size: must be at most {limit}, got {batch_size}")
    problem = usable_folder(args.out)
    if problem is not None:
        return fail("train", f"argument --out: cannot write to the folder {str(args.out)!r}: {problem}")
    if args.data == "digits":
        return _train_digits(args)
    return _train_cnf(args) if args.flow == "cnf" else _train_moons(args)


def _cnf_problem(args: argparse.Namespace) -> str | None:
    """Why the continuous flow's options given do not fit the run (None: they do); the cnf's own
    defaults (one layer, its network) are filled in."""
    given = [name for name in CNF_ONLY if getattr(args, name) is not None]
    if args.flow != "cnf":
        return f"argument --{given[0]}: applies to --flow cnf only, not --flow {args.flow or 'maf'}" if given else None
    from flowlab.studies.flow_matching import CNF_CONFIG

    if args.layers not in (None, 1):
        return f"argument --layers: a continuous flow is one ODE: must be 1, got {args.layers}"
    if args.ot and args.objective == "likelihood":
        return "argument --ot: applies to --objective matching only, not --objective likelihood"
    euler = args.solver == "euler"
    wrong = [name for name in (("rtol", "atol") if euler else ("steps",)) if getattr(args, name) is not None]
    if wrong:
        return f"argument --{wrong[0]}: applies to --solver {'dopri' if euler else 'euler'} only"
    args.layers, args.objective, args.ot = 1, args.objective or "matching", bool(args.ot)
    args.hidden_units = args.hidden_units or CNF_CONFIG.hidden_units
    args.activation = args.activation or CNF_CONFIG.activation
    return None


def _settings(args: argparse.Namespace, default):  # type: ignore[no-untyped-def]
    """TrainSettings from the options given, ``default``'s where none was given."""
    from dataclasses import replace

    given = {"epochs": args.epochs, "batch_size": args.batch_size, "learning_rate": args.learning_rate}
    return replace(default, seed=args.seed, **{k: v for k, v in given.items() if v is not None})


def _finish(args: argparse.Namespace, metrics: dict, summary: str) -> int:
    print(json.dumps(metrics) if args.json else summary)
    return 0


def _train_digits(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from flowlab.studies.digits.lab import run_digits
    from flowlab.studies.digits.flows import ImageFlowConfig
    from flowlab.studies.digits.train import DIGITS_SETTINGS
    from flowlab.train import TrainingDiverged

    options = {"multiscale": args.image_flow != "flat", "seed": args.seed,
               **({"couplings": args.couplings} if args.couplings else {}),
               **({"hidden_channels": args.hidden_channels} if args.hidden_channels else {})}
    settings = _settings(args, DIGITS_SETTINGS)
    try:
        metrics = run_digits(args.out, replace(ImageFlowConfig(), **options), settings,
                             args.dequantization or "variational", progress=not args.json)
    except TrainingDiverged as error:
        return fail("train", str(error), status=1)
    ratio = metrics["ratio_to_independent_pixels"]
    return _finish(args, metrics, f"trained in {metrics['train_seconds']:.1f} s; test {metrics['test_bits_per_dim']:.3f} "
                                  f"bits/dim ({ratio:.2f} x independent pixels' "
                                  f"{metrics['baseline_bits_per_dim']['independent_pixels']:.3f}); wrote {args.out}/")


def _train_moons(args: argparse.Namespace) -> int:
    from flowlab.flows import FlowConfig
    from flowlab.headless import run_moons
    from flowlab.train import TrainingDiverged, TrainSettings

    settings = _settings(args, TrainSettings())
    config = FlowConfig(flow=args.flow, num_layers=args.layers, hidden_units=args.hidden_units,
                        activation=args.activation, seed=args.seed, options=args.family_options)
    try:
        metrics = run_moons(args.out, config, settings, args.samples, args.noise, _recorded_settings(args, settings),
                            progress=not args.json)
    except TrainingDiverged as error:
        print(f"flowlab train: {error}", file=sys.stderr)
        return 1
    return _finish(args, metrics, f"trained in {metrics['train_seconds']:.1f} s; held-out NLL "
                                  f"{metrics['heldout_nll']:.4f} nats, KL to the exact density "
                                  f"{metrics['kl_to_exact']:.4f} nats; wrote {args.out}/")


def _train_cnf(args: argparse.Namespace) -> int:
    """``flowlab train --flow cnf``: the continuous flow's run (flowlab.studies.cnf_lab), its summary printed."""
    from flowlab.flows import FlowConfig
    from flowlab.studies.cnf_lab import run_cnf
    from flowlab.train import TrainingDiverged, TrainSettings

    settings = _settings(args, TrainSettings())
    options = {name: getattr(args, name) for name in ("solver", "rtol", "atol", "steps", "trace")
               if getattr(args, name) is not None}
    config = FlowConfig(flow="cnf", num_layers=1, hidden_units=args.hidden_units, activation=args.activation,
                        seed=args.seed, options=options)
    try:
        metrics = run_cnf(args.out, config, settings, args.samples, args.noise, args.objective, args.ot,
                          _recorded_settings(args, settings), progress=not args.json)
    except TrainingDiverged as error:
        return fail("train", str(error), status=1)
    return _finish(args, metrics, f"trained in {metrics['train_seconds']:.1f} s ({args.objective}); held-out NLL "
                                  f"{metrics['heldout_nll']:.4f} nats, KL to the exact density "
                                  f"{metrics['kl_to_exact']:.4f} nats; a density costs "
                                  f"{metrics['log_prob_evaluations']} function evaluations; wrote {args.out}/")


def _offered_options() -> dict[str, list]:
    """Option name -> the families that offer it on the command line (their ``cli``), in
    registration order: two families may share an option, and it is one flag."""
    from flowlab.flows import FAMILIES

    offered: dict[str, list] = {}
    for registered in FAMILIES.values():
        for name in registered.cli:
            offered.setdefault(name, []).append(registered)
    return offered


def _flows(owners: list) -> str:
    return " or ".join(f"--flow {registered.name}" for registered in owners)


def _family_options(args: argparse.Namespace) -> dict | str:
    """The chosen family's own options given on the command line, or why one given is not its."""
    from flowlab.flows import FAMILIES

    offered = _offered_options()
    given = {name: getattr(args, name) for name in offered if getattr(args, name, None) is not None}
    foreign = [name for name in given if name not in FAMILIES[args.flow].options]
    if foreign:
        return (f"argument --{foreign[0].replace('_', '-')}: applies to {_flows(offered[foreign[0]])} only, "
                f"not --flow {args.flow}")
    return given


def _recorded_settings(args: argparse.Namespace, settings) -> dict:  # type: ignore[no-untyped-def]
    """The options of a moons run as metrics.json records them."""
    recorded = {k: v for k, v in vars(args).items() if k not in DIGITS_ONLY and k not in ("handler", "family_options")}
    return {**recorded, "out": str(args.out), "hidden_units": list(args.hidden_units), "epochs": settings.epochs,
            "batch_size": settings.batch_size, "learning_rate": settings.learning_rate}


def _compare(args: argparse.Namespace) -> int:
    problem = usable_folder(args.out)
    if problem is not None:
        return fail("compare", f"argument --out: cannot write to the folder {str(args.out)!r}: {problem}")
    from flowlab.studies.compare import compare_seed, summarize

    per_seed, first = {}, {}
    for seed in dict.fromkeys(args.seeds):
        start = time.perf_counter()
        per_seed[seed], trained = compare_seed(seed, args.epochs, args.samples, args.noise, args.models,
                                               progress=not args.json, keep=not first)
        first = first or trained
        if not args.json:
            print(f"seed {seed} done in {time.perf_counter() - start:.0f} s", flush=True)
    summary = summarize(per_seed, args.noise)
    (args.out / "compare.json").write_text(json.dumps(summary, indent=1) + "\n")
    _compare_figures(first, args.out, args.noise, args.seeds[0])
    if args.json:
        print(json.dumps(summary))
    else:
        _print_compare_table(summary)
        print(f"wrote {args.out / 'compare.json'} and figures to {args.out}/")
    return 0


def _print_compare_table(summary: dict) -> None:
    print(f"entropy of the truth: {summary['entropy']:.3f} nats; means over seeds {summary['seeds']}")
    print(f"{'model':<16} {'E_q[log p]':>10} {'energy':>8} {'gap':>7} {'NLL':>7} {'NLL <=':>7} "
          f"{'seconds':>7} failures")
    for name, model in summary["models"].items():
        cells = [model["sample_log_p_true"], model["energy_distance"], model["gap_disc_fraction"],
                 model["heldout_nll"], model["nll_upper_bound"], model["train_seconds"]]
        shown = ["-" if value is None else f"{value:.3f}" for value in cells]
        print(f"{name:<16} {shown[0]:>10} {shown[1]:>8} {shown[2]:>7} {shown[3]:>7} {shown[4]:>7} "
              f"{shown[5]:>7} {model['diverged']} NaN, {model['mode_collapse']} collapsed")


def _compare_figures(trained: dict, out: Path, noise: float, seed: int) -> None:
    """samples.png, densities.png, vae_mean.png, gan.png and kl_directions.png from one seed's models."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from flowlab import plots
    from flowlab.studies.compare import MODELS
    from flowlab.data import make_moons, moons_log_prob

    exact = lambda x: moons_log_prob(x, noise=noise)  # noqa: E731
    ok = {name: t for name, t in trained.items() if t.model is not None}
    samples = {name: t.sample(5000, seed) for name, t in ok.items()}
    figures = {"samples.png": lambda: plots.plot_point_panels(
        {"truth": make_moons(5000, noise=noise, seed=seed + 1), **{MODELS[n].label: s for n, s in samples.items()}},
        suptitle="5,000 samples of each model, on one scale")}
    densities = {MODELS[name].label: (t.model if name.startswith("flow") else
                                      (lambda x, m=t.model: -m.iwae_bound(x, k=100)))
                 for name, t in ok.items() if name != "gan"}
    if densities:
        figures["densities.png"] = lambda: plots.plot_densities(
            {**densities, "exact": exact}, log=True, n=120,
            suptitle="log10 density (a VAE's: exp of minus its k=100 bound, a lower bound); a GAN has none")
    if "vae" in ok:
        figures["vae_mean.png"] = lambda: plots.plot_point_panels(
            {"VAE samples": samples["vae"], "VAE decoder means": ok["vae"].model.decoder_mean(5000, seed)},
            suptitle="A VAE's samples and its decoder's means for the same latents")
    if "gan" in ok:
        figures["gan.png"] = lambda: plots.plot_points_over_density(
            samples["gan"], exact, "GAN samples over the exact density")
    if "flow" in ok and "flow_reverse_kl" in ok:
        figures["kl_directions.png"] = lambda: plots.plot_densities(
            {"forward KL (maximum likelihood)": ok["flow"].model, "reverse KL": ok["flow_reverse_kl"].model},
            log=True, n=120, suptitle="Mass-covering vs mode-seeking: log10 density")
    for name, draw in figures.items():
        draw()
        plt.savefig(out / name, dpi=90, bbox_inches="tight")
        plt.close("all")


