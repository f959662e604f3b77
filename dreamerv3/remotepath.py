"""Paths in object storage (`s3://`, `gs://`, `az://`): the one table and rules the trainer
(dreamerv3/storage.py), the toolkit (analysis/remote.py) and every command's outputs share.

- which URL schemes are object storage, and fsspec's name for each (PROTOCOLS);
- the client options every call gets: short connect and read timeouts, few retries
  (CLIENT_OPTIONS), and gcsfs's plain JSON API (its default "zonal/HNS" layer probes every
  bucket through a second API with the default credentials);
- which keys may be mirrored into a local folder (`safe_key`: no empty, '.' or '..' part), for
  listings and globs alike;
- a path that names storage a command cannot write (`refuse_url`): one line, never a local
  folder named `s3:`.

fsspec is imported only when a filesystem is made: local runs need no storage packages.
"""

import os
import re

os.environ.setdefault("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")

PROTOCOLS = {"s3": "s3", "gs": "gcs", "gcs": "gcs", "az": "az", "abfs": "az"}  # scheme -> fsspec's
CLIENT_OPTIONS = {
    "s3": {
        "config_kwargs": {"connect_timeout": 5, "read_timeout": 30, "retries": {"max_attempts": 2, "mode": "standard"}}
    },
    "gcs": {"requests_timeout": 30},
    "az": {"connection_timeout": 5, "read_timeout": 30, "retry_total": 1},
}
URL = re.compile(r"\A([A-Za-z][A-Za-z0-9+.-]*)://")
# What a URL becomes once a path library has squeezed its '//' ('s3://b/x' -> 's3:/b/x').
SQUEEZED = re.compile(r"\A([A-Za-z][A-Za-z0-9+.-]*):/")


def scheme(path):
    """The lower-case scheme of `path` ('s3' for s3://...), or None for a local path."""
    found = URL.match(str(path))
    return found.group(1).lower() if found else None


def is_remote(path):
    """True for a path in object storage this project reads and writes (PROTOCOLS)."""
    return scheme(path) in PROTOCOLS


def bare(url):
    """'bucket/key' of a URL (what fsspec's calls take and return)."""
    return str(url).split("://", 1)[1].strip("/")


def safe_key(rel):
    """A key (relative to a listed folder) that stays inside its folder when mirrored."""
    return all(part not in ("", ".", "..") for part in str(rel).split("/"))


def first_line(error):
    """The first non-blank line of an error (some libraries start their message with a newline)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


def filesystem(name, error=OSError):
    """A fresh fsspec filesystem for a URL scheme with CLIENT_OPTIONS; `error` (one line naming
    the scheme) when it cannot be made (no credentials, a bad connection string, no package)."""
    protocol = PROTOCOLS[name.lower()]
    try:
        import fsspec

        return fsspec.filesystem(protocol, skip_instance_cache=True, **CLIENT_OPTIONS[protocol])
    except Exception as e:  # botocore, azure, google and fsspec errors share no base
        raise error(f"{name}://: cannot connect ({first_line(e)})") from None


def upload(local, url, error=OSError):
    """Copy the local file `local` to the object `url` (replacing it); `error` with one line
    naming the URL when the call fails."""
    fs = filesystem(scheme(url), error)
    try:
        fs.put_file(str(local), bare(url))
    except Exception as e:  # botocore, aiohttp, azure and fsspec errors share no base
        raise error(f"{url}: {type(e).__name__}: {first_line(e)}") from None


def refuse_url(path, flag, error=ValueError):
    """`error` with one line when `path` names object storage (or any URL) where this command
    writes only local files; also when a path library has already squeezed the URL's '//'."""
    text = str(path)
    found = URL.match(text) or SQUEEZED.match(text)
    if found:
        raise error(
            f"{flag} {text[:80]}: writes only to a local or shared folder, not to "
            f"{found.group(1)}://; write locally, then copy it up"
        )
