"""A live view of runs while they write: the library behind `dreamer-report watch`.

Each JSONL log is followed by a `Tail` that remembers its byte offset and reads only the bytes
appended since the last refresh, so a refresh costs what was written, not what the files hold.
An unterminated last line is held back until its newline arrives (a writer mid-line is
normal); only when it stays unterminated for `torn_after` seconds is it reported as torn. A line
that does not parse (a killed writer's fragment glued to the next line) is reported with its
line number and the rest is kept. A file that shrinks (replaced or truncated) is read again from
its start, and said so. `Watcher.refresh` finds new runs, polls every tail and updates one
`RunState` per run: last step, fps, latest and recent mean score, mask activity, problems.
`table` gives the rows that the terminal and `render_html` (a self-refreshing page) both show.
Episodes come from scores.jsonl (metrics.jsonl's copies of them are ignored while it exists);
scope/ scalars are not followed. A gzipped log (`metrics.jsonl.gz`, a finished run's) cannot
be read from an offset: it is read whole and decompressed again only when its size changes, and
only the decompressed lines past those already seen become rows.
"""

from __future__ import annotations

import datetime
import html
import math
import time
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from analysis import confine, defaults, gzlog, ingest, jsonl, remote
from analysis.ingest import IngestError
from dreamerv3 import safefile

RECENT = 10  # episodes (and mask log lines) in the "recent" means
LOGS = ingest.LOGS  # scores first: episodes come from it
MAX_POLL_BYTES = 1 << 26  # read per file per refresh, so a huge file at start costs bounded memory
COLUMNS = [
    "run",
    "last step",
    "fps",
    "last score",
    f"mean of last {RECENT}",
    "episodes",
    f"mask active (last {RECENT})",
    "horizon_eff",
    "problems",
]


@dataclass
class Tail:
    """Follows one appended-to JSONL file, reading each byte once."""

    path: Path
    torn_after: float = 10.0
    offset: int = 0  # bytes consumed (complete lines) or held in `pending`
    pending: bytes = b""  # the unterminated last line, waiting for its newline
    pending_since: float | None = None
    torn_reported: bool = False
    lines: int = 0  # complete lines seen
    bytes_read: int = 0  # every byte read from disk, for the "nothing read twice" check
    skipping: bool = False  # inside an over-long line: drop bytes up to its newline
    refused: bool = False  # the file links out of its run folder: never read (said once)
    packed_size: int | None = None  # a gzipped log: its size when last decompressed

    def poll(self, now: float) -> tuple[list[dict], list[str]]:
        """Rows of the lines completed since the last poll, and problems found in them."""
        problems: list[str] = []
        url = remote.origin(self.path)  # a run in object storage: its size and new bytes by range
        if confine.leaves_run(self.path.parent, self.path):
            said, self.refused = self.refused, True
            return [], [] if said else [f"{self.path.name}: a link to a file outside the run folder; not read"]
        try:
            size = self.path.stat().st_size if url is None else remote.size(url)
        except OSError:
            return [], []  # not written yet
        if gzlog.is_gzip(self.path):
            return self._poll_gzip(now, url, size)
        if size < self.offset:
            problems.append(
                f"{self.path.name}: shrank from {self.offset:,} to {size:,} bytes; read again from the start"
            )
            self._restart()
        if size == self.offset:
            return [], problems + self._check_torn(now)
        end = self.offset + min(size - self.offset, MAX_POLL_BYTES)  # the rest on the next refresh
        if url is not None:
            new = remote.read_range(url, self.offset, end)
        else:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                new = f.read(end - self.offset)
        self.offset += len(new)
        self.bytes_read += len(new)
        return self._consume(new, now, problems)

    def _restart(self) -> None:
        self.offset, self.pending, self.pending_since, self.lines, self.skipping = 0, b"", None, 0, False

    def _poll_gzip(self, now: float, url: str | None, size: int) -> tuple[list[dict], list[str]]:
        """A gzipped log: read whole and decompressed when its size changed; only the lines past
        those already seen become rows (a log gzipped again with more lines gives just those)."""
        if size == self.packed_size:
            return [], self._check_torn(now)
        self.packed_size = size
        if size > defaults.MAX_UNZIPPED_LOG_BYTES:  # gzip never makes a log larger: not a log
            return [], [
                f"{self.path.name}: {size:,} bytes, more than the limit for a gzipped log "
                f"({defaults.MAX_UNZIPPED_LOG_BYTES:,}); not read"
            ]
        packed = remote.read_range(url, 0, size) if url is not None else self.path.read_bytes()
        self.bytes_read += len(packed)
        text, note = gzlog.unzip(self.path, data=packed)
        problems = [f"{self.path.name}: {note}"] if note else []
        if text is None:
            return [], problems
        seen = self.lines
        self._restart()
        if text.count(b"\n") < seen:
            problems.append(
                f"{self.path.name}: holds fewer lines than the {seen:,} read before; read again from the start"
            )
            seen = 0
        self.offset = len(text)
        return self._consume(text, now, problems, seen)

    def _consume(self, new: bytes, now: float, problems: list[str], seen: int = 0) -> tuple[list[dict], list[str]]:
        """Rows of the lines that `new` completes; the first `seen` lines of the file are only counted."""
        data = self.pending + new
        cut = data.rfind(b"\n") + 1
        complete, self.pending = data[:cut], data[cut:]
        if self.skipping:  # inside an over-long line, already reported: drop it up to its newline
            if complete:
                complete, self.skipping = complete[complete.find(b"\n") + 1 :], False
                self.lines += 1
            else:
                self.pending = b""
        rows = []
        for line in complete.split(b"\n")[:-1]:
            self.lines += 1
            if self.lines <= seen:
                continue
            row, found = _parse(line)
            problems += [f"{self.path.name}:{self.lines}: {text}" for text in found]
            if row is not None:
                rows.append(row)
        if len(self.pending) > jsonl.MAX_LINE_BYTES:  # never hold more than one line's worth
            problems.append(
                f"{self.path.name}:{self.lines + 1}: line longer than {jsonl.MAX_LINE_BYTES:,} bytes; skipped"
            )
            self.pending, self.skipping = b"", True
        self.pending_since = now if self.pending else None  # bytes arrived: still being written
        self.torn_reported = False
        return rows, problems + self._check_torn(now)

    def _check_torn(self, now: float) -> list[str]:
        """A last line without its newline for `torn_after` seconds is torn (reported once)."""
        if (
            self.pending
            and not self.torn_reported
            and self.pending_since is not None
            and now - self.pending_since >= self.torn_after
        ):
            self.torn_reported = True
            return [
                f"{self.path.name}:{self.lines + 1}: last line unterminated for {self.torn_after:g} s "
                f"({len(self.pending)} bytes): torn"
            ]
        return []


