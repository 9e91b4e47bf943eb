"""Read a TensorFlow checkpoint (``.index`` + ``.data-*``) into numpy arrays, without TensorFlow.

A TF checkpoint saved under a prefix ``P`` is two kinds of file:

- ``P.index``: a table in leveldb's SSTable format. Its data blocks hold sorted (key, value) entries,
  keys prefix-compressed (each entry: varint ``shared``, varint ``unshared``, varint ``value_len``, the
  key's unshared bytes, the value), followed by a restart array (uint32 each) and its length (uint32).
  Every block is followed by a 5-byte trailer (compression byte, crc32c). An index block maps the last
  key of each data block to a block handle (varint offset, varint size). The file ends with a 48-byte
  footer: the metaindex handle, the index handle, zero padding to 40 bytes, and the 8-byte magic
  ``0xdb4775248b80fb57`` (little-endian).
- The empty key holds a BundleHeaderProto; every other key is a tensor name whose value is a
  BundleEntryProto: ``dtype`` (field 1, enum), ``shape`` (2, TensorShapeProto: repeated ``dim`` (2), each
  with ``size`` (1)), ``shard_id`` (3), ``offset`` (4), ``size`` (5), ``crc32c`` (6, fixed32), ``slices`` (7).
- ``P.data-0000S-of-0000N``: shard ``S`` of the raw tensor bytes, little-endian, C order, at ``offset``.

Protobuf is decoded here by hand (varints and the four wire types), so neither TensorFlow nor protobuf
is needed. Optimizer state (Adam's ``/Adam`` and ``/Adam_1`` slots, ``beta1_power``...) is skipped unless
asked for: it is about two thirds of a MusiCNN ``.data`` file.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

import numpy as np

from sonic.errors import SonicError

#: The last 8 bytes of every leveldb table file.
TABLE_MAGIC = 0xDB4775248B80FB57
FOOTER_BYTES = 48
BLOCK_TRAILER_BYTES = 5
#: TensorFlow DataType enum -> numpy dtype (little-endian).
DTYPES = {1: "<f4", 2: "<f8", 3: "<i4", 4: "|u1", 5: "<i2", 6: "|i1", 9: "<i8", 10: "|b1", 19: "<f2"}
#: Name parts of optimizer state and training counters, skipped by default.
OPTIMIZER_MARKERS = ("/Adam", "beta1_power", "beta2_power", "global_step", "/Momentum", "/RMSProp")


def read_varint(buffer: bytes, position: int) -> tuple[int, int]:
    """The unsigned LEB128 varint starting at ``position`` and the position after it."""
    value = shift = 0
    while True:
        if position >= len(buffer):
            raise ValueError("varint runs past the end of its buffer")
        byte = buffer[position]
        position += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, position
        shift += 7


def proto_fields(message: bytes) -> list[tuple[int, int | bytes]]:
    """(field number, value) pairs of a protobuf message; varints as int, length-delimited as bytes."""
    fields, position = [], 0
    while position < len(message):
        tag, position = read_varint(message, position)
        number, wire_type = tag >> 3, tag & 7
        if wire_type == 0:
            value, position = read_varint(message, position)
        elif wire_type == 2:
            length, position = read_varint(message, position)
            value, position = message[position : position + length], position + length
        elif wire_type == 5:
            value, position = struct.unpack_from("<I", message, position)[0], position + 4
        elif wire_type == 1:
            value, position = struct.unpack_from("<Q", message, position)[0], position + 8
        else:
            raise ValueError(f"unsupported protobuf wire type {wire_type}")
        fields.append((number, value))
    return fields


def block_entries(data: bytes, offset: int, size: int) -> list[tuple[bytes, bytes]]:
    """The (key, value) entries of the table block at ``offset`` (``size`` bytes, trailer excluded)."""
    if data[offset + size] != 0:
        raise ValueError(f"block at byte {offset} is compressed (type {data[offset + size]}); only raw blocks are read")
    block = data[offset : offset + size]
    n_restarts = struct.unpack_from("<I", block, size - 4)[0]
    end = size - 4 - 4 * n_restarts
    entries, position, key = [], 0, b""
    while position < end:
        shared, position = read_varint(block, position)
        unshared, position = read_varint(block, position)
        value_length, position = read_varint(block, position)
        key = key[:shared] + block[position : position + unshared]
        position += unshared
        entries.append((key, block[position : position + value_length]))
        position += value_length
    return entries


def table_entries(data: bytes) -> list[tuple[bytes, bytes]]:
    """Every (key, value) entry of a leveldb table file's bytes, in key order."""
    if len(data) < FOOTER_BYTES or struct.unpack_from("<Q", data, len(data) - 8)[0] != TABLE_MAGIC:
        raise ValueError("not a leveldb table (bad magic number)")
    footer = data[-FOOTER_BYTES:]
    _, position = read_varint(footer, 0)  # metaindex offset
    _, position = read_varint(footer, position)  # metaindex size
    index_offset, position = read_varint(footer, position)
    index_size, _ = read_varint(footer, position)
    entries = []
    for _, handle in block_entries(data, index_offset, index_size):
        offset, position = read_varint(handle, 0)
        size, _ = read_varint(handle, position)
        entries.extend(block_entries(data, offset, size))
    return entries


