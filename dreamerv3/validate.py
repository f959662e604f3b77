"""The one set of checks for values a user or a file hands in: names, flag keys, numbers,
seed lists, texts and YAML documents.

The trainer's flags and arms files, the sweep file and its `--set` overrides all pass
through these functions, so a value is refused (or taken) the same way wherever it comes
from. Each check raises Invalid with one line that quotes at most a short prefix of the
value (`show`); the caller adds where the value came from (a flag, a file and line).
Sizes and counts are checked before anything is expanded: a seed range is counted, not
listed, and a YAML document is scanned for its size, aliases, tags and depth before it is
built. This module imports only the standard library and ruamel.yaml (no jax).
"""

import errno
import math
import os
import re
import stat

import ruamel.yaml
from ruamel.yaml import events

NAME = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9_.-]*\Z")  # a name that becomes a folder name
FLAG = re.compile(r"\A[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*\Z")  # a dotted key
SEEDS = re.compile(r"\A\d{1,10}(-\d{1,10})?(,\d{1,10}(-\d{1,10})?)*\Z")
CONTROL = re.compile(r"[\x00-\x1f\x7f]")
MAX_NAME = 100  # characters of a name
MAX_TEXT = 4096  # characters of a text value
MAX_SEED = 2**32 - 1  # seeds are uint32 in the trainer
MAX_YAML_BYTES = 256 * 1024
MAX_ALIASES = 16
MAX_DEPTH = 32
SHOWN = 40  # characters of a value quoted in a message


class Invalid(ValueError):
    """A value that fails its check: one line, without where it came from; `line` is the
    1-based line in a YAML document when known."""

    def __init__(self, message, line=None):
        super().__init__(message)
        self.line = line


def show(value, limit=SHOWN):
    """A short quote of `value` for a message: a text's first `limit` characters (repr-escaped,
    so a newline shows as \\n), a container by its kind and size, never the whole of it."""
    if isinstance(value, str):
        text = repr(value[:limit])
        return text + ("..." if len(value) > limit else "")
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, int):
        return str(value) if value.bit_length() <= 64 else f"a {value.bit_length()}-bit number"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (list, tuple, set)):
        return f"a list of {len(value)} items"
    if isinstance(value, dict):
        return f"a mapping of {len(value)} keys"
    return f"a {type(value).__name__}"


def clip(text, limit=SHOWN):
    """`text` cut to `limit` characters, escaped as `show` does, without quotes."""
    text = str(text)
    return repr(text[:limit])[1:-1] + ("..." if len(text) > limit else "")


def one_line(message, limit=300):
    """A message as one line: control characters escaped (a newline shows as \\n), cut at `limit`."""
    text = CONTROL.sub(lambda m: repr(m.group())[1:-1], str(message))
    return text if len(text) <= limit else text[:limit] + "..."


def name(value, what):
    """`value` if it is a name (letters, digits, '.', '_', '-'; first a letter or digit)."""
    if not isinstance(value, str) or len(value) > MAX_NAME or not NAME.match(value):
        raise Invalid(
            f"{what} {show(value)}: expected letters, digits, '.', '_' or '-' "
            f"(first a letter or digit, at most {MAX_NAME}; it becomes part of a folder name)"
        )
    return value


def flag_key(value, what):
    """`value` (leading dashes dropped) if it is a dotted key such as agent.opt.lr, taken
    literally: never a pattern."""
    key = value.lstrip("-") if isinstance(value, str) else value
    if not isinstance(key, str) or len(key) > MAX_NAME * 2 or not FLAG.match(key):
        raise Invalid(f"{what} {show(value)}: expected a dotted flag name such as agent.opt.lr")
    return key


def text(value, what, empty=False):
    """`value` if it is a text without control characters (a newline included)."""
    if not isinstance(value, str) or (not empty and not value.strip()):
        raise Invalid(f"{what}: expected a non-empty text, got {show(value)}")
    if len(value) > MAX_TEXT or CONTROL.search(value):
        raise Invalid(
            f"{what} {show(value)}: expected at most {MAX_TEXT} characters and no "
            "control characters (newline, tab, ...)"
        )
    return value


