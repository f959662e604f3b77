"""A run's `config.yaml`, read as input from someone else: bounded in size, time and memory.

The trainer writes a flat-ish YAML of a few KB with no anchors or aliases. Anything else is
damage or hostile (an alias bomb expands to gigabytes when walked; a recursive alias never
ends), so: files over MAX_CONFIG_BYTES are not read, a document with an anchor or alias is
refused before it is built, and nesting is capped. `top_fields` (task / seed / method for
discovery) is a line scan with no regular expressions, so no line can make it backtrack.
"""

from __future__ import annotations

from pathlib import Path

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError
from ruamel.yaml.events import AliasEvent, CollectionEndEvent, CollectionStartEvent

from analysis import confine

MAX_CONFIG_BYTES = 1 << 20  # the trainer's config.yaml is ~10 KB
MAX_DEPTH = 32  # nesting of mappings and lists
MAX_NODES = 100_000  # scalars, mappings and lists of one document
INT64 = (-(2**63), 2**63 - 1)


class ConfigError(ValueError):
    """A config.yaml that cannot be read safely; the message names the file and why."""


def _text(path: Path) -> str:
    """The file's text, refused when it is not a regular file or larger than MAX_CONFIG_BYTES."""
    if not path.is_file():
        raise ConfigError(f"{path}: not a regular file")
    if not confine.inside(path, path.parent):  # a run's config.yaml lies in the run folder
        raise ConfigError(f"{path}: a link to a file outside the run folder; not read")
    size = path.stat().st_size
    if size > MAX_CONFIG_BYTES:
        raise ConfigError(f"{path}: {size:,} bytes, larger than the {MAX_CONFIG_BYTES:,} a config can be")
    with open(path, "rb") as f:
        data = f.read(MAX_CONFIG_BYTES + 1)
    if len(data) > MAX_CONFIG_BYTES:  # grew since stat
        raise ConfigError(f"{path}: larger than the {MAX_CONFIG_BYTES:,} bytes a config can be")
    return data.decode("utf-8", errors="replace")


def top_fields(run_dir: Path, keys=("task", "seed", "method")) -> tuple[dict[str, str], list[str]]:
    """({key: text} of the top-level `key: value` lines, notes on what was not usable).

    A line scan: the file can be large and the YAML hostile; only top-level scalars are needed.
    """
    path = Path(run_dir) / "config.yaml"
    if not path.exists():
        return {}, []
    try:
        text = _text(path)
    except (ConfigError, OSError) as error:
        why = _first_line(error).replace(str(path), path.name)
        return {}, [f"{why}; task and seed taken from the folder names"]
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, rest = line.partition(":")
        if sep and key in keys and key not in fields:
            value = _scalar(rest)
            if value:
                fields[key] = value
    notes = []
    if "seed" in fields and _seed(fields["seed"]) is None:
        notes.append(
            f"config.yaml: seed {fields.pop('seed')[:40]!r} is not a whole number in int64 range; "
            "seed taken from the folder name"
        )
    return fields, notes


def _scalar(rest: str) -> str:
    """The value of `key: value  # comment`, without quotes or comment."""
    rest = rest.strip()
    if rest[:1] in ("'", '"'):
        end = rest.find(rest[0], 1)
        return rest[1:end] if end > 0 else rest[1:]
    return rest.split(" #", 1)[0].strip()


def _seed(text: str) -> int | None:
    """The seed as an int64, or None."""
    digits = text[1:] if text[:1] in "+-" else text
    if not digits.isdigit() or not digits.isascii() or len(digits) > 20:
        return None
    value = int(text)
    return value if INT64[0] <= value <= INT64[1] else None


def seed_of(fields: dict[str, str]) -> int | None:
    return _seed(fields["seed"]) if "seed" in fields else None


def load(path: Path):
    """The YAML document of `path`, refused (ConfigError) when oversized, aliased or too deep."""

    path = Path(path)
    text = _text(path)
    yaml = YAML(typ="safe")
    depth = nodes = 0
    try:
        for event in yaml.parse(text):
            anchor = getattr(event, "anchor", None)
            if isinstance(event, AliasEvent) or anchor:
                line = event.start_mark.line + 1 if event.start_mark else "?"
                raise ConfigError(
                    f"{path}:{line}: YAML anchors and aliases are not accepted in a run config "
                    "(the trainer never writes them; they can expand without bound)"
                )
            nodes += 1
            depth += isinstance(event, CollectionStartEvent) - isinstance(event, CollectionEndEvent)
            if depth > MAX_DEPTH or nodes > MAX_NODES:
                raise ConfigError(f"{path}: nested deeper than {MAX_DEPTH} or more than {MAX_NODES:,} values")
        return yaml.load(text)
    except YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML ({_first_line(error)})") from None


def read_flat(path: Path) -> dict[str, object]:
    """The config flattened to dotted keys ({} for an empty file); ConfigError when unsafe."""
    flat: dict[str, object] = {}

    def walk(prefix: str, node) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                walk(f"{prefix}.{key}" if prefix else str(key), value)
        else:
            flat[prefix] = node

    data = load(path)
    if data is not None and not isinstance(data, dict):
        raise ConfigError(f"{path}: a YAML {type(data).__name__}, expected a mapping of keys")
    walk("", data or {})
    return flat


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
