"""Grading a real class, on the small lab of tests/data (four checks, seconds to run): bad
submissions never stop the run, only checks that ran and printed their sealed line pass,
tampering fails or is noted, rows are unique and written as they arrive, feedback and records
are kept, the grader runs on any executor; plus the checker's own defences, in-process."""

from __future__ import annotations

import copy
import csv
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
import numpy as np
import pytest

from flowlab import cli
from flowlab.grader import _seal
from flowlab.grader.grade import (Grade, Job, Reference, _prepare, _relative_names, _verdicts, flowlab_sources,
                                  grade_all, grade_job, write_feedback)
from flowlab.grader.student import make_student_notebook

HERE = Path(__file__).resolve().parent
MINI = HERE / "data" / "mini_lab.ipynb"
CHECKS = ["moons_data", "base_distribution", "base_samples", "bijectors"]
def _cell(name: str) -> int:
    """The position of the mini lab's cell ``name`` (its id: tests/data/make_mini_lab.py)."""
    return next(i for i, cell in enumerate(nbformat.read(str(MINI), as_version=4).cells) if cell.id == name)


SETUP, DATA, ZDIST, ZSAMPLES, BIJECTORS = (_cell(name) for name in
                                          ("setup", "data", "zdist", "zsamples", "bijectors"))
TIMEOUT = 90  # seconds per submission in the batch; the hanging one costs this much
FAKE_DATA_LINE = 'print("OK: data: 10000 points on two moons with noise 0.05")'


def mini() -> nbformat.NotebookNode:
    return nbformat.read(str(MINI), as_version=4)


def with_code(notebook: nbformat.NotebookNode, after: int, source: str) -> nbformat.NotebookNode:
    notebook.cells.insert(after + 1, nbformat.v4.new_code_cell(source))
    return notebook


def replaced(notebook: nbformat.NotebookNode, index: int, old: str, new: str) -> nbformat.NotebookNode:
    assert old in notebook.cells[index].source, (index, old)
    notebook.cells[index].source = notebook.cells[index].source.replace(old, new)
    return notebook


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("reference") / "reference.ipynb"
    nbformat.write(make_student_notebook(mini()), str(path))
    return path


def _class(folder: Path, reference: Path) -> dict[str, Path]:
    """One submission of every kind an instructor meets, each in its student's folder as lab.ipynb."""
    circles = ("datasets.make_moons(moon_n, noise=0.05)", "datasets.make_circles(moon_n, noise=0.05)")
    kinds: dict[str, nbformat.NotebookNode | str] = {
        "honest": mini(),
        "stderr_noise": with_code(mini(), SETUP, 'import sys\nget_ipython().events.register("pre_run_cell", '
                                  'lambda *a: print("W tensorflow: retracing", file=sys.stderr, flush=True))'),
        "untouched": nbformat.read(str(reference), as_version=4),
        "hangs": with_code(mini(), BIJECTORS, "import time\ntime.sleep(3600)"),
        "kernel_dies": with_code(mini(), ZSAMPLES - 1, "import os\nos._exit(1)"),
        "not_a_notebook": "my answers are in the PDF\n",
        "no_cells": json.dumps({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}),
        "patches_check": with_code(replaced(mini(), DATA, *circles), SETUP,
                                   "import flowlab.checks\nflowlab.checks.moons_data = lambda ns: "
                                   '"data: 10000 points on two moons with noise 0.05"'),
        "patches_run": with_code(replaced(mini(), DATA, *circles), SETUP,
                                 "import flowlab.checks\nflowlab.checks.run = lambda name, ns: print("
                                 '"OK: data: 10000 points on two moons with noise 0.05")'),
        "rebinds_checks": with_code(replaced(mini(), DATA, *circles), SETUP,
                                    "class checks:\n    def __getattr__(self, name):\n"
                                    f"        return lambda *a: {FAKE_DATA_LINE}\nchecks = checks()"),
        "patches_numpy": with_code(replaced(mini(), BIJECTORS, "tfb.Scale([1.0, 0.5])", "tfb.Scale([2.0, 2.0])"),
                                   SETUP, "np.allclose = lambda *a, **k: True"),
        "fakes_output": replaced(replaced(mini(), DATA, *circles), DATA + 1,
                                 'import flowlab.checks\nflowlab.checks.run("moons_data", globals())',
                                 FAKE_DATA_LINE),
        "shuffles_checks": _shuffled(),
        "moves_check": _moved(),
        "writes_grader": with_code(mini(), SETUP, "import pathlib, flowlab\n"
                                   "target = pathlib.Path(flowlab.__file__).parent / 'grader' / 'checks.py'\n"
                                   "target.chmod(0o644)\ntarget.write_text(target.read_text() + '\\n# was here\\n')"),
        "writes_reference": with_code(mini(), SETUP, f"open({str(reference)!r}, 'a').write(' ')"),
        "memory_hog": with_code(mini(), SETUP, "hog = np.ones((40_000, 40_000))"),
        "wrong_zdist": replaced(mini(), ZDIST, "loc=[0.0] * ndim", "loc=[1.0] * ndim"),
    }
    paths = {}
    for kind, notebook in kinds.items():
        path = folder / kind / "lab.ipynb"
        path.parent.mkdir(parents=True)
        if isinstance(notebook, str):
            path.write_text(notebook)
        else:
            nbformat.write(notebook, str(path))
        paths[kind] = path
    return paths


