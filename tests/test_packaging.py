"""environment.yml gives conda users the same stack as pyproject.toml."""

import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = project["dependencies"] + project["optional-dependencies"]["test"]
    environment = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in environment["dependencies"] if isinstance(d, dict))
    assert sorted(r for r in pip_section if r != "-e .") == sorted(wanted)
    assert "-e ." in pip_section
    python = next(d for d in environment["dependencies"] if isinstance(d, str) and d.startswith("python="))
    assert python == "python=3.11"


def test_tf_keras_pinned_to_tensorflow_minor():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    tf = next(d for d in deps if d.startswith("tensorflow>="))
    keras = next(d for d in deps if d.startswith("tf-keras"))
    assert tf.removeprefix("tensorflow") == keras.removeprefix("tf-keras")
