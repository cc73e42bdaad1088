"""Grading the full lab: the student version is current, the solution passes every check, the
untouched student version fails every answer-dependent check clearly, and plausible wrong answers
each fail at the check for their step, with their own message, before anything else fails. The
wrong answers run one after another in one kernel, reset to what a fresh kernel holds between them
(SharedKernel): a kernel start and `import flowlab` each cost more than most wrong answers' runs.

The robustness, tampering and scale cases run on the small lab of tests/data (test_grading_batch.py)."""

import json
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from flowlab import cli
from flowlab.grader import checks
from flowlab.grader.grade import _failure_message, grade_notebook, write_tables
from flowlab.grader.student import BEGIN, PLACEHOLDER, check_name, make_student_notebook, strip_solutions
from tests.student_style import student_style_answer

ROOT = Path(__file__).resolve().parents[1]
SOLUTION = ROOT / "notebooks" / "normalizing_flows.ipynb"
STUDENT = ROOT / "notebooks" / "normalizing_flows_student.ipynb"


def test_student_notebook_is_up_to_date():
    generated = make_student_notebook(nbformat.read(str(SOLUTION), as_version=4))
    assert json.loads(nbformat.writes(generated)) == json.loads(STUDENT.read_text()), \
        "run `flowlab student` to regenerate notebooks/normalizing_flows_student.ipynb"


def test_student_notebook_has_placeholders_not_answers():
    student = nbformat.read(str(STUDENT), as_version=4)
    sources = "\n".join(cell.source for cell in student.cells if cell.cell_type == "code")
    assert BEGIN not in sources
    for answer in ("datasets.make_moons(", "tfb.Scale([1.0, 0.5])", "hidden_units=[128, 128]",
                   "tfb.Permute([1, 0])", "tfb.Chain(my_bijects)", "tf.keras.Model(x, log_prob)",
                   "model.fit(", '"cos on [0, 2pi]": False', "b.inverse_log_det_jacobian(x_check",
                   "tf.asinh(y)", "tfb.Chain([tfb.Shift(1.0)", "tape.batch_jacobian(", "np.linalg.det("):
        assert answer not in sources
    assert sources.count(PLACEHOLDER) == 17  # one per TODO of the sheet, and the lab's own six
    before_todo = []  # no answer named before its TODO (the first TODO of the sheet)
    for cell in student.cells:
        if "datasets.FUNCTION" in cell.source:
            break
        before_todo.append(cell.source)
    assert before_todo and "make_moons" not in "\n".join(before_todo)
    for cell in student.cells:
        if cell.cell_type == "code":
            assert bool(cell.outputs) == (check_name(cell) is not None)


def test_the_hand_out_shows_no_answer_before_its_todo():
    """The expected outputs a hand-out shows before anything runs give no answer away (issue 34): the
    verdicts' OK line names no count of bijections, and the chain's TODO itself says params=2."""
    student = nbformat.read(str(STUDENT), as_version=4)
    expected = {check_name(cell): "".join(out.get("text", "") for out in cell.outputs)
                for cell in student.cells if check_name(cell)}
    assert expected["bijection_verdicts"].startswith("OK: verdicts: all 8 right")
    assert not any(word in expected["bijection_verdicts"] for word in ("bijections", "3", "5"))
    chain = next(cell.source for cell in student.cells if "TODO: anet = ..." in cell.source)
    todo = chain[chain.index("TODO: anet = ..."):chain.index(PLACEHOLDER)]
    assert "params=2" in todo and "[128, 128]" in todo and "relu" in todo
    assert "a tuple fails inside TFP" in todo  # hidden_units=(128, 128) breaks AutoregressiveNetwork.build


def test_every_check_has_a_cell_marked_for_nbval_lax():
    solution = nbformat.read(str(SOLUTION), as_version=4)
    cells = [cell for cell in solution.cells if check_name(cell)]
    assert [check_name(cell) for cell in cells] == list(checks.CHECKS)
    for cell in cells:
        assert cell.source.splitlines()[0] == "# NBVAL_CHECK_OUTPUT"
        # the checker is reached through its import path, never through a notebook name
        assert cell.source.splitlines()[1:] == [
            "import flowlab.checks", f'flowlab.checks.run("{check_name(cell)}", globals())']
        assert cell.outputs and cell.outputs[0]["text"].startswith("OK: ")
        assert cell.metadata.flowlab.get("points", 1) > 0


