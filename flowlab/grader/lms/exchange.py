"""The instructor's world around ``flowlab grade``: LMS downloads in, a roster, LMS gradebooks out,
each in its own module: :mod:`.intake` (Canvas's and Moodle's downloads, every file accounted
for), :mod:`.roster` (the class list, matched to the submissions), :mod:`.times` (submission
times, for the late policy) and :mod:`.gradebooks` (Canvas's export and Moodle's worksheet filled
in), in the CSV dialects of :mod:`.tables`.

This module gathers their names: ``flowlab.lms`` (the old flat name) and
``from flowlab.grader.lms import exchange as lms`` give every one of them, as before the split.
"""

from __future__ import annotations

from flowlab.grader.lms.gradebooks import Result, check_gradebook, fill_canvas, fill_moodle, results_from_rows
from flowlab.grader.lms.intake import (MAX_MEMBER_BYTES, MAX_MEMBERS, MAX_TOTAL_BYTES, Collected, Identity,
                                       Skipped, Student, Submitted, collect, identify)
from flowlab.grader.lms.roster import Roster, handed_in_by, match_roster, read_roster
from flowlab.grader.lms.tables import LMSFormatError, read_csv_records
from flowlab.grader.lms.times import attach_times, moodle_times, read_times

__all__ = ["Student", "Submitted", "Skipped", "Collected", "Roster", "MAX_MEMBERS", "MAX_MEMBER_BYTES",
           "MAX_TOTAL_BYTES", "collect", "read_roster", "match_roster", "fill_canvas", "fill_moodle",
           "check_gradebook", "read_times", "moodle_times", "attach_times", "read_csv_records",
           "results_from_rows", "LMSFormatError", "Identity", "identify", "handed_in_by", "Result"]
