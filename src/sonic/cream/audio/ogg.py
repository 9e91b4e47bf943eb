"""The one thing read from Ogg pages here: whether a file's last page ends its stream (RFC 3533).

libsndfile decodes Ogg Vorbis and Opus, but a file cut off before its end (a broken download) decodes
without complaint: an Ogg file declares no length. Its last whole page then lacks the end-of-stream
flag. A page is a 27-byte header (``OggS``, version 0, flags, granule position, stream serial number,
sequence number, CRC, segment count), a lacing table of segment sizes and a body; only the file's tail
is read.
"""

from __future__ import annotations

import os
import struct

CAPTURE = b"OggS"
#: The end-of-stream page flag.
LAST = 4
_HEADER = struct.Struct("<4sBBqIIIB")  # capture, version, flags, granule, serial, sequence, CRC, segment count
#: The longest possible page (header, 255 lacing values, 255 segments of 255 bytes), plus room.
_TAIL_BYTES = 2 * (27 + 255 + 255 * 255)


def page_flags(data: bytes, offset: int) -> int | None:
    """The flags of the whole page starting exactly at ``offset`` of ``data``, or None if none does."""
    if offset < 0 or offset + _HEADER.size > len(data) or data[offset : offset + 4] != CAPTURE:
        return None
    _, version, flags, _, _, _, _, n_segments = _HEADER.unpack_from(data, offset)
    body = offset + _HEADER.size + n_segments
    lacing = data[offset + _HEADER.size : body]
    if version != 0 or len(lacing) < n_segments or body + sum(lacing) > len(data):
        return None
    return flags


def ends_its_stream(path: str | os.PathLike) -> bool | None:
    """Whether the last whole page of the Ogg file ``path`` ends its stream (flag :data:`LAST`).

    False for a file cut off before its end: its last whole page is an ordinary one. None when the
    tail of the file holds no whole page to tell by. Reads the tail only.
    """
    with open(path, "rb") as stream:
        size = stream.seek(0, os.SEEK_END)
        stream.seek(max(0, size - _TAIL_BYTES))
        tail = stream.read()
    offset = len(tail)
    while (offset := tail.rfind(CAPTURE, 0, offset)) >= 0:
        flags = page_flags(tail, offset)
        if flags is not None:
            return bool(flags & LAST)
    return None
