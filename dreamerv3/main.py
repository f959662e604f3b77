"""DreamerV3 trainer entry point (the README's training commands).

  python dreamerv3/main.py --logdir DIR/{timestamp} --configs atari100k size200m \
    --task atari100k_alien --script train --jax.platform cpu ...

Config = `defaults` of configs.yaml, then each `--configs` preset in order,
then the flags (configs.py). Bad input (unknown flag, preset, task or an invalid
`agent.imag_adapt` value) prints one line to stderr and exits with code 2.
"""

import errno
import os
import sys

# Run as a script, Python puts this folder first on sys.path, where our
# modules (logs.py, replay.py, ...) could shadow top-level packages.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _HERE]

import elements  # noqa: E402

from dreamerv3 import configs as configlib  # noqa: E402
from dreamerv3.errors import BadInput, UsageError  # noqa: E402


def jax_platforms(platform):
    """The backends jax may start: the chosen one, plus the CPU off CPU, where
    host callbacks (the parameter init draws on the host) need a CPU device."""
    return platform if platform == "cpu" else f"{platform},cpu"


def setup_jax(config):
    """Apply jax.* before any jax computation."""
    import jax

    jax.config.update("jax_platforms", jax_platforms(config.jax.platform))
    jax.config.update("jax_debug_nans", bool(config.jax.debug_nans))
    jax.config.update("jax_disable_jit", not config.jax.jit)
    if not config.jax.prealloc:
        os.environ["XLA_PYTHON_CLIENT_PREALLOCATE"] = "false"
    try:
        jax.devices()
    except (RuntimeError, AssertionError) as e:
        # jax raises RuntimeError or a bare AssertionError when a backend is missing.
        detail = str(e).strip().splitlines()[0] if str(e).strip() else "jax found no such backend"
        raise BadInput(f"jax.platform '{config.jax.platform}' is not available here ({detail})")


def main(argv=None, agent_cls=None):
    """Returns the exit code: 0 ok, 2 bad input, 1 a write that failed for want of room (the run
    resumes from its last complete checkpoint) or a failed final upload."""
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        config = configlib.parse(argv)
    except BadInput as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    try:
        setup_jax(config)
    except BadInput as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    from dreamerv3 import population, runlock, storage

    try:
        members = population.member_configs(config) if population.is_population(config) else None
    except BadInput as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    runs = members or [config]
    from dreamerv3 import logs
    from dreamerv3 import run as runlib

    try:
        runlib.check_memory(runs)  # a population that does not fit: refused before any folder is made
    except UsageError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    mirrors = []
    if storage.is_remote(config.logdir):  # written locally, kept in step with the bucket
        try:
            for i, member in enumerate(runs):  # a population: one mirror per member's prefix
                mirrors.append(storage.Mirror(member.logdir))
                print(f"Remote logdir: {mirrors[-1].url} ({mirrors[-1].pull()} files pulled)")
                runs[i] = member.update(logdir=str(mirrors[-1].local))
        except storage.StorageError as e:
            storage.discard(mirrors)
            print(f"error: --logdir {e}", file=sys.stderr)
            return 2
        config = runs[0]
    for member in runs:
        packed = packed_log(member.logdir)
        if packed:
            storage.discard(mirrors)
            print(
                f"error: --logdir {member.logdir} holds {packed}, a packed run (its logs gzipped for "
                f"shipping): training there would write {packed[:-3]} beside it. Use another logdir, "
                "or gunzip its logs to continue it",
                file=sys.stderr,
            )
            return 2
        busy = runlock.claim(member.logdir)  # None, or one line naming the process that holds it
        if busy:
            storage.discard(mirrors)
            print(f"error: {busy}", file=sys.stderr)
            return 2
        logdir = elements.Path(member.logdir)
        try:
            logdir.mkdir(parents=True)
            logs.refuse_links(member.logdir)  # config.yaml is written next: never through a link or a FIFO
            member.save(logdir / "config.yaml")
        except OSError as e:  # a parent that is a file, no permission, a full disk
            print(f"error: --logdir {member.logdir}: cannot write there ({e.strerror or e})", file=sys.stderr)
            return 2
        except UsageError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        print("Logdir:", logdir)
    try:
        with storage.syncing(mirrors, config.run.sync_every):
            runlib.SCRIPTS[config.script](runs, agent_cls)
    except UsageError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except storage.StorageError as e:  # the final upload: its message says where the local copy is
        print(f"error: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        if e.errno not in DISK_FULL:
            raise
        print(
            f"error: cannot write {e.filename or config.logdir}: {e.strerror or e}; the run stopped and its "
            "last complete checkpoint is kept: free some space and start the same command again to resume",
            file=sys.stderr,
        )
        return 1
    return 0


# A write that fails for want of room (disk, quota, file size): exit code 1, the run resumes.
DISK_FULL = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}


def packed_log(logdir):
    """The first gzipped log (`dreamer-sweep pack --gzip-logs`) in `logdir`, or None."""
    for name in ("metrics.jsonl.gz", "scores.jsonl.gz"):
        if os.path.lexists(os.path.join(logdir, name)):
            return name
    return None


if __name__ == "__main__":
    sys.exit(main())
