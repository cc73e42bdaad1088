"""The grader: the notebook's checks, the student hand-out, grading submissions (one sandboxed job per
notebook), gradebooks, late policy, Gradescope and LMS exports."""
