"""The trainer's exceptions, in one module that imports nothing of the project.

Each is a problem the user can fix, carried as one line; `main.py` prints it and exits with
code 2 (StorageError at the final upload: 1, the run itself went well). Anything else that
escapes is a bug and keeps its traceback.
"""


class BadInput(Exception):
    """Bad flags, presets or settings, found before a run starts: one line for the user."""


class UsageError(Exception):
    """A bad setting found while building a run (env, agent, logger): one line, exit code 2."""


class ResumeError(UsageError):
    """No complete checkpoint of the run loads (damaged, or of another model size)."""


class LinkInLogdir(UsageError):
    """A path the trainer would write through is a symbolic link or a special file (a FIFO)."""


class CheckpointError(ValueError):
    """A checkpoint file that is not plain data; the message names the file."""


class StorageError(OSError):
    """A remote call failed; the message is one line naming the URL."""
