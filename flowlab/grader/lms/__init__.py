"""The grader and the LMSs: their downloads in, a roster, their gradebooks out (:mod:`.exchange`),
in the CSV dialects they write (:mod:`.tables`)."""