def _shuffled() -> nbformat.NotebookNode:
    """A duplicated check (one copy above its answer), a deleted one, and one whose metadata is a string."""
    notebook = mini()
    bijectors_check = copy.deepcopy(notebook.cells[BIJECTORS + 1])
    bijectors_check.id = "copied-check"
    notebook.cells[DATA + 1].metadata["flowlab"] = "moons_data"
    del notebook.cells[ZSAMPLES + 1]  # the base_samples check
    notebook.cells.insert(BIJECTORS - 1, bijectors_check)  # above the bijectors answer
    return notebook


def _moved() -> nbformat.NotebookNode:
    notebook = mini()
    check = notebook.cells.pop(BIJECTORS + 1)
    notebook.cells.insert(BIJECTORS, check)  # now above its answer
    return notebook


@pytest.fixture(scope="module")
def batch(tmp_path_factory, reference):
    folder = tmp_path_factory.mktemp("class")
    paths = _class(folder / "submissions", reference)
    reference_bytes = reference.read_bytes()
    out = folder / "grades"
    arrived: list[Grade] = []
    grades = grade_all(list(paths.values()), reference, out, workers=2, timeout=TIMEOUT, progress=arrived.append)
    return {"grades": {g.submission.split("/")[0]: g for g in grades}, "out": out, "arrived": arrived,
            "reference_bytes": reference_bytes, "reference": reference}


def _failed(grade: Grade) -> dict[str, str]:
    return {name: message for name, message in grade.results.items() if message is not None}


@pytest.mark.slow
def test_honest_answers_pass_every_check_even_with_stderr_noise(batch):
    for kind in ("honest", "stderr_noise", "memory_hog"):
        grade = batch["grades"][kind]
        assert (grade.status, _failed(grade), grade.score, grade.max_points) == ("graded", {}, 5, 5), kind
    log = (batch["out"] / "submissions" / "stderr_noise" / "lab" / "log.txt").read_text()
    assert "W tensorflow: retracing" in log  # kept out of the comparison, kept in the log
    assert "MemoryError" in batch["grades"]["memory_hog"].executed  # the limit stopped the hog


@pytest.mark.slow
def test_a_failed_answer_does_not_fail_the_checks_after_it(batch):
    """The reference's zdist stands in for a wrong one: the sampling answer after it is judged on its own."""
    grade = batch["grades"]["wrong_zdist"]
    assert list(_failed(grade)) == ["base_distribution"] and grade.score == 4
    assert "base_samples: judged with the reference's `zdist` (yours failed base_distribution)" in grade.notes
    feedback = (batch["out"] / "submissions" / "wrong_zdist" / "lab" / "feedback.md").read_text()
    assert "judged with the reference's `zdist`" in feedback