def number(value, what, low=None, high=None, whole=False, above=False):
    """`value` if it is a finite number (not a bool) in [low, high] ((low, high] when `above`);
    whole: an integer value. Integers past a float or a C integer are refused, not overflowed."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if ok and isinstance(value, int):
        ok = value.bit_length() <= 62
    if ok:
        ok = math.isfinite(value) and (not whole or float(value).is_integer())
    if ok and low is not None:
        ok = value > low if above else value >= low
    if ok and high is not None:
        ok = value <= high
    if not ok:
        lead = f"{what}: " if what else ""
        raise Invalid(f"{lead}expected {_range(low, high, whole, above)}, got {show(value)}")
    return int(value) if whole else value


def _range(low, high, whole, above):
    kind = "a whole number" if whole else "a finite number"
    parts = []
    if low is not None:
        parts.append(f"{'>' if above else '>='} {low}")
    if high is not None:
        parts.append(f"<= {high}")
    return kind + (" " + " and ".join(parts) if parts else "")


def seeds(value, what, most):
    """A seed list -> [int]: a text '0,1,2', '0-7', '0-3,8' (ranges inclusive), an int or a
    list of ints, each 0 .. MAX_SEED, no repeats, 1 to `most` of them. Counted before any
    range is expanded; '' or blank is refused (no seeds is not a seed list)."""
    lead = f"{what}: " if what else ""
    if isinstance(value, int) and not isinstance(value, bool):
        value = [value]
    if isinstance(value, str):
        compact = value.replace(" ", "")
        if len(compact) > MAX_TEXT or not SEEDS.match(compact):
            raise Invalid(f"{lead}expected seeds like 0,1,2 or 0-7 or 0-3,8, got {show(value)}")
        spans = []
        for part in compact.split(","):
            first, _, last = part.partition("-")
            first, last = int(first), int(last or first)
            if first > last or last > MAX_SEED:
                raise Invalid(f"{lead}range {part} is empty or goes past {MAX_SEED} (ranges are first-last)")
            spans.append((first, last))
        count = sum(last - first + 1 for first, last in spans)
        if count > most:
            raise Invalid(f"{lead}{count} seeds; expected 1 to {most}")
        value = [s for first, last in spans for s in range(first, last + 1)]
    if (
        not isinstance(value, list)
        or not 1 <= len(value) <= most
        or not all(isinstance(s, int) and not isinstance(s, bool) and 0 <= s <= MAX_SEED for s in value)
    ):
        raise Invalid(
            f"{lead}expected seeds 0 .. {MAX_SEED} (1 to {most} of them) as a list ([0, 1, 2]) or a "
            f"range ('0-4', '0-2,7'), got {show(value)}"
        )
    if len(set(value)) != len(value):
        raise Invalid(f"{lead}a seed is listed twice")
    return list(value)


def read_bounded(path, max_bytes=MAX_YAML_BYTES):
    """At most `max_bytes` + 1 bytes of `path`, a regular file: a FIFO or a device is an OSError
    rather than a read that blocks or never ends (opened without waiting for a writer)."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            raise OSError(errno.EINVAL, "not a regular file")
        return f.read(max_bytes + 1)


def load_yaml(text_, what="YAML", kind="safe", max_bytes=MAX_YAML_BYTES):
    """One YAML document, read within bounds: at most `max_bytes`, MAX_ALIASES aliases (none
    to a node that contains it), no tags, nesting at most MAX_DEPTH. `kind` 'rt' keeps line
    numbers (ruamel's round-trip types). Invalid names the line of the problem."""
    if isinstance(text_, bytes):
        if len(text_) > max_bytes:
            raise Invalid(f"{what}: {len(text_)} bytes; expected at most {max_bytes}")
        try:
            text_ = text_.decode("utf-8")
        except UnicodeDecodeError:
            raise Invalid(f"{what}: not a text file (expected YAML in UTF-8)")
    if len(text_.encode("utf-8", "replace")) > max_bytes:
        raise Invalid(f"{what}: larger than {max_bytes} bytes (expected a small YAML file)")
    _scan(text_, what)
    try:
        return ruamel.yaml.YAML(typ=kind, pure=True).load(text_)
    except Exception as e:  # ruamel raises many types for bad YAML, duplicate keys included
        raise _yaml_error(e, what)


def _scan(text_, what):
    """Walk the document's events (nothing is built): refuse tags, too many or recursive
    aliases, deep nesting and more than one document."""
    aliases, depth, open_anchors, docs = 0, 0, [], 0
    try:
        for event in ruamel.yaml.YAML(typ="safe", pure=True).parse(text_):
            line = event.start_mark.line + 1 if event.start_mark else None
            if isinstance(event, events.DocumentStartEvent):
                docs += 1
                if docs > 1:
                    raise Invalid(f"{what}: more than one YAML document", line)
            if getattr(event, "tag", None) is not None:
                raise Invalid(f"{what}: a YAML tag ({show(str(event.tag), 20)}); expected plain values", line)
            if isinstance(event, events.AliasEvent):
                aliases += 1
                if aliases > MAX_ALIASES:
                    raise Invalid(f"{what}: more than {MAX_ALIASES} YAML aliases (*name)", line)
                if event.anchor in open_anchors:
                    raise Invalid(f"{what}: a YAML alias inside the node it names", line)
            if isinstance(event, (events.MappingStartEvent, events.SequenceStartEvent)):
                depth += 1
                open_anchors.append(event.anchor)
                if depth > MAX_DEPTH:
                    raise Invalid(f"{what}: nested deeper than {MAX_DEPTH} levels", line)
            elif isinstance(event, (events.MappingEndEvent, events.SequenceEndEvent)):
                depth -= 1
                open_anchors.pop()
    except Invalid:
        raise
    except Exception as e:
        raise _yaml_error(e, what)


def _yaml_error(error, what):
    mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
    line = mark.line + 1 if mark else None
    problem = getattr(error, "problem", None) or "not valid YAML"
    return Invalid(f"{what}: {show(str(problem), 80)[1:-1]}", line)


# Keys that are regular expressions (elements' pattern flags such as --.*\.units): a few
# quantifiers and none on a group, so that matching them against a config's keys cannot
# backtrack for long.
MAX_PATTERN = 100
MAX_QUANTIFIERS = 4
NESTED = re.compile(r"\)[*+?{]")


def pattern_key(value, what):
    """`value` if it is a literal dotted key or a small regular expression (see above)."""
    key = value.lstrip("-")
    if FLAG.match(key):
        return key
    if (
        len(key) > MAX_PATTERN
        or NESTED.search(key)
        or CONTROL.search(key)
        or len(re.findall(r"(?<!\\)[*+?{]", key)) > MAX_QUANTIFIERS
    ):
        raise Invalid(
            f"{what} {show(value)}: expected a dotted flag name, or a pattern of at most "
            f"{MAX_PATTERN} characters with at most {MAX_QUANTIFIERS} quantifiers, none on "
            "a group"
        )
    try:
        re.compile(key)
    except (re.error, RecursionError, OverflowError) as e:
        raise Invalid(f"{what} {show(value)}: not a valid pattern ({show(str(e), 60)[1:-1]})")
    return key
