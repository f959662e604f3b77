"""The working tree travels to the GPU machine with every call: artifacts/ must stay small."""

from pathlib import Path

ARTIFACTS = Path(__file__).parents[2] / "artifacts"


def test_artifacts_stay_within_the_size_budget():
    """The working tree travels to the GPU machine: artifacts/ stays at or under 30 MB."""
    total = sum(f.stat().st_size for f in ARTIFACTS.rglob("*") if f.is_file())
    assert total <= 30_000_000, f"artifacts/ holds {total / 1e6:.1f} MB"