@pytest.mark.slow
def test_the_untouched_handout_fails_every_answer(batch):
    grade = batch["grades"]["untouched"]
    assert grade.status == "graded" and set(_failed(grade)) == {"moons_data", "base_samples", "bijectors"}
    assert all("not defined" in message for message in _failed(grade).values())


@pytest.mark.slow
def test_a_hanging_notebook_times_out_and_keeps_what_passed(batch):
    grade = batch["grades"]["hangs"]
    assert grade.status == "timeout"
    assert list(_failed(grade)) == ["bijectors"]
    assert "ran out of time" in grade.results["bijectors"] and f"{TIMEOUT}" in grade.results["bijectors"]
    assert TIMEOUT <= grade.seconds < TIMEOUT + 30


@pytest.mark.slow
def test_a_dying_kernel_is_crashed_and_quick(batch):
    grade = batch["grades"]["kernel_dies"]
    assert grade.status == "crashed"
    assert set(_failed(grade)) == {"base_samples", "bijectors"}
    assert all("kernel died" in message for message in _failed(grade).values())
    assert grade.seconds < TIMEOUT / 2  # noticed at once, not after the timeout


@pytest.mark.slow
def test_unreadable_files_are_rows_not_crashes(batch):
    for kind, reason in (("not_a_notebook", "not a Jupyter notebook"), ("no_cells", "no code cells")):
        grade = batch["grades"][kind]
        assert grade.status == "unreadable" and set(_failed(grade)) == set(CHECKS)
        assert all(reason in message for message in grade.results.values()), grade.results


@pytest.mark.slow
def test_swapping_the_checker_does_not_pass(batch):
    grades = batch["grades"]
    # patching a check function is detected by every check
    assert set(_failed(grades["patches_check"])) == set(CHECKS)
    assert "replaced flowlab.checks.moons_data" in grades["patches_check"].results["moons_data"]
    # a fake run() prints the right words but not the seal
    assert set(_failed(grades["patches_run"])) == set(CHECKS)
    assert "differs from the expected output" in grades["patches_run"].results["moons_data"]
    assert any("touches the checker" in note for note in grades["patches_run"].notes)
    # rebinding the notebook's `checks` changes nothing: the official check runs and fails the circles
    assert list(_failed(grades["rebinds_checks"])) == ["moons_data"]
    assert "does not lie along two interleaved half circles" in grades["rebinds_checks"].results["moons_data"]
    # patching numpy is detected
    assert "replaced numpy.allclose" in grades["patches_numpy"].results["bijectors"]
    assert any("assigning to a library's attribute" in note for note in grades["patches_numpy"].notes)


@pytest.mark.slow
def test_edited_deleted_duplicated_and_moved_check_cells_are_reported(batch):
    grades = batch["grades"]
    fake = grades["fakes_output"]
    assert list(_failed(fake)) == ["moons_data"] and "does not lie along" in fake.results["moons_data"]
    assert "check cell 'moons_data' was edited (the official one was run)" in fake.notes
    shuffled = grades["shuffles_checks"]
    assert _failed(shuffled) == {"base_samples": "the check cell is missing from the submission"}
    assert "check cell 'base_samples' was deleted" in shuffled.notes
    assert "check cell 'moons_data': its metadata was changed" in shuffled.notes
    assert any(note.startswith("check cell 'bijectors' appears 2 times") for note in shuffled.notes)
    moved = grades["moves_check"]
    assert list(_failed(moved)) == ["bijectors"]
    assert "check cell 'bijectors' was moved above the answer it checks" in moved.notes