def _parse(line: bytes) -> tuple[dict | None, list[str]]:
    """(row of the step and finite numeric values, or None; problems), by ingest's line rules."""
    if not line.strip():
        return None, []
    step, values, problems = jsonl.decode_line(line)
    if step is None:
        return None, problems
    return {"step": step, **{k: v for k, v in values.items() if math.isfinite(v)}}, problems


@dataclass
class RunState:
    """What the view shows of one run, updated from its new rows."""

    name: str
    path: Path
    last_step: int = 0
    latest: dict[str, float] = field(default_factory=dict)  # newest value of every key
    scores: list[float] = field(default_factory=list)  # every episode score, in order
    active: deque = field(default_factory=lambda: deque(maxlen=RECENT))
    progress: deque = field(default_factory=lambda: deque(maxlen=RECENT))  # (seen at, step)
    problems: list[str] = field(default_factory=list)
    new_rows: list[dict] = field(default_factory=list)  # rows of the last refresh

    def update(self, rows: list[dict], now: float) -> None:
        for row in rows:
            self.last_step = max(self.last_step, int(row["step"]))
            self.latest.update(row)
            if "episode/score" in row:
                self.scores.append(row["episode/score"])
            if "train/imag_adapt/active" in row:
                self.active.append(row["train/imag_adapt/active"])
        self.new_rows = rows
        if rows:
            self.progress.append((now, self.last_step))

    def fps(self) -> float | None:
        """The logged policy fps when there is one, else env frames per second seen by the watcher."""
        if "fps/policy" in self.latest:
            return self.latest["fps/policy"]
        if len(self.progress) >= 2 and self.progress[-1][0] > self.progress[0][0]:
            (t0, s0), (t1, s1) = self.progress[0], self.progress[-1]
            return (s1 - s0) / (t1 - t0)
        return None

    def row(self) -> list[str]:
        recent = self.scores[-RECENT:]
        fmt = lambda v, spec: "-" if v is None else format(v, spec)  # noqa: E731
        return [
            self.name,
            f"{self.last_step:,}",
            fmt(self.fps(), ",.0f"),
            fmt(self.scores[-1] if self.scores else None, ",.1f"),
            fmt(sum(recent) / len(recent) if recent else None, ",.1f"),
            str(len(self.scores)),
            fmt(sum(self.active) / len(self.active) if self.active else None, ".0%"),
            fmt(self.latest.get("train/imag_adapt/horizon_eff"), ".2f"),
            "; ".join(self.problems[-2:]) + (f" (+{len(self.problems) - 2} more)" if len(self.problems) > 2 else ""),
        ]