def test_strip_solutions_rejects_unbalanced_markers():
    with pytest.raises(ValueError, match="markers"):
        strip_solutions("### BEGIN SOLUTION\nx = 1\n")


def test_failure_message_prefers_check_failed_line():
    text = "\x1b[91mCell execution caused an exception\x1b[0m\n" \
           "NameError: boom\nCheckFailed: `data` not defined. Hint: run it."
    assert _failure_message(text) == "`data` not defined. Hint: run it."
    assert _failure_message("Cell outputs differ\n").startswith("the check's output differs from the expected")


@pytest.fixture(scope="module")
def graded(tmp_path_factory):  # each grading trains the full lab: slow
    """Grade the solution, the untouched student version and a tampered copy, in one pass."""
    folder = tmp_path_factory.mktemp("submissions")
    (folder / "alice.ipynb").write_text(SOLUTION.read_text())
    (folder / "bob.ipynb").write_text(STUDENT.read_text())
    # carol fakes the first check's output and deletes the last check cell
    carol = nbformat.read(str(STUDENT), as_version=4)
    for cell in carol.cells:
        if check_name(cell) == "moons_data":
            cell.source = 'print("OK: data: 10000 points on two moons with noise 0.05")'
    carol.cells = [cell for cell in carol.cells if check_name(cell) != "flow_samples"]
    nbformat.write(carol, str(folder / "carol.ipynb"))
    nbformat.write(student_style_answer(), str(folder / "dave.ipynb"))  # right, written his own way
    return {name: grade_notebook(folder / f"{name}.ipynb", STUDENT) for name in ("alice", "bob", "carol", "dave")}


@pytest.mark.slow
def test_solution_passes_every_check(graded):
    assert graded["alice"].status == "graded"
    assert graded["alice"].results == {name: None for name in checks.CHECKS}
    [note] = graded["alice"].notes  # the training check's standing, nothing else
    assert note.startswith("training: Where your flow stands: KL 0.")
    assert note.endswith("Yours is within the range of this notebook's recipe.")


def _printed(executed: str, start: str) -> str:
    """The first printed line of an executed notebook (JSON) that starts with ``start``."""
    for cell in json.loads(executed)["cells"]:
        for output in cell.get("outputs", []):
            for line in "".join(output.get("text", "")).splitlines():
                if line.startswith(start):
                    return line
    raise AssertionError(f"no printed line starts with {start!r}")


@pytest.mark.slow
def test_a_student_style_answer_passes_and_reproduces_the_references_numbers(graded):
    """Other names, other equivalent calls, no steps_per_execution, random draws and a network built in
    exploratory cells before the data, the chain and the training (tests/student_style.py): the given
    code's seeds make it train the reference's flow, so it prints the reference's scores (issue 34)."""
    assert graded["dave"].status == "graded"
    assert graded["dave"].results == {name: None for name in checks.CHECKS}
    for line in ("held-out NLL of the flow q", "KL(p || q), truth to flow", "the flow's probability mass in it"):
        assert _printed(graded["dave"].executed, line) == _printed(graded["alice"].executed, line)


@pytest.mark.slow
def test_untouched_student_version_fails_every_answer_dependent_check_clearly(graded):
    results = dict(graded["bob"].results)
    assert list(results) == list(checks.CHECKS)
    # zdist is given by the sheet (no TODO), so its check passes; td and zsamples are given too, and
    # with the reference's `b` standing in for the missing one their check passes and says so
    assert results.pop("base_distribution") is None
    assert results.pop("transformed_distribution") is None
    assert "transformed_distribution: judged with the reference's `b` (yours failed bijectors)" in graded["bob"].notes
    # a check whose names the stand-ins cannot supply says what the student has to do
    assert results.pop("loss_and_optimizer") == "`model` is not compiled. Hint: model.compile(optimizer=..., loss=...)."
    assert "the `training` check has not passed" in results.pop("flow_samples")
    for name, message in results.items():
        assert "not defined. Hint: answer the TODO in the cell above" in message, (name, message)


@pytest.mark.slow
def test_tampered_checks_cannot_pass(graded):
    results = graded["carol"].results
    assert "`data` not defined" in results["moons_data"]  # the official check ran, not the fake
    assert results["flow_samples"] == "the check cell is missing from the submission"
    assert "check cell 'moons_data' was edited (the official one was run)" in graded["carol"].notes
    assert "check cell 'flow_samples' was deleted" in graded["carol"].notes


