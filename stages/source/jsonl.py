"""JSON Lines, plain or compressed (gzip, zstd): lines out of a byte stream, damage reported.

A *position* is a line that is not all ASCII whitespace; blank lines are no records and take no
position. A compressed stream that ends early or is corrupt yields its complete lines and then
one damage position (the partial line, if any, is part of the damage).
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Iterator
from pathlib import Path

from stages.source.files import compression

CHUNK = 1 << 20
ZSTD_MAX_WINDOW = 1 << 31  # frames written with `zstd --long=31`


class Damage(Exception):
    """The compressed stream ends early or is corrupt (the message says how)."""


def _plain_chunks(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            yield chunk


def _gzip_chunks(path: Path) -> Iterator[bytes]:
    with gzip.open(path, "rb") as handle:
        try:
            while chunk := handle.read1(CHUNK):
                yield chunk
        except EOFError as error:
            raise Damage(f"truncated gzip stream: {error}") from None
        except (OSError, zlib.error) as error:  # BadGzipFile is an OSError
            raise Damage(f"corrupt gzip stream: {error}") from None


def _zstd_chunks(path: Path) -> Iterator[bytes]:
    import zstandard  # lazy: only .zst sources need it

    decompressor = zstandard.ZstdDecompressor(max_window_size=ZSTD_MAX_WINDOW)
    frame, started = decompressor.decompressobj(), False
    with open(path, "rb") as handle:
        try:
            while data := handle.read(CHUNK):
                while data:  # several concatenated frames: a new object per frame
                    if frame.eof:
                        frame = decompressor.decompressobj()
                    started = True
                    if out := frame.decompress(data):
                        yield out
                    data = frame.unused_data if frame.eof else b""
        except zstandard.ZstdError as error:
            raise Damage(f"corrupt zstd stream: {error}") from None
    if started and not frame.eof:
        raise Damage("truncated zstd stream: the last frame ends before its end mark")


def chunks(path: Path) -> Iterator[bytes]:
    """The decompressed bytes of ``path`` in chunks; Damage at the end of a broken stream."""
    kind = compression(path)
    if kind == "gzip":
        return _gzip_chunks(path)
    if kind == "zstd":
        return _zstd_chunks(path)
    return _plain_chunks(path)


def lines(path: Path) -> Iterator[tuple[int, int, bytes | Damage]]:
    """``(line, offset, bytes)`` for every non-blank line (1-based physical line number, byte
    offset of its start in the decompressed stream); a broken stream ends with one
    ``(line, offset, Damage)`` at the line after the last complete one."""
    number, offset, tail = 0, 0, b""
    try:
        for chunk in chunks(path):
            parts = (tail + chunk).split(b"\n")
            tail = parts.pop()
            for part in parts:
                number += 1
                if part.strip():
                    yield number, offset, part
                offset += len(part) + 1
    except Damage as damage:
        yield number + 1, offset, damage
        return
    if tail.strip():
        yield number + 1, offset, tail
