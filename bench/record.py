"""Where a benchmark's numbers go: one JSON file per benchmark under bench/results/.

    record.save('bench_params', tables, args)   # -> bench/results/bench_params.json

Each file holds the command that made it, the commit, the date, the machine (CPU model and
core count, the load average before and after), the jax version, and the tables as columns
and rows of already formatted cells. `bench/render.py` turns the files into the tables of
bench/README.md; nothing there is typed by hand. A benchmark's entry point is
`record.run(name, main)`: it prints as before, and the Markdown tables it printed (its other
lines as notes) are saved; `--json PATH` writes them elsewhere, `--json ''` nowhere.
"""

import json
import os
import platform
import shlex
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, "results")


def default_path(name):
    return os.path.join(RESULTS, f"{name}.json")


def table(title, columns, rows):
    """One table: `rows` are lists of cells, formatted as they are to be shown."""
    rows = [[str(cell) for cell in row] for row in rows]
    assert all(len(row) == len(columns) for row in rows), (columns, rows)
    return {"title": title, "columns": list(columns), "rows": rows}


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def commit():
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=HERE, capture_output=True, text=True, timeout=10
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=HERE,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        return out.stdout.strip() + ("+edits" if dirty else "") if out.returncode == 0 else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def save(name, tables, path, notes=(), load_before=None):
    """Write the benchmark's tables to `path` (nothing when `path` is empty); returns the path.
    load_before: the 1-minute load average when the benchmark started (the machine may be shared)."""
    if not path:
        return None
    try:
        import jax

        jax_version = f"{jax.__version__} {jax.default_backend()}"
    except Exception:  # a benchmark that does not use jax
        jax_version = "not used"
    argv, skip = [os.path.relpath(os.path.abspath(sys.argv[0]), os.path.dirname(HERE))], False
    for arg in sys.argv[1:]:  # the command as given, without where its JSON went
        if not skip and not arg.startswith("--json"):
            argv.append(arg)
        skip = arg == "--json"
    record = {
        "bench": name,
        "command": "python " + " ".join(shlex.quote(a) for a in argv),
        "commit": commit(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": f"{cpu_model()}, {os.cpu_count()} cores",
        "load_average": {
            "before": round(load_before if load_before is not None else os.getloadavg()[0], 1),
            "after": round(os.getloadavg()[0], 1),
        },
        "jax": jax_version,
        "tables": list(tables),
        "notes": list(notes),
    }
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        json.dump(record, f, indent=1)
        f.write("\n")
    return path


class _Tee:
    def __init__(self, stream):
        self.stream, self.parts = stream, []

    def write(self, text):
        self.parts.append(text)
        return self.stream.write(text)

    def flush(self):
        self.stream.flush()

    def __getattr__(self, name):
        return getattr(self.stream, name)


def parse(text):
    """The Markdown tables a benchmark printed, and its other lines as notes."""
    tables, notes, lines = [], [], text.splitlines()
    i, title = 0, ""
    while i < len(lines):
        line = lines[i].strip()
        is_table = line.startswith("|") and i + 1 < len(lines) and lines[i + 1].strip().startswith("|---")
        if is_table:
            columns = [c.strip() for c in line.strip("|").split("|")]
            rows, i = [], i + 2
            while i < len(lines) and lines[i].strip().startswith("|"):
                rows.append([c.strip() for c in lines[i].strip().strip("|").split("|")])
                i += 1
            tables.append(table(title or f"Table {len(tables) + 1}", columns, rows))
            title = ""
            continue
        if line:
            notes.append(line)
            title = line.rstrip(":")
        i += 1
    return tables, [n for n in notes if not any(t["title"] == n.rstrip(":") for t in tables)]


class capture:
    """`with record.capture('bench_env', args.json):` prints as before and, when the block ends
    without an error, saves the printed tables (and the other printed lines as notes)."""

    def __init__(self, name, path):
        self.name, self.path, self.load = name, path, os.getloadavg()[0]

    def __enter__(self):
        self.tee = sys.stdout = _Tee(sys.stdout)
        return self

    def __exit__(self, kind, error, trace):
        sys.stdout = self.tee.stream
        if kind is None:
            tables, notes = parse("".join(self.tee.parts))
            written = save(self.name, tables, self.path, notes, self.load)
            if written:
                print(f"results: {os.path.relpath(written)}")
        return False


def run(name, main):
    """Run a benchmark's `main()` under `capture`: takes `--json PATH` off the command line first
    (default bench/results/<name>.json; `--json ''` writes nothing), so `main` never sees it."""
    path, argv, i = default_path(name), [sys.argv[0]], 1
    while i < len(sys.argv):
        if sys.argv[i] == "--json" and i + 1 < len(sys.argv):
            path, i = sys.argv[i + 1], i + 2
        elif sys.argv[i].startswith("--json="):
            path, i = sys.argv[i].split("=", 1)[1], i + 1
        else:
            argv.append(sys.argv[i])
            i += 1
    sys.argv[:] = argv
    with capture(name, path):
        return main()
