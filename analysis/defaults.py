"""The defaults of `compare` and `report`, in one place that imports nothing (the CLI shows them
in --help without loading the statistics stack)."""

REPS = 50_000  # bootstrap replications for the headline CIs (the fast bootstrap takes seconds)
WINDOW = 0.1  # final score: mean over this last fraction of each run's own env frames
METRICS = ("iqm", "mean", "median", "og")
OPENLOOP_SOURCE = "auto"
