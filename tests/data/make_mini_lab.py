"""Write and execute tests/data/mini_lab.ipynb: the lab's first four answers and their official
check cells, a few seconds to run, for the grading tests (the full lab trains for a minute). Each
cell's id is its name (``setup``, ``data``, ``zsamples``, ``bijectors``, ``check-<name>``, ...).

    .venv/bin/python tests/data/make_mini_lab.py
"""

from pathlib import Path

import nbformat
from nbclient import NotebookClient

HERE = Path(__file__).resolve().parent
POINTS = {"moons_data": 1, "base_distribution": 1, "base_samples": 1, "bijectors": 2}

CELLS = [
    ("title", "markdown", "# Mini lab (grading tests)", None),
    ("setup", "code", "import flowlab\n\nimport numpy as np\nimport sklearn.datasets as datasets\n"
             "import tensorflow as tf\nimport tensorflow_probability as tfp\n\n"
             "tf.keras.utils.set_random_seed(0)\ntfd = tfp.distributions\ntfb = tfp.bijectors", None),
    ("data", "code", "moon_n = 10000\nndim = 2\n# TODO: data, _ = datasets.FUNCTION(moon_n, noise=0.05)\n"
             "### BEGIN SOLUTION\ndata, _ = datasets.make_moons(moon_n, noise=0.05)\n### END SOLUTION\n"
             "data = data.astype(np.float32)", None),
    ("check-moons_data", "code", None, "moons_data"),
    ("zdist", "code", "zdist = tfd.MultivariateNormalDiag(loc=[0.0] * ndim)", None),
    ("check-base_distribution", "code", None, "base_distribution"),
    ("zsamples", "code", "# TODO: zsamples = FUNCTION(moon_n)\n### BEGIN SOLUTION\nzsamples = zdist.sample(moon_n)\n"
             "### END SOLUTION", None),
    ("check-base_samples", "code", None, "base_samples"),
    ("bijectors", "code", "# TODO: shift_bij = ... and scale_bij = ...\n### BEGIN SOLUTION\n"
             "scale_bij = tfb.Scale([1.0, 0.5])\nshift_bij = tfb.Shift([0.5, 0.25])\n### END SOLUTION\n"
             "b = shift_bij(scale_bij)", None),
    ("check-bijectors", "code", None, "bijectors"),
]


def main() -> None:
    cells = []
    for name, kind, source, check in CELLS:
        if kind == "markdown":
            cell = nbformat.v4.new_markdown_cell(source)
        elif check:
            cell = nbformat.v4.new_code_cell(
                f'# NBVAL_CHECK_OUTPUT\nimport flowlab.checks\nflowlab.checks.run("{check}", globals())')
            cell.metadata["flowlab"] = {"check": check, "points": POINTS[check]}
        else:
            cell = nbformat.v4.new_code_cell(source)
        cell.id = name  # tests find cells by these names, not by position
        cells.append(cell)
    notebook = nbformat.v4.new_notebook(cells=cells)
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    NotebookClient(notebook, timeout=120, kernel_name="python3",
                   resources={"metadata": {"path": str(HERE)}}).execute()
    for cell in notebook.cells:
        cell.metadata.pop("execution", None)
    nbformat.write(notebook, str(HERE / "mini_lab.ipynb"))


if __name__ == "__main__":
    main()