class Watcher:
    """Follows every run under `paths`; `refresh` reads what was appended since the last one."""

    def __init__(self, paths: Sequence[str], torn_after: float = 10.0, rediscover: float = 10.0):
        self.paths, self.torn_after, self.rediscover = list(paths), torn_after, rediscover
        self.runs: dict[Path, RunState] = {}
        self.tails: dict[Path, list[Tail]] = {}
        self._found_at = -math.inf
        self._refused: IngestError | None = None  # why the last discovery found nothing
        self.discover(time.monotonic())
        if not self.runs:
            raise self._refused or IngestError(
                f"{', '.join(self.paths)}: no runs found (expected folders holding scores.jsonl or metrics.jsonl)"
            )

    def discover(self, now: float) -> None:
        """Add runs that appeared under the paths (a run stays once found)."""

        self._found_at = now
        try:
            runs = ingest.discover(self.paths)
        except ingest.IngestError as error:
            self._refused = error
            return  # nothing there yet (or a run being gzipped holds both forms of a log); try again later
        for run in runs:
            key = Path(run.path)
            if key not in self.runs:
                self.runs[key] = RunState(run.name, key)
                self.tails[key] = [Tail(ingest.log_file(key, name), self.torn_after) for name in LOGS]

    def refresh(self, now: float | None = None) -> list[RunState]:
        now = time.monotonic() if now is None else now
        if now - self._found_at >= self.rediscover:
            self.discover(now)
        for key, state in self.runs.items():
            rows = []
            scores_tail = self.tails[key][0]
            for tail in self.tails[key]:
                found, problems = tail.poll(now)
                if tail is not scores_tail and scores_tail.offset:  # episodes come from scores.jsonl
                    found = [{k: v for k, v in r.items() if not k.startswith("episode/")} for r in found]
                rows += found
                state.problems += problems
            rows.sort(key=lambda r: r["step"])
            state.update(rows, now)
        return list(self.runs.values())

    def bytes_read(self) -> int:
        """Every byte read from disk so far (equals the logs' total size when each was read once)."""
        return sum(tail.bytes_read for tails in self.tails.values() for tail in tails)

    def table(self) -> tuple[list[str], list[list[str]]]:
        return COLUMNS, [state.row() for state in sorted(self.runs.values(), key=lambda s: s.name)]


def check_page(page: str | None) -> None:
    """ValueError (one line) when `page`, the --html target, cannot be a page this command replaces."""
    if page and Path(page).is_dir():
        raise ValueError(f"--html {page}: is a folder; expected a file name for the page")
    if page and Path(page).exists() and not Path(page).is_file():  # a device or FIFO: never replaced
        raise ValueError(f"--html {page}: exists and is not a regular file; expected a file name for the page")


def follow(
    watcher: Watcher, interval: float, iterations: int = 0, page: str | None = None
) -> Iterator[tuple[list[str], list[list[str]], str]]:
    """Refresh `watcher` every `interval` seconds and yield (columns, rows, time of day) after each
    refresh, `iterations` times (0: until the caller stops). With `page`, the self-refreshing HTML
    view there is replaced at each refresh (never inside a run being watched: OutputInInput)."""
    done = 0
    while True:
        watcher.refresh()
        columns, rows = watcher.table()
        stamp = datetime.datetime.now().strftime("%H:%M:%S")
        if page:
            confine.refuse_inside(page, watcher.runs, "--html")
            write_atomic(Path(page), render_html(columns, rows, interval, stamp))
        yield columns, rows, stamp
        done += 1
        if iterations and done >= iterations:
            return
        time.sleep(interval)


def render_html(columns: list[str], rows: list[list[str]], interval: float, stamp: str) -> str:
    """The view as a page that reloads itself every `interval` seconds; every cell escaped."""
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(v)}</td>" for v in row) + "</tr>" for row in rows)
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="refresh" content="{max(1, round(interval))}">'
        f"<title>dreamer-report watch</title><style>body{{font-family:sans-serif;font-size:10pt}}"
        f"table{{border-collapse:collapse}}td,th{{border:1px solid #bbb;padding:2px 6px;text-align:left}}"
        f"th{{background:#eee}}</style></head><body><h1>dreamer-report watch</h1>"
        f"<p>{len(rows)} run(s); updated {html.escape(stamp)}; this page reloads every "
        f"{max(1, round(interval))} s.</p><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
        f"</body></html>"
    )


def write_atomic(path: Path, text: str) -> None:
    """Replace `path` in one step, so a browser reloading it never sees half a page."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    safefile.write_replace(path, text.encode("utf-8"))  # a link at `path` is replaced, never written through
