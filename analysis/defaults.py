"""The defaults of `compare` and `report`, in one place that imports nothing (the CLI shows them
in --help without loading the statistics stack)."""

REPS = 50_000  # bootstrap replications for the headline CIs (the fast bootstrap takes seconds)
MAX_REPS = 2_000_000  # 40x the default: minutes; more would look like a hang
MAX_FRAMES = 1000  # open loop: observed + imagined frames per sequence (memory grows with them)
MAX_SEQUENCES = 64  # open loop: sequences rolled out from the checkpoint
POWER_MAX_SEEDS = 50  # the largest study the seeds-needed statement tries by default
WINDOW = 0.1  # final score: mean over this last fraction of each run's own env frames
METRICS = ("iqm", "mean", "median", "og")
OPENLOOP_SOURCE = "auto"
