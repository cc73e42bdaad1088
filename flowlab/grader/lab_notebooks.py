"""The lab's notebooks as a student who installed only the wheel gets them: ``flowlab notebooks DIR``
copies the hand-out and the notebooks it points to (the flow families, VAE/GAN/flow and image flows,
with the stored results they read) out of the installed package.

The wheel ships the repository's ``notebooks/`` files themselves as the package data of
``flowlab.notebooks`` (pyproject.toml maps that package to ``notebooks/``), so they cannot drift; the
hand-out is ``flowlab/reference``'s, which ``flowlab student`` keeps in step. Run from a source
checkout, the files come from ``notebooks/``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from flowlab.grader._setup import REFERENCE

__all__ = ["HANDOUT", "NOTEBOOKS", "DATA", "packaged_files", "existing", "copy_notebooks"]

#: The hand-out's file name, as the command writes it.
HANDOUT = REFERENCE.name
#: The notebooks the hand-out points to, shipped as package data of ``flowlab.notebooks``.
NOTEBOOKS = ("flow_families.ipynb", "vae_gan_flow.ipynb", "image_flows.ipynb", "continuous_flows.ipynb")
#: The stored multi-seed results those notebooks read, relative to the notebooks' folder.
DATA = ("data/vae_gan_flow_5_seeds.json", "data/vae_latent_5_seeds.json", "data/image_flows_3_seeds.json",
        "data/continuous_flows_benchmark.json")

_PACKAGE = Path(__file__).resolve().parents[1]  # flowlab itself, subpackages included


def _notebook_folder() -> Path:
    """Where the notebooks are: inside the installed package, else the source checkout's ``notebooks/``."""
    installed = _PACKAGE / "notebooks"
    return installed if installed.is_dir() else _PACKAGE.parent / "notebooks"


def packaged_files() -> dict[str, Path]:
    """Name relative to the target folder -> the file it is copied from: the hand-out first.

    Example:
        >>> sorted(packaged_files())[:2]
        ['continuous_flows.ipynb', 'data/continuous_flows_benchmark.json']
    """
    folder = _notebook_folder()
    return {HANDOUT: REFERENCE, **{name: folder / name for name in (*NOTEBOOKS, *DATA)}}


def existing(out: Path) -> list[str]:
    """The files ``copy_notebooks(out)`` would overwrite, by their names relative to ``out``."""
    return [name for name in packaged_files() if (out / name).exists()]


def copy_notebooks(out: Path, force: bool = False) -> list[Path]:
    """Copy the hand-out, the notebooks it points to and their data into ``out`` (created if missing);
    returns the paths written. Refuses (FileExistsError naming the files) to overwrite unless ``force``."""
    files = packaged_files()
    missing = [str(source) for source in files.values() if not source.is_file()]
    if missing:
        raise FileNotFoundError(f"this flowlab install lacks {', '.join(missing)}; reinstall flowlab from its wheel")
    clash = existing(out)
    if clash and not force:
        raise FileExistsError(", ".join(clash))
    written = []
    for name, source in files.items():
        target = out / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        written.append(target)
    return written
