"""The per-notebook limits ``flowlab grade`` and ``flowlab check`` apply by default.

They live apart from :mod:`flowlab.grader.grade` so that the CLI can show them in ``--help`` without
importing the grader (nbformat and jsonschema take about a second to import).
"""

#: Wall-clock seconds one notebook may run.
DEFAULT_TIMEOUT = 600.0
#: Memory one notebook's kernel may use, in MiB.
DEFAULT_MEMORY_MB = 4096
