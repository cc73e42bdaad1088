"""Build a class of full-lab submissions of every kind (issues 12 and 25), from the solution and
student notebooks of a flowlab checkout: a folder of <student>/lab.ipynb, and the same class as an
LMS would hand it over: a Canvas "Download submissions" zip (late marks, a resubmission), a roster,
a Canvas gradebook export and a Moodle grading worksheet to fill in.

    python benchmarks/grading_class.py . OUT_FOLDER
    flowlab grade OUT_FOLDER/class --workers 2 --timeout 120 --out grades
    flowlab grade OUT_FOLDER/canvas.zip --roster OUT_FOLDER/roster.csv --format canvas \
        --gradebook OUT_FOLDER/canvas_export.csv --assignment flows --workers 2 --timeout 120 --out grades-canvas
"""

import copy
import csv
import json
import sys
import zipfile
from pathlib import Path

import nbformat

root, out = Path(sys.argv[1]), Path(sys.argv[2])
SOLUTION = root / "notebooks" / "normalizing_flows.ipynb"
STUDENT = root / "notebooks" / "normalizing_flows_student.ipynb"


def solution():
    return nbformat.read(str(SOLUTION), as_version=4)


def find(nb, text):
    hits = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and text in c.source]
    assert len(hits) == 1, (text, hits)
    return hits[0]


def check_index(nb, name):
    return next(i for i, c in enumerate(nb.cells) if c.get("metadata", {}).get("flowlab", {}) not in ({}, None)
                and isinstance(c.metadata.flowlab, dict) and c.metadata.flowlab.get("check") == name)


def insert_after(nb, index, source):
    nb.cells.insert(index + 1, nbformat.v4.new_code_cell(source))
    return nb


def replace(nb, old, new):
    i = find(nb, old)
    nb.cells[i].source = nb.cells[i].source.replace(old, new)
    return nb


def one_epoch(nb):
    return replace(nb, "    epochs=epochs,", "    epochs=1,")


SETUP = "import flowlab  # must come before TensorFlow"
kinds = {}
kinds["alice"] = solution()
kinds["bob"] = insert_after(solution(), find(solution(), SETUP), (
    "import sys\nget_ipython().events.register('pre_run_cell', "
    "lambda *a: print('W tensorflow: 5 out of the last 5 calls triggered tf.function retracing', file=sys.stderr))"))
kinds["carol"] = nbformat.read(str(STUDENT), as_version=4)
nb = solution(); kinds["dave"] = insert_after(nb, find(nb, "model.fit("), "while True:\n    pass")
nb = solution(); kinds["erin"] = insert_after(nb, find(nb, "model.fit("), "import os\nos._exit(1)")
kinds["frank"] = "Dear professor, my notebook is attached as a PDF.\n"
kinds["peggy"] = json.dumps({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5})
nb = solution(); nb.cells[check_index(nb, "flow_samples")].metadata["flowlab"] = "flow_samples"; kinds["grace"] = nb
nb = one_epoch(solution())
kinds["heidi"] = insert_after(nb, find(nb, SETUP), (
    "class _Fake:\n    def __getattr__(self, name):\n"
    "        return lambda g: print('OK: trained 80 epochs; held-out NLL within 0.5 nats of the exact density')\n"
    "checks = _Fake()"))
nb = one_epoch(solution())
kinds["ivan"] = insert_after(nb, find(nb, SETUP), (
    "import flowlab.checks\nflowlab.checks.training = "
    "lambda g: 'trained 80 epochs; held-out NLL within 0.5 nats of the exact density'"))
nb = one_epoch(solution())
kinds["judy"] = insert_after(nb, find(nb, "model.fit("), (
    "class _History:\n    history = {'loss': list(np.linspace(1.8, 0.35, 80))}\n"
    "class _Exact:\n    bijector = big_bijector\n"
    "    def log_prob(self, x):\n        return flowlab.moons_log_prob(np.asarray(x), noise=0.05)\n"
    "result, td = _History(), _Exact()"))
nb = solution()
fake = nb.cells[check_index(nb, "training")]
fake.source = "print('OK: trained 80 epochs; held-out NLL within 0.5 nats of the exact density')"
nb = one_epoch(nb)
dup = copy.deepcopy(nb.cells[check_index(nb, "moons_data")]); dup.id = "dup-moons"
nb.cells.append(dup)
del nb.cells[check_index(nb, "base_samples")]
kinds["mallory"] = nb
nb = solution()
kinds["niaj"] = insert_after(nb, find(nb, SETUP), (
    "import pathlib\np = pathlib.Path(flowlab.__file__).parent / 'checks.py'\np.chmod(0o644)\n"
    "p.write_text(p.read_text().replace('_require(scores[\"kl_to_exact\"] < MAX_KL', '_require(True'))"))