def parse_entry(value: bytes) -> dict:
    """A BundleEntryProto as a dict: dtype, shape, shard_id, offset, size."""
    entry = {"dtype": 0, "shape": (), "shard_id": 0, "offset": 0, "size": 0}
    for number, field in proto_fields(value):
        if number == 1:
            entry["dtype"] = field
        elif number == 2:
            dims = [proto_fields(dim) for key, dim in proto_fields(field) if key == 2]
            entry["shape"] = tuple(next((size for key, size in dim if key == 1), 0) for dim in dims)
        elif number in (3, 4, 5):
            entry[{3: "shard_id", 4: "offset", 5: "size"}[number]] = field
        elif number == 7:
            raise ValueError("sliced (partitioned) tensors are not supported")
    return entry


def index_path(checkpoint: str | os.PathLike) -> Path:
    """The ``.index`` file of ``checkpoint``: a folder holding one ``*.index`` file, or a prefix or index path."""
    path = Path(checkpoint).expanduser()
    if path.is_dir():
        found = sorted(path.glob("*.index"))  # pathlib's glob also matches ".index" (an empty prefix)
        if len(found) != 1:
            what = "no .index file" if not found else f"{len(found)} .index files"
            raise SonicError(f"checkpoint folder {str(path)!r} holds {what}; it needs exactly one TF checkpoint")
        return found[0]
    if path.name.endswith(".index") and path.is_file():
        return path
    if Path(f"{path}.index").is_file():
        return Path(f"{path}.index")
    raise SonicError(f"no TensorFlow checkpoint at {str(path)!r}; pass a folder holding its .index and .data files")


def read_tf_checkpoint(checkpoint: str | os.PathLike, *, include_optimizer: bool = False) -> dict[str, np.ndarray]:
    """Every tensor of a TF checkpoint as ``{name: array}`` (optimizer slots skipped unless asked for).

    ``checkpoint`` is a folder holding one ``.index`` file (and its ``.data-*`` shards), the index path
    or the prefix. A file that is not a checkpoint, or whose data shard is missing or short, is a
    :class:`SonicError` naming the file.
    """
    index = index_path(checkpoint)
    prefix = str(index)[: -len(".index")]
    try:
        entries = table_entries(index.read_bytes())
        records = {key.decode("utf-8"): parse_entry(value) for key, value in entries if key}
        header = entries[0][1] if entries and not entries[0][0] else b""  # BundleHeaderProto under the empty key
        n_shards = next((field for number, field in proto_fields(header) if number == 1), 1)
    except (ValueError, struct.error, IndexError, UnicodeDecodeError) as error:
        raise SonicError(f"{str(index)!r} is not a readable TensorFlow checkpoint index: {error}") from None
    shards: dict[int, np.memmap] = {}
    tensors = {}
    for name, entry in records.items():
        if not include_optimizer and any(marker in name for marker in OPTIMIZER_MARKERS):
            continue
        if entry["dtype"] not in DTYPES:
            raise SonicError(f"tensor {name!r} in {str(index)!r} has TF dtype {entry['dtype']}, which is not supported")
        shard = entry["shard_id"]
        if shard not in shards:
            data_path = Path(f"{prefix}.data-{shard:05d}-of-{n_shards:05d}")
            if not data_path.is_file():
                raise SonicError(f"checkpoint data file {str(data_path)!r} is missing")
            shards[shard] = np.memmap(data_path, dtype=np.uint8, mode="r")
        dtype = np.dtype(DTYPES[entry["dtype"]])
        count = int(np.prod(entry["shape"], dtype=np.int64))
        if count * dtype.itemsize != entry["size"] or entry["offset"] + entry["size"] > len(shards[shard]):
            raise SonicError(f"tensor {name!r} does not fit its data file {prefix}.data-*: the checkpoint is damaged")
        raw = shards[shard][entry["offset"] : entry["offset"] + entry["size"]]
        array = np.frombuffer(raw.tobytes(), dtype=dtype).reshape(entry["shape"])
        tensors[name] = array.astype(dtype.newbyteorder("="))
    return tensors
