"""A correct answer to the lab written the way a student might, not as the reference is: other
intermediate names, other equivalent calls (keywords, tuples, composition instead of Chain,
``tf.math`` instead of ``tf``, no ``steps_per_execution``), and exploratory cells that draw random
numbers (and build a network) before the data, the chain and the training. The lab's given code
re-seeds before each of those, so this answer must reproduce the reference's numbers (issue 34).

Used by tests/test_grading.py, and by hand (``python tests/student_style.py OUT.ipynb``) for the
fresh-environment check of issue 34.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
STUDENT = ROOT / "notebooks" / "normalizing_flows_student.ipynb"
PLACEHOLDER = 'raise NotImplementedError("answer the TODO above, then run this cell")'

#: One answer per placeholder of the hand-out, in order.
ANSWERS = [
    'verdicts = {name: False for name in SHEET_EXAMPLES}\n'
    'for bijective in ("cos on [0, pi]", "x**3 on the reals", "matrix [[2, 1], [1, 1]]"):\n'
    '    verdicts[bijective] = True',
    "data = datasets.make_moons(n_samples=moon_n, noise=0.05, shuffle=True)[0]",
    "zsamples = zdist.sample(sample_shape=(moon_n,))",
    "scale_bij = tfb.Scale(scale=[1.0, 0.5])\nshift_bij = tfb.Shift(shift=tf.constant([0.5, 0.25]))",
    "ldj = b.inverse_log_det_jacobian(x_check, event_ndims=1)\nlog_det_g = ldj\n"
    "by_hand = zdist.log_prob(b.inverse(x_check)) + ldj",
    "def _forward(self, x):\n    return tf.math.sinh(x)\n\n"
    "def _inverse(self, y):\n    return tf.math.asinh(y)\n\n"
    "def _forward_log_det_jacobian(self, x):\n"
    "    return x + tf.math.softplus(-2.0 * x) - tf.math.log(2.0)  # log cosh x, without overflow\n\n"
    "def _inverse_log_det_jacobian(self, y):\n    return -self._forward_log_det_jacobian(tf.math.asinh(y))",
    "sinh_chain = tfb.Shift(1.0)(tfb.Scale(0.5)(my_sinh))\n"
    "sinh_td = tfd.TransformedDistribution(distribution=tfd.Normal(loc=0.0, scale=1.0), bijector=sinh_chain)",
    "anet = tfb.AutoregressiveNetwork(2, hidden_units=[128] * 2, activation=tf.nn.relu)",
    "permute = tfb.Permute(permutation=[1, 0])",
    'big_bijector = tfb.Chain(bijectors=list(my_bijects), name="my_flow")',
    "with tf.GradientTape(persistent=False) as g:\n    g.watch(z_points)\n    out = maf.forward(z_points)\n"
    "jacobians = g.batch_jacobian(out, z_points)",
    "log_det_autodiff = np.log(np.abs([np.linalg.det(jac) for jac in jacobians.numpy()]))",
    "x = tf.keras.layers.Input(shape=(2,))",
    "model = tf.keras.models.Model(inputs=x, outputs=log_prob)",
    "model.compile(loss=neg_loglik, optimizer=tf.keras.optimizers.Adam(learning_rate=learning_rate))",
    "result = model.fit(data, np.zeros((moon_n, 1)), batch_size=batch_size, epochs=epochs,\n"
    "                   callbacks=callbacks, verbose=0, shuffle=True)",
    "zsamples = td.sample(sample_shape=moon_n)",
]

#: Exploratory cells a student adds, each put before the first code cell containing the key.
EXPLORATION = {
    "moon_n = 10000": "np.random.normal(size=5), tf.random.uniform([3])",
    "num_layers = 3": "print(zdist.sample(3))\ntry_net = tfb.AutoregressiveNetwork(params=2, hidden_units=[8])\n"
                      "try_net(tf.zeros([1, 2])).shape",
    "snapshots = flowlab.anatomy": "tf.random.normal([4]), np.random.rand(2)",
}


def _indented(answer: str, indent: str) -> str:
    return "\n".join(indent + line if line else line for line in answer.splitlines())


def student_style_answer() -> nbformat.NotebookNode:
    """The hand-out with every TODO answered as above and the exploratory cells added."""
    notebook = nbformat.read(str(STUDENT), as_version=4)
    answers = iter(ANSWERS)
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        lines = []
        for line in cell.source.splitlines():
            stripped = line.lstrip()
            lines.append(_indented(next(answers), line[:len(line) - len(stripped)]) if stripped == PLACEHOLDER
                         else line)
        cell.source = "\n".join(lines)
    if next(answers, None) is not None:
        raise AssertionError("the hand-out has fewer placeholders than ANSWERS")
    for key, source in EXPLORATION.items():
        index = next(i for i, cell in enumerate(notebook.cells) if cell.cell_type == "code" and key in cell.source)
        notebook.cells.insert(index, nbformat.v4.new_code_cell(source))
    return notebook


if __name__ == "__main__":
    nbformat.write(student_style_answer(), sys.argv[1])