@pytest.mark.slow
def test_tables_for_the_gradebook(graded, tmp_path):
    csv_path, md_path = write_tables(list(graded.values()), tmp_path)
    rows = csv_path.read_text().splitlines()
    assert rows[0].startswith("submission,student_id,status,raw_points,late_penalty,points,max_points,"
                              "checks_passed,days_late,notes,bijection_verdicts,")
    points = nbformat.read(str(STUDENT), as_version=4)
    total = sum(c.metadata.flowlab.get("points", 1) for c in points.cells if check_name(c))
    assert rows[1].startswith(f"alice.ipynb,,graded,{total:g},0,{total:g},{total:g},15/15,0,"
                              '"training: Where your flow stands: KL 0.')  # the training check's note
    assert rows[1].endswith(",pass" * len(checks.CHECKS))
    assert rows[2].startswith("bob.ipynb,,graded,2,0,2,") and ",FAIL: " in rows[2]
    markdown = md_path.read_text()
    assert f"| alice.ipynb | graded | {total:g}/{total:g} |" in markdown
    assert "**bob.ipynb**, moons_data: `data` not defined" in markdown


def test_grade_command_rejects_missing_files(tmp_path, capsys):
    assert cli.main(["grade", str(tmp_path / "nope.ipynb"), "--out", str(tmp_path)]) == 2
    assert "not a notebook file" in capsys.readouterr().err


def test_student_command_writes_the_student_notebook(tmp_path):
    out = tmp_path / "student.ipynb"
    assert cli.main(["student", "--solution", str(SOLUTION), "--out", str(out)]) == 0
    assert out.read_text() == STUDENT.read_text()