kinds["olivia"] = replace(solution(), "zsamples = td.sample(moon_n)\n### END SOLUTION\nplots.plot_points(np.asarray(zsamples), \"Samples from the trained",
                          "zsamples = data\n### END SOLUTION\nplots.plot_points(np.asarray(zsamples), \"Samples from the trained")
kinds["sybil"] = insert_after(solution(), find(solution(), SETUP), "hog = np.ones((60_000, 60_000))")
kinds["trent"] = insert_after(solution(), find(solution(), SETUP), "import numpy\nnumpy.allclose = lambda *a, **k: True")
TRAINING_LINE = "trained 80 epochs; held-out NLL within 0.5 nats of the exact density"
for cell in nbformat.read(str(STUDENT), as_version=4).cells:  # the reference's own OK line
    if isinstance(cell.get("metadata", {}).get("flowlab"), dict) and cell.metadata.flowlab.get("check") == "training":
        TRAINING_LINE = cell.outputs[0]["text"].strip().removeprefix("OK: ")
nb = one_epoch(solution())  # issue 25's forged case: the entry point replaced indirectly, the seal genuine
kinds["victor"] = insert_after(nb, find(nb, SETUP), (
    "import importlib\nchecker = importlib.import_module('flowlab.' + 'checks')\n"
    "registry = vars(checker)['_REG' + 'ISTRY']\nreal = registry['train' + 'ing']\n"
    f"registry['train' + 'ing'] = type(real)(real.name, lambda ns: {TRAINING_LINE!r}, real.points, (), ())"))
kinds["wendy"] = solution()  # honest, handed in late
kinds["xavier"] = solution()  # resubmitted: the first try below is the student version, the second this
kinds["yolanda"] = insert_after(solution(), find(solution(), SETUP), (
    "import subprocess\nsubprocess.run(\"cd / && env -i setsid sh -c 'sleep 600 >/dev/null 2>&1 &'\", shell=True)"))


def text(notebook):
    return notebook if isinstance(notebook, str) else nbformat.writes(notebook)


for name, notebook in kinds.items():
    path = out / "class" / name / "lab.ipynb"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text(notebook))

# the same class as Canvas hands it over, with a roster and the gradebooks to fill in
ids = {name: str(1000 + i) for i, name in enumerate(kinds)}
with zipfile.ZipFile(out / "canvas.zip", "w") as archive:
    for name, notebook in kinds.items():
        late = "_late" if name in ("wendy", "dave") else ""
        if name == "xavier":
            archive.writestr(f"{name}smith_{ids[name]}_5000_lab.ipynb", text(kinds["carol"]))
            archive.writestr(f"{name}smith_{ids[name]}_5001_lab-1.ipynb", text(notebook))
        else:
            archive.writestr(f"{name}smith{late}_{ids[name]}_{5100 + int(ids[name])}_lab.ipynb", text(notebook))
with (out / "roster.csv").open("w", newline="") as handle:
    writer = csv.writer(handle)
    writer.writerow(["student_id", "name", "email"])
    writer.writerows([[ids[name], f"{name.title()} Smith", f"{name}@uni.edu"] for name in kinds])
    writer.writerow(["9999", "Zoe Absent", "zoe@uni.edu"])
with (out / "canvas_export.csv").open("w", newline="") as handle:
    writer = csv.writer(handle)
    writer.writerow(["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "Normalizing flows lab (77)",
                     "Quiz 1 (78)"])
    writer.writerow(["    Points Possible", "", "", "", "", "100", "10"])
    writer.writerows([[f"Smith, {name.title()}", ids[name], f"s{ids[name]}", f"{name}@uni.edu", "A", "", "7"]
                      for name in kinds])
with (out / "moodle_worksheet.csv").open("w", newline="") as handle:
    writer = csv.writer(handle)
    writer.writerow(["Identifier", "Full name", "Email address", "Status", "Grade", "Maximum Grade",
                     "Grade can be changed", "Last modified (submission)", "Last modified (grade)", "Feedback comments"])
    writer.writerows([[f"Participant {ids[name]}", f"{name.title()} Smith", f"{name}@uni.edu", "Submitted", "",
                       "100.00", "Yes", "", "", ""] for name in kinds])
print(f"wrote {len(kinds)} submissions under {out / 'class'}, and canvas.zip, roster.csv, canvas_export.csv, "
      f"moodle_worksheet.csv in {out}")