@pytest.mark.slow
def test_writes_to_the_grader_are_caught_and_do_not_leak(batch):
    grades = batch["grades"]
    writer = grades["writes_grader"]
    assert set(_failed(writer)) == set(CHECKS)
    assert "changed the grader's files while it ran: grader/checks.py" in writer.results["moons_data"]
    spoiler = grades["writes_reference"]  # under heavy load its kernel may start too late to write (status)
    assert any("the grader's files changed on disk during this run: reference.ipynb" in note
               for note in spoiler.notes), (spoiler.status, spoiler.notes, spoiler.results)
    # every other submission graded against its own, untouched copy
    assert grades["honest"].score == 5


@pytest.mark.slow
def test_tables_rows_feedback_and_records(batch):
    out = batch["out"]
    with (out / "grades.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert sorted(row["submission"] for row in rows) == sorted(f"{k}/lab.ipynb" for k in batch["grades"])
    assert len({row["submission"] for row in rows}) == len(rows)  # all named lab.ipynb, all unique
    honest = next(row for row in rows if row["submission"] == "honest/lab.ipynb")
    assert (honest["status"], honest["points"], honest["max_points"]) == ("graded", "5", "5")
    assert [honest[name] for name in CHECKS] == ["pass"] * 4
    hangs = next(row for row in rows if row["submission"] == "hangs/lab.ipynb")
    assert hangs["bijectors"].startswith("FAIL: not run") and hangs["points"] == "3"
    assert len(batch["arrived"]) == len(rows)  # each reported as it arrived
    feedback = (out / "submissions" / "moves_check" / "lab" / "feedback.md").read_text()
    assert "| bijectors | 0 / 2 | FAIL |" in feedback and "## What to fix" in feedback
    assert "moved above the answer" in feedback
    executed = nbformat.reads((out / "submissions" / "honest" / "lab" / "executed.ipynb").read_text(), 4)
    texts = [o.get("text", "") for c in executed.cells for o in c.get("outputs", [])]
    assert any(t.startswith("OK: data:") and "[sealed " in t for t in texts)
    assert "| honest/lab.ipynb | graded | 5/5 |" in (out / "grades.md").read_text()


# --- fast: no kernel ---------------------------------------------------------------------------


def _job(content: bytes, reference_text: str, name: str = "x/lab.ipynb") -> Job:
    return Job(name, content, reference_text, flowlab_sources(), timeout=30)


def test_unreadable_and_empty_notebooks_need_no_kernel():
    reference_text = nbformat.writes(make_student_notebook(mini()))
    for content, reason in ((b"\x89PNG\r\n", "not a Jupyter notebook"), (b"{}", "not a Jupyter notebook"),
                            (b'{"cells": [{"cell_type": "markdown", "source": "hi", "metadata": {}}], '
                             b'"metadata": {}, "nbformat": 4, "nbformat_minor": 5}', "no code cells")):
        grade = grade_job(_job(content, reference_text))
        assert grade.status == "unreadable" and grade.score == 0 and grade.max_points == 5
        assert all(reason in message for message in grade.results.values()), grade.results


def test_only_a_check_that_ran_and_passed_passes_matched_by_name():
    reference = Reference.from_text(nbformat.writes(make_student_notebook(mini())))
    records = [  # out of notebook order, with a cell that is not a check and a stray duplicate
        {"id": "c9", "check": "bijectors", "when": "call", "outcome": "xfailed", "message": ""},
        {"id": "c2", "check": None, "when": "call", "outcome": "failed", "message": "NameError: x"},
        {"id": "c5", "check": "base_distribution", "when": "call", "outcome": "skipped", "message": ""},
        {"id": "c3", "check": "moons_data", "when": "call", "outcome": "passed", "message": ""},
        {"id": "c4", "check": "moons_data", "when": "call", "outcome": "failed", "message": "late copy"},
    ]
    verdicts = _verdicts(records, reference, "graded", "the check did not run", notes=[])
    assert verdicts == {"moons_data": None,
                        "base_distribution": "the check did not run to a verdict (skipped)",
                        "base_samples": "the check did not run",
                        "bijectors": "the check did not run to a verdict (xfailed)"}
    timed_out = _verdicts(records, reference, "timeout", "not run: out of time", ["check cell 'base_samples' was deleted"])
    assert timed_out["bijectors"] == "not run: out of time (xfailed)"
    assert timed_out["base_samples"] == "the check cell is missing from the submission"
    failed = [{"id": "c3", "check": "moons_data", "when": "call", "outcome": "failed",
               "message": "\x1b[91mCheckFailed\x1b[0m: `data` has shape (5, 2). Hint: draw more."}]
    assert _verdicts(failed, reference, "graded", "", [])["moons_data"] == "`data` has shape (5, 2). Hint: draw more."


def test_rows_are_named_by_their_path_below_the_common_folder(tmp_path):
    paths = [tmp_path / "a" / "lab.ipynb", tmp_path / "b" / "lab.ipynb", tmp_path / "b" / "c" / "lab.ipynb"]
    assert _relative_names(paths) == ["a/lab.ipynb", "b/lab.ipynb", "b/c/lab.ipynb"]
    assert _relative_names([tmp_path / "a" / "lab.ipynb"]) == ["lab.ipynb"]


def test_points_come_from_the_check_cells_metadata():
    reference = Reference.from_text(nbformat.writes(mini()))
    assert reference.points_possible == {"moons_data": 1, "base_distribution": 1, "base_samples": 1, "bijectors": 2}
    broken = mini()
    broken.cells[DATA + 1].metadata["flowlab"]["points"] = "many"
    with pytest.raises(ValueError, match="'moons_data' has points='many'; points must be a number >= 0"):
        Reference.from_text(nbformat.writes(broken))


def test_the_graded_copy_runs_official_sealed_checks_once():
    reference = Reference.from_text(nbformat.writes(make_student_notebook(mini())))
    submission = mini()
    submission.cells[DATA + 1].source = FAKE_DATA_LINE
    submission.cells.append(copy.deepcopy(submission.cells[DATA + 1]))
    graded, notes = _prepare(submission, reference, key="secret")
    checks = [c for c in graded.cells if c.get("metadata", {}).get("flowlab")]
    assert [c.metadata.flowlab["check"] for c in checks] == CHECKS
    assert checks[0].source == reference.cells["moons_data"].source
    assert checks[0].outputs[0]["text"] == ("OK: data: 10000 points on two moons with noise 0.05"
                                            + _seal.seal("secret", "moons_data") + "\n")
    assert "check cell 'moons_data' was edited (the official one was run)" in notes
    assert any("'moons_data' appears 2 times" in note for note in notes)


def test_feedback_gives_each_check_its_message_and_hint(tmp_path):
    grade = Grade("ann/lab.ipynb", "graded", {"moons_data": None, "bijectors": "b is wrong. Hint: swap them."},
                  {"moons_data": 1.0, "bijectors": 2.0}, notes=["check cell 'bijectors' was edited"])
    text = write_feedback(grade, tmp_path / "feedback.md").read_text()
    assert "Points: **1 / 3**" in text and "| moons_data | 1 / 1 | pass |" in text
    assert "- **bijectors**: b is wrong.  \n  *Hint:* swap them." in text
    assert "check cell 'bijectors' was edited" in text


def test_rows_already_graded_survive_an_interrupted_run(tmp_path, reference):
    paths = []
    for name in ("a", "b", "c"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "lab.ipynb").write_text("not json")
        paths.append(tmp_path / name / "lab.ipynb")

    def interrupt(grade: Grade) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        grade_all(paths, reference, tmp_path / "out", workers=1, progress=interrupt)
    with (tmp_path / "out" / "grades.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [row["status"] for row in rows] == ["unreadable"]  # the finished row


def test_grade_all_accepts_any_executor(tmp_path, reference):
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "lab.ipynb").write_text("{}")
    with ThreadPoolExecutor(1) as executor:
        grades = grade_all([tmp_path / "s" / "lab.ipynb"], reference, tmp_path / "out", executor=executor)
    assert [g.status for g in grades] == ["unreadable"]
    with pytest.raises(ValueError, match="workers must be an integer from 1 to 1,024, got 0"):
        grade_all([], reference, tmp_path / "out", workers=0)


def test_cli_rejects_bad_arguments_naming_them(tmp_path, capsys, reference):
    (tmp_path / "notes.txt").write_text("x")
    assert cli.main(["grade", str(tmp_path / "notes.txt"), "--reference", str(reference)]) == 2
    assert "argument submissions: not a notebook file or folder" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert cli.main(["grade", str(tmp_path / "empty"), "--reference", str(reference)]) == 2
    assert "no .ipynb files found" in capsys.readouterr().err
    assert cli.main(["grade", str(tmp_path), "--reference", str(tmp_path / "notes.txt")]) == 2
    assert "argument --reference: not a notebook file" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        cli.main(["grade", str(tmp_path), "--workers", "0"])
    assert exit_.value.code == 2 and "--workers: must be an integer from 1 to 1,024, got '0'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["check", str(MINI), "--timeout", "-1"])
    assert "--timeout: must be a number > 0 and <= 86400, got '-1'" in capsys.readouterr().err


@pytest.mark.slow
def test_check_command_grades_like_the_instructor(capsys, reference):
    assert cli.main(["check", str(MINI), "--reference", str(reference), "--timeout", "120"]) == 0
    out = capsys.readouterr().out
    assert "bijectors          2/2  pass" in out and "graded: 5/5 points, 4 of 4 checks passed" in out
    untouched = reference
    assert cli.main(["check", str(untouched), "--reference", str(reference), "--timeout", "120"]) == 1
    assert "moons_data         0/1  FAIL: `data` not defined" in capsys.readouterr().out


@pytest.mark.slow
def test_grading_on_a_dask_cluster(tmp_path, reference):
    distributed = pytest.importorskip("distributed", reason="the [cluster] extra (dask distributed) is not installed")
    (tmp_path / "ok").mkdir()
    (tmp_path / "bad").mkdir()
    nbformat.write(mini(), str(tmp_path / "ok" / "lab.ipynb"))
    (tmp_path / "bad" / "lab.ipynb").write_text("nope")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        grades = grade_all([tmp_path / "ok" / "lab.ipynb", tmp_path / "bad" / "lab.ipynb"], reference,
                           tmp_path / "out", executor=client.get_executor(), timeout=120)
    assert [(g.submission, g.status, g.score) for g in grades] == [("bad/lab.ipynb", "unreadable", 0),
                                                                  ("ok/lab.ipynb", "graded", 5)]


# --- the checker's defences, in this process ------------------------------------------------------


@pytest.fixture
def chain_namespace():
    """A namespace as the lab builds it up to the compiled model, checked step by step."""
    import tensorflow as tf
    import tensorflow_probability as tfp

    from flowlab.grader import checks

    tfd, tfb = tfp.distributions, tfp.bijectors
    tf.keras.utils.set_random_seed(1)
    bijectors = []
    for _ in range(3):
        bijectors += [tfb.MaskedAutoregressiveFlow(tfb.AutoregressiveNetwork(
            params=2, hidden_units=[128, 128], activation="relu")), tfb.Permute([1, 0])]
    big_bijector = tfb.Chain(bijectors)
    td = tfd.TransformedDistribution(tfd.MultivariateNormalDiag(loc=[0.0, 0.0]), bijector=big_bijector)
    x = tf.keras.Input(shape=(2,), dtype=tf.float32)
    model = tf.keras.Model(x, td.log_prob(x))
    model.compile(optimizer=tf.keras.optimizers.Adam(1e-3), loss=lambda _, log_prob: -log_prob)
    namespace = {"big_bijector": big_bijector, "td": td, "x": x, "model": model}
    for name in ("flow_chain", "keras_model", "loss_and_optimizer"):
        checks.run(name, namespace)
    return namespace


def test_a_faked_history_does_not_pass_training(chain_namespace, capsys):
    import tensorflow as tf

    from flowlab.grader import checks

    fake = tf.keras.callbacks.History()
    fake.set_model(chain_namespace["model"])
    fake.history, fake.params, fake.epoch = {"loss": list(np.linspace(2.0, 0.3, 80))}, {"steps": 79}, list(range(80))
    with pytest.raises(checks.CheckFailed, match="the optimizer took 0 steps, fewer than the 80 epochs of 79"):
        checks.run("training", {**chain_namespace, "result": fake})

    class Result:
        history = {"loss": list(np.linspace(2.0, 0.3, 80))}

    with pytest.raises(checks.CheckFailed, match="should be the History that model.fit returns, got Result"):
        checks.run("training", {**chain_namespace, "result": Result()})


def test_a_swapped_td_does_not_pass(chain_namespace):
    import tensorflow_probability as tfp

    from flowlab.grader import checks

    exact = tfp.distributions.TransformedDistribution(
        tfp.distributions.MultivariateNormalDiag(loc=[0.0, 0.0]), bijector=chain_namespace["big_bijector"])
    with pytest.raises(checks.CheckFailed, match="`td` is not the distribution the flow_chain check saw"):
        checks.run("training", {**chain_namespace, "td": exact, "result": None})
    with pytest.raises(checks.CheckFailed, match="`td` is not the distribution the flow_chain check saw"):
        checks.run("keras_model", {**chain_namespace, "td": exact})


def test_a_method_replaced_on_the_object_is_caught(chain_namespace):
    from flowlab.grader import checks

    td = chain_namespace["td"]
    td.log_prob = lambda x: np.zeros(len(x))
    with pytest.raises(checks.CheckFailed, match="`td` has its own log_prob"):
        checks.run("flow_chain", chain_namespace)


def test_replacing_a_tool_of_the_checks_is_caught(monkeypatch):
    from flowlab.grader import checks

    monkeypatch.setattr(np, "allclose", lambda *a, **k: True)
    with pytest.raises(checks.CheckFailed, match="the notebook replaced numpy.allclose"):
        checks.run("base_distribution", {})
    monkeypatch.undo()
    import tensorflow_probability as tfp

    monkeypatch.setattr(tfp.distributions.TransformedDistribution, "log_prob", lambda self, x: 0.0, raising=False)
    with pytest.raises(checks.CheckFailed, match=r"replaced .*TransformedDistribution.log_prob"):
        checks.run("base_distribution", {})
    monkeypatch.undo()
    monkeypatch.setattr(checks, "bijectors", lambda namespace: "fine")
    with pytest.raises(checks.CheckFailed, match="replaced flowlab.checks.bijectors"):
        checks.run("bijectors", {})
    monkeypatch.undo()
    # the checks live in their own modules (issue 37): their helpers, and the framework's, are tools too
    from flowlab.grader import check_registry, checks_bijectors, checks_training

    for module, name in ((check_registry, "lookup"), (checks_bijectors, "require"), (checks_training, "evaluate")):
        monkeypatch.setattr(module, name, lambda *a, **k: None)
        with pytest.raises(checks.CheckFailed, match=f"replaced {module.__name__}.{name}"):
            checks.run("base_distribution", {})
        monkeypatch.undo()


def test_run_seals_its_line_only_under_grading(monkeypatch, capsys):
    import tensorflow_probability as tfp

    from flowlab.grader import checks

    namespace = {"zdist": tfp.distributions.MultivariateNormalDiag(loc=[0.0, 0.0])}
    checks.run("base_distribution", namespace)
    assert capsys.readouterr().out == "OK: zdist: standard normal, batch shape [], event shape [2]\n"
    monkeypatch.setattr(checks, "_KEY", "k")
    checks.run("base_distribution", namespace)
    assert capsys.readouterr().out.endswith(_seal.seal("k", "base_distribution") + "\n")
    with pytest.raises(ValueError, match="name must be one of .*moons_data.*, got 'nope'"):
        checks.run("nope", namespace)


def test_the_plugin_file_is_standalone():
    import ast

    tree = ast.parse((HERE.parent / "flowlab" / "grader" / "_nbval_plugin.py").read_text())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    assert imported and not any(name.split(".")[0] == "flowlab" for name in imported), imported
