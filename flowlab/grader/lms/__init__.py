"""The grader and the LMSs: their downloads in (:mod:`.intake`), a roster (:mod:`.roster`),
submission times (:mod:`.times`), their gradebooks out (:mod:`.gradebooks`), all gathered in
:mod:`.exchange` (``flowlab.lms``), in the CSV dialects they write (:mod:`.tables`)."""
