"""Ogg pages and the packets they carry (RFC 3533), read from a file's bytes without decoding anything.

A page is a 27-byte header (``OggS``, version 0, flags, granule position, stream serial number,
sequence number, CRC, segment count), a lacing table of segment sizes and a body. A packet is a run
of 255-byte segments ended by one shorter segment; it may continue onto the next page (flag
:data:`CONTINUED`). A page's granule position says where the stream stands after the last packet
that ends on that page (for Vorbis: the number of samples per channel decoded so far), or is -1 when
no packet ends there. :func:`page_before` finds, by bisection over the file, the last page whose
granule position is at most a given one, so that a window can be read without scanning the file.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from typing import NamedTuple

CAPTURE = b"OggS"
#: Page flags.
CONTINUED, FIRST, LAST = 1, 2, 4
#: Granule position of a page on which no packet ends.
NO_GRANULE = -1
_HEADER = struct.Struct("<4sBBqIIIB")  # capture, version, flags, granule, serial, sequence, CRC, segment count
#: Bisection stops when the bracket is this small; the rest is scanned page by page.
_BISECTION_BYTES = 65536
#: The longest possible page (header, 255 lacing values, 255 segments of 255 bytes), plus room.
_TAIL_BYTES = 2 * (27 + 255 + 255 * 255)


class Page(NamedTuple):
    """One Ogg page: where it starts in the file, its header fields, lacing table and where its body starts."""

    offset: int
    flags: int
    granule: int
    serial: int
    lacing: bytes
    body: int

    @property
    def end(self) -> int:
        """Offset just after the page (where the next one should start)."""
        return self.body + sum(self.lacing)


def page_at(data, offset: int) -> Page | None:
    """The page starting exactly at ``offset`` of ``data`` (bytes-like), or None if none does."""
    if offset < 0 or offset + _HEADER.size > len(data) or data[offset : offset + 4] != CAPTURE:
        return None
    _, version, flags, granule, serial, _, _, n_segments = _HEADER.unpack_from(data, offset)
    body = offset + _HEADER.size + n_segments
    lacing = bytes(data[offset + _HEADER.size : body])
    if version != 0 or len(lacing) < n_segments or body + sum(lacing) > len(data):
        return None
    return Page(offset, flags, granule, serial, lacing, body)


def next_page(data, offset: int) -> Page | None:
    """The first whole page starting at or after ``offset``, or None."""
    while (offset := data.find(CAPTURE, offset)) >= 0:
        page = page_at(data, offset)
        if page is not None:
            return page
        offset += 1
    return None


def pages_from(data, offset: int) -> Iterator[Page]:
    """The page at ``offset`` and the pages that follow it directly (ends at the file's end or at a gap)."""
    page = page_at(data, offset)
    while page is not None:
        yield page
        page = page_at(data, page.end)


def page_packets(data, offset: int) -> Iterator[tuple[Page, list[bytes]]]:
    """Each page from ``offset`` on, with the whole packets that end on it (packets begun before are left out)."""
    partial: list[bytes] | None = None  # pieces of the packet going on; None: its start was not seen
    for page in pages_from(data, offset):
        if not page.flags & CONTINUED:
            partial = []  # a packet still going on here was cut off: it is dropped
        elif not partial:
            partial = None  # continues a packet that was not seen
        packets = []
        start = position = page.body
        for size in page.lacing:
            position += size
            if size < 255:
                if partial is not None:
                    packets.append(b"".join([*partial, data[start:position]]) if partial else data[start:position])
                partial, start = [], position
        if partial is not None and position > start:
            partial.append(data[start:position])
        yield page, packets


def page_before(data, granule: int) -> Page | None:
    """The last page with a granule position in 0 .. ``granule``, or None.

    Bisection over the file's bytes, then a scan of the last bracket: granule positions grow along
    a stream, so a page whose position is too large bounds the search from above.
    """
    low, high = 0, len(data)
    while high - low > _BISECTION_BYTES:
        middle = (low + high) // 2
        page = next_granule_page(data, middle, high)
        if page is None or page.granule > granule:
            high = middle
        else:
            low = page.offset
    found = None
    page = next_page(data, low)
    while page is not None and page.offset < high + _BISECTION_BYTES:
        if page.granule != NO_GRANULE:
            if page.granule > granule:
                break
            if page.granule >= 0:
                found = page
        page = next_page(data, page.end)
    return found


def next_granule_page(data, offset: int, limit: int | None = None) -> Page | None:
    """The first page at or after ``offset`` (and before ``limit``, if given) on which a packet ends."""
    page = next_page(data, offset)
    while page is not None and (limit is None or page.offset < limit):
        if page.granule != NO_GRANULE:
            return page
        page = next_page(data, page.end)
    return None


def ends_its_stream(path: str | os.PathLike) -> bool | None:
    """Whether the last whole page of the Ogg file ``path`` ends its stream (flag :data:`LAST`).

    False for a file cut off before its end (a broken download): its last whole page is an ordinary
    one. None when the tail of the file holds no whole page to tell by. Reads the tail only.
    """
    with open(path, "rb") as stream:
        size = stream.seek(0, os.SEEK_END)
        stream.seek(max(0, size - _TAIL_BYTES))
        tail = stream.read()
    offset = len(tail)
    while (offset := tail.rfind(CAPTURE, 0, offset)) >= 0:
        page = page_at(tail, offset)
        if page is not None:
            return bool(page.flags & LAST)
    return None
