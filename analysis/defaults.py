"""The defaults of `compare` and `report`, the names of a run's logs and the limits on reading
them, in one place that imports nothing (the CLI shows them in --help without loading the
statistics stack; the readers and the remote listing share the names)."""

REPS = 50_000  # bootstrap replications for the headline CIs (the fast bootstrap takes seconds)
MAX_REPS = 2_000_000  # 40x the default: minutes; more would look like a hang
MAX_FRAMES = 1000  # open loop: observed + imagined frames per sequence (memory grows with them)
MAX_SEQUENCES = 64  # open loop: sequences rolled out from the checkpoint
POWER_MAX_SEEDS = 50  # the largest study the seeds-needed statement tries by default
WINDOW = 0.1  # final score: mean over this last fraction of each run's own env frames
METRICS = ("iqm", "mean", "median", "og")
OPENLOOP_SOURCE = "auto"
LOGS = ("scores.jsonl", "metrics.jsonl")  # a run's JSONL logs, by the trainer's names
GZIP = ".gz"  # a log may be stored gzipped: metrics.jsonl.gz (read as if it were metrics.jsonl)
RUN_FILES = LOGS + tuple(name + GZIP for name in LOGS)  # a folder holding one of these is a run
# A gzipped log is decompressed into memory; a real log is megabytes (a 50M-frame run's metrics
# a few hundred), so more than this is a gzip bomb or not a log, and the file is skipped.
MAX_UNZIPPED_LOG_BYTES = 1 << 30
UNZIP_BATCH_BYTES = 256 << 20  # decompressed logs held at once while a batch of them is parsed
SCORE_KEY = "episode/score"  # an episode's score, as the trainer logs it (and foreign files by default)
EVENT_FILE_PREFIX = "events.out.tfevents."  # a folder holding a TensorBoard event file is a run


def is_event_file(name: str) -> bool:
    return name.startswith(EVENT_FILE_PREFIX)


def is_run_file(name: str) -> bool:
    """A file whose presence makes its folder a run: a log, or a TensorBoard event file."""
    return name in RUN_FILES or is_event_file(name)
