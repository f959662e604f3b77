"""The working tree travels to the GPU machine with every call: artifacts/ must stay small."""

import re
from pathlib import Path

ARTIFACTS = Path(__file__).parents[2] / "artifacts"
BUDGET_MB = 40  # the size artifacts/ may take; artifacts/README.md says it


def test_artifacts_stay_within_the_size_budget():
    """artifacts/ stays within its budget (the whole tree may carry 64 MiB to the machine)."""
    total = sum(f.stat().st_size for f in ARTIFACTS.rglob("*") if f.is_file())
    assert total <= BUDGET_MB * 1_000_000, f"artifacts/ holds {total / 1e6:.1f} MB of its {BUDGET_MB} MB"


def test_the_artifacts_readme_states_the_budget_the_test_holds():
    """The budget is said once, in artifacts/README.md, as the figure above."""
    stated = re.findall(r"(\d+(?:\.\d+)?) MB", (ARTIFACTS / "README.md").read_text())
    assert stated == [str(BUDGET_MB)], stated
