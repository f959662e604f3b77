"""A gzipped run log (`metrics.jsonl.gz`, `scores.jsonl.gz`): its bytes, unzipped in memory
within a size limit, and what is wrong with it. The JSONL reader (jsonl.py) parses the bytes
as it parses a plain log; nothing here knows about lines or keys."""

from __future__ import annotations

import io
import zlib
from pathlib import Path

from analysis import defaults


def is_gzip(path: Path | str) -> bool:
    return str(path).endswith(defaults.GZIP)


def unzip(path: Path, limit: int | None = None, data: bytes | None = None) -> tuple[bytes | None, str | None]:
    """The decompressed bytes of a gzipped log and what is wrong with it (None: nothing).

    Read in chunks and counted, so a gzip bomb costs `limit` bytes of memory, never more. A
    stream cut short (a copy or a writer interrupted) gives the bytes before the cut, as a torn
    last line keeps the lines before it; corrupt data (a bad header, block or checksum) gives
    None: nothing in such a file can be trusted. `data`: the compressed bytes, when they were
    read already (watch reads a remote file by range).
    """
    limit = defaults.MAX_UNZIPPED_LOG_BYTES if limit is None else limit
    try:
        with open(path, "rb") if data is None else io.BytesIO(data) as f:
            return _inflate(f, limit)
    except OSError as error:
        return None, f"cannot be read ({error.strerror or error}); skipped"


GZIP_MAGIC = b"\x1f\x8b"


def _inflate(f, limit: int) -> tuple[bytes | None, str | None]:
    """unzip's work: zlib directly, not GzipFile, whose read() drops what it decoded when the
    stream ends early. Members follow each other (`cat a.gz b.gz` is one gzip file)."""
    chunks, size, member, started, first = [], 0, zlib.decompressobj(wbits=31), False, b""
    whole = 0  # decompressed bytes of the members read to their end (checksums verified)
    try:
        while block := f.read(1 << 20):
            first = first or block
            pending = block
            while pending:
                started = True
                piece = member.decompress(pending, limit + 1 - size)
                chunks.append(piece)
                size += len(piece)
                if size > limit:
                    return None, (
                        f"decompresses to more than {limit:,} bytes, the limit for a gzipped log "
                        "(MAX_UNZIPPED_LOG_BYTES, analysis/defaults.py); skipped"
                    )
                if not member.eof:
                    pending = member.unconsumed_tail
                    continue
                pending, started, whole = member.unused_data, False, size
                if not pending.strip(b"\0"):  # padding after the last member (as gzip allows)
                    pending = b""
                member = zlib.decompressobj(wbits=31)
    except zlib.error as error:
        if whole and size == whole:  # whole members, then bytes that are no gzip: as `gzip -d`,
            return b"".join(chunks), (
                f"data after the gzip members that is not gzip ({_reason(error)}); "
                f"the {whole:,} bytes of the whole members before it kept"
            )
        if size == 0 and not first.startswith(GZIP_MAGIC):
            return None, "not a gzip file (it does not start with the gzip signature); skipped"
        return None, f"corrupt gzip data ({_reason(error)}); skipped"
    if started:
        return b"".join(chunks), (
            f"gzip stream cut short after {size:,} decompressed bytes; the lines before the cut kept"
        )
    return b"".join(chunks), None


def _reason(error: Exception) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__