# Plausible wrong answers: (name, text in the solution, replacement, failing check, message).
MUTATIONS = [
    ("cos on [0, 2pi] called a bijection", '"cos on [0, 2pi]": False,', '"cos on [0, 2pi]": True,',
     "bijection_verdicts", "cos on [0, 2pi] (y = cos x on [0, 2 pi]): you said a bijection, but f turns back"),
    ("singular matrix called a bijection", '"matrix [[1, 2], [2, 4]]": False,', '"matrix [[1, 2], [2, 4]]": True,',
     "bijection_verdicts", "its Jacobian is singular everywhere"),
    ("x**3 called not a bijection", '"x**3 on the reals": True,', '"x**3 on the reals": False,',
     "bijection_verdicts", "you said not a bijection, but f is strictly increasing"),
    ("circles instead of moons", "datasets.make_moons(moon_n, noise=0.05)",
     "datasets.make_circles(moon_n, noise=0.05)", "moons_data", "does not lie along two interleaved"),
    ("wrong noise", "datasets.make_moons(moon_n, noise=0.05)", "datasets.make_moons(moon_n, noise=0.1)",
     "moons_data", "pass noise=0.05 to make_moons"),
    ("1-D base", "tfd.MultivariateNormalDiag(loc=[0.0] * ndim)", "tfd.MultivariateNormalDiag(loc=[0.0])",
     "base_distribution", "event shape [1]"),
    ("too few base samples", "zsamples = zdist.sample(moon_n)\n### END", "zsamples = zdist.sample(100)\n### END",
     "base_samples", "has shape (100, 2)"),
    ("swapped shift and scale", "b = shift_bij(scale_bij)", "b = scale_bij(shift_bij)",
     "bijectors", "b shifts first and then scales"),
    ("wrong scale", "tfb.Scale([1.0, 0.5])", "tfb.Scale([0.5, 1.0])", "bijectors", "scaling by [1, 0.5]"),
    ("base not transformed by b", "td = tfd.TransformedDistribution(zdist, bijector=b)",
     "td = tfd.TransformedDistribution(zdist, bijector=scale_bij)", "transformed_distribution",
     "td.log_prob does not match"),
    ("the forward log-det in the formula", "log_det_g = b.inverse_log_det_jacobian(x_check",
     "log_det_g = b.forward_log_det_jacobian(x_check", "formula_by_hand", "that is log|det J_f|, the forward map's"),
    ("the formula without its log-det", "by_hand = zdist.log_prob(b.inverse(x_check)) + log_det_g",
     "by_hand = zdist.log_prob(b.inverse(x_check))", "formula_by_hand", "the log-det term is missing"),
    ("sinh as its own inverse", "        return tf.asinh(y)", "        return tf.sinh(y)", "hand_bijector",
     "the round trip fails"),
    ("the slope instead of its log", "return ax + tf.nn.softplus(-2.0 * ax) - np.log(2.0)", "return tf.cosh(x)",
     "hand_bijector", "but log|dy/dx| by GradientTape is"),
    ("the inverse log-det with the wrong sign", "return -self._forward_log_det_jacobian(tf.asinh(y))",
     "return self._forward_log_det_jacobian(tf.asinh(y))", "hand_bijector", "but log|dx/dy| by GradientTape is"),
    ("the sinh chain in the wrong order", "tfb.Chain([tfb.Shift(1.0), tfb.Scale(0.5), my_sinh])",
     "tfb.Chain([my_sinh, tfb.Scale(0.5), tfb.Shift(1.0)])", "hand_chain", "sinh_chain applies sinh last"),
    ("TFP's Sinh instead of the student's", "tfb.Scale(0.5), my_sinh])", "tfb.Scale(0.5), tfb.Sinh()])",
     "hand_chain", "does not contain your my_sinh"),
    ("a wider base under the sinh chain", "tfd.Normal(0.0, 1.0), bijector=sinh_chain",
     "tfd.Normal(0.0, 2.0), bijector=sinh_chain", "hand_chain", "integrates to one but is not N(0, 1)"),
    ("the Jacobian of the inverse", "    x_points = maf.forward(z_points)", "    x_points = maf.inverse(z_points)",
     "maf_jacobian", "the Jacobians of maf.inverse"),
    ("det J instead of log|det J|", "log_det_autodiff = np.log(np.abs(np.linalg.det(np.asarray(jacobians))))",
     "log_det_autodiff = np.linalg.det(np.asarray(jacobians))", "maf_jacobian", "is det J itself"),
    ("no Permute", "    my_bijects.append(permute)\n", "", "flow_chain", "3 x [MaskedAutoregressiveFlow, Permute]"),
    ("identity permutation", "tfb.Permute([1, 0])", "tfb.Permute([0, 1])", "flow_chain",
     "does not swap the coordinates"),
    ("hidden units changed", "hidden_units=[128, 128]", "hidden_units=[64, 64]", "flow_chain",
     "has hidden units [64, 64]"),
    ("tanh instead of relu", 'activation="relu"', 'activation="tanh"', "flow_chain", "the lab asks for relu"),
    ("model outputs -log p", "model = tf.keras.Model(x, log_prob)", "model = tf.keras.Model(x, -log_prob)",
     "keras_model", "model(points) is not td.log_prob(points)"),
    ("SGD optimizer", "optimizer=tf.keras.optimizers.Adam(learning_rate)",
     "optimizer=tf.keras.optimizers.SGD(learning_rate)", "loss_and_optimizer", "the lab trains with Adam"),
    ("loss with the wrong sign", "    return -log_prob", "    return log_prob", "loss_and_optimizer",
     "the negative log-likelihood is -log p"),
    ("far too few epochs", "    epochs=epochs,", "    epochs=5,", "training", "training ran 5 epochs"),
    ("sampling the base instead of the flow", "zsamples = td.sample(moon_n)\n### END SOLUTION\nplots.plot_points(np.asarray(zsamples), \"Samples from the trained",
     "zsamples = zdist.sample(moon_n)\n### END SOLUTION\nplots.plot_points(np.asarray(zsamples), \"Samples from the trained",
     "flow_samples", "from the trained td, not zdist"),
]


def _mutate(original: str, replacement: str) -> nbformat.NotebookNode:
    solution = nbformat.read(str(SOLUTION), as_version=4)
    hits = [cell for cell in solution.cells if cell.cell_type == "code" and original in cell.source]
    assert len(hits) == 1, f"mutation target found in {len(hits)} cells: {original!r}"
    hits[0].source = hits[0].source.replace(original, replacement)
    return solution


# What a fresh kernel holds before the notebook's first cell, restored between mutants in one kernel:
# no user names, and flowlab.grader.checks as first imported (its ledger of what earlier checks saw
# reset, its snapshot of the checks' tools still matching them), Keras' global state cleared, the
# notebooks folder as working directory. The notebook re-seeds NumPy, TensorFlow and `random` in its
# first cell and re-imports the rest, which stay loaded: that is the ~10 s per mutant saved.
_RESET = f"""\
%reset -f
import gc, os
import tensorflow as tf
from flowlab.grader import _check_guard, checks
checks.LEDGER.reset()
assert not _check_guard.tampered(checks._SNAPSHOT), _check_guard.tampered(checks._SNAPSHOT)
tf.keras.backend.clear_session()
gc.collect()
assert os.getcwd() == {str(SOLUTION.parent)!r}, os.getcwd()
%reset -f
"""


