"""The README's test command is the one CI runs."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci_commands = [line for line in (ROOT / ".ci" / "run").read_text().splitlines()
                   if line.startswith(".venv/bin/python -m pytest")]
    assert len(ci_commands) == 1
    assert f"```bash\n{ci_commands[0]}\n```" in readme