class SharedKernel:
    """One Jupyter kernel (started by nbclient, in the notebooks folder) that executes notebooks one
    after another, each as in a fresh kernel: reset, then its code cells from the top until the first
    error, which propagates as nbclient's CellExecutionError, like ``NotebookClient.execute``."""

    def __init__(self, client: NotebookClient):
        self.client = client

    def reset(self) -> None:
        cell = nbformat.v4.new_code_cell(_RESET)
        self.client.nb = nbformat.v4.new_notebook(cells=[cell])
        self.client.execute_cell(cell, 0)

    def execute(self, notebook: nbformat.NotebookNode) -> None:
        self.reset()
        self.client.nb = notebook  # execute_cell stores each executed cell back into client.nb
        for index, cell in enumerate(notebook.cells):
            if cell.cell_type == "code":
                self.client.execute_cell(cell, index)


@pytest.fixture(scope="module")
def kernel():
    """The mutants' kernel: started once (a start and `import flowlab` cost ~10 s each)."""
    client = NotebookClient(nbformat.v4.new_notebook(), timeout=600, kernel_name="python3",
                            allow_errors=False, resources={"metadata": {"path": str(SOLUTION.parent)}})
    with client.setup_kernel():
        yield SharedKernel(client)


@pytest.mark.slow
@pytest.mark.parametrize("name, original, replacement, check, message", MUTATIONS,
                         ids=[m[0] for m in MUTATIONS])
def test_mutation_fails_at_its_check_first(kernel, name, original, replacement, check, message):
    notebook = _mutate(original, replacement)
    for cell in notebook.cells:  # only what runs here counts: drop the solution's saved outputs
        if cell.cell_type == "code":
            cell.outputs = []
    with pytest.raises(CellExecutionError) as failure:
        kernel.execute(notebook)
    failed = [cell for cell in notebook.cells if cell.cell_type == "code"
              and any(o.get("output_type") == "error" for o in cell.get("outputs", []))]
    assert [check_name(cell) for cell in failed] == [check], f"{name}: first failure was elsewhere"
    assert failure.value.ename == "CheckFailed" and message in failure.value.evalue, failure.value.evalue


@pytest.mark.slow
def test_shared_kernel_forgets_the_notebook_before(kernel):
    """After the reset, a check that builds on an earlier one fails as in a fresh kernel: the earlier
    check has not passed *here*. Without the reset the ledger would still hold the earlier notebook's
    td, and the user names would still be defined."""
    solution = nbformat.read(str(SOLUTION), as_version=4)
    solution.cells = solution.cells[:[check_name(c) for c in solution.cells].index("flow_chain") + 1]
    kernel.execute(solution)  # the flow_chain check passes and records its td
    probe = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        'assert not {"data", "zdist", "td", "big_bijector"} & set(globals()), "names survived"\n'
        "import tensorflow as tf\n"
        "import flowlab.checks\n"
        "x = tf.keras.Input(shape=(2,), dtype=tf.float32)\n"
        "model, td = tf.keras.Model(x, x), None\n"
        'flowlab.checks.run("keras_model", globals())')])
    with pytest.raises(CellExecutionError) as failure:
        kernel.execute(probe)
    assert failure.value.ename == "CheckFailed", failure.value
    assert "the `flow_chain` check has not passed in this kernel" in failure.value.evalue


def _first_changed_cell(notebook: nbformat.NotebookNode) -> int:
    solution = nbformat.read(str(SOLUTION), as_version=4)
    return next(i for i, (a, b) in enumerate(zip(notebook.cells, solution.cells)) if a.source != b.source)


def test_at_most_one_mutant_needs_the_trained_solution():
    """Each mutant runs from the top, so one changed after the training cell trains the full lab
    (the only full training among the mutants). A second such mutant would pay a training of its own:
    share one trained kernel between them first (their tails must not see each other's state)."""
    solution = nbformat.read(str(SOLUTION), as_version=4)
    training = [check_name(c) for c in solution.cells].index("training")
    late = [m[0] for m in MUTATIONS if _first_changed_cell(_mutate(m[1], m[2])) > training]
    assert len(late) <= 1, f"{late}: each would train the full lab in a run of its own"


def test_mutation_table_is_large_and_covers_every_step():
    assert len(MUTATIONS) >= 12
    assert {m[3] for m in MUTATIONS} == set(checks.CHECKS)
