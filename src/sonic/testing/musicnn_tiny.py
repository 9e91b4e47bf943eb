"""Tiny random-weight MusiCNN / VGG checkpoints written in TensorFlow's real checkpoint format.

For the tests and the embedder contract (:mod:`sonic.testing.embedders`).
:func:`write_tf_checkpoint` writes ``<prefix>.index`` (a leveldb-format table: prefix-compressed keys,
restart points, several data blocks, an index block, an empty metaindex block, CRC32C block trailers
and the 48-byte footer with the table magic) and ``<prefix>.data-00000-of-00001`` (raw little-endian
tensor bytes), with a BundleHeaderProto under the empty key and a BundleEntryProto per tensor, as
TensorFlow's tensor bundle writer lays them out. It is written from the format's description, apart
from the reader (:mod:`sonic.tails.models.tf_checkpoint`), so that each checks the other.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

import numpy as np

TF_DTYPES = {np.dtype("float32"): 1, np.dtype("float64"): 2, np.dtype("int32"): 3, np.dtype("int64"): 9}


def _crc32c_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table.append(crc)
    return table


_TABLE = _crc32c_table()


def masked_crc32c(data: bytes) -> int:
    """leveldb's masked CRC32C (Castagnoli) of ``data``."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc = _TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    crc ^= 0xFFFFFFFF
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def field(number: int, value: int | bytes) -> bytes:
    """One protobuf field: an int as a varint (wire type 0), bytes as length-delimited (wire type 2)."""
    if isinstance(value, bytes):
        return varint(number << 3 | 2) + varint(len(value)) + value
    return varint(number << 3) + varint(value)


def bundle_entry(array: np.ndarray, offset: int, raw: bytes) -> bytes:
    shape = b"".join(field(2, field(1, size)) for size in array.shape)
    entry = field(1, TF_DTYPES[array.dtype]) + field(2, shape) + field(4, offset) + field(5, len(raw))
    return entry + varint(6 << 3 | 5) + struct.pack("<I", masked_crc32c(raw))  # crc32c: fixed32


def _block(entries: list[tuple[bytes, bytes]], restart_interval: int) -> bytes:
    body, restarts, previous = bytearray(), [], b""
    for i, (key, value) in enumerate(entries):
        shared = 0
        if i % restart_interval == 0:
            restarts.append(len(body))
        else:
            while shared < min(len(key), len(previous)) and key[shared] == previous[shared]:
                shared += 1
        body += varint(shared) + varint(len(key) - shared) + varint(len(value)) + key[shared:] + value
        previous = key
    restarts = restarts or [0]
    return bytes(body) + b"".join(struct.pack("<I", r) for r in restarts) + struct.pack("<I", len(restarts))


def _append_block(out: bytearray, block: bytes) -> bytes:
    """Append ``block`` and its trailer (no compression, masked crc of block + type); return its handle."""
    handle = varint(len(out)) + varint(len(block))
    out += block + b"\x00" + struct.pack("<I", masked_crc32c(block + b"\x00"))
    return handle


def write_tf_checkpoint(prefix: str | Path, tensors: dict[str, np.ndarray], *, entries_per_block: int = 5) -> Path:
    """Write ``tensors`` as the TF checkpoint ``prefix`` (.index + .data-00000-of-00001); return the index path.

    A prefix ending in ``/`` gives the hidden ``.index`` names the musicnn wheel ships.
    """
    prefix = str(prefix)
    os.makedirs(os.path.dirname(prefix) or ".", exist_ok=True)
    data, records = bytearray(), []
    for name in sorted(tensors):
        array = np.array(tensors[name], order="C")  # (ascontiguousarray would make a scalar 1-d)
        raw = array.astype(array.dtype.newbyteorder("<")).tobytes()
        records.append((name.encode(), bundle_entry(array, len(data), raw)))
        data += raw
    header = field(1, 1) + field(3, field(1, 1))  # num_shards 1, little-endian, version {producer 1}
    entries = [(b"", header), *records]
    table, index = bytearray(), []
    for start in range(0, len(entries), entries_per_block):
        chunk = entries[start : start + entries_per_block]
        index.append((chunk[-1][0], _append_block(table, _block(chunk, restart_interval=2))))
    metaindex = _append_block(table, _block([], restart_interval=16))
    index_handle = _append_block(table, _block(index, restart_interval=1))
    footer = (metaindex + index_handle).ljust(40, b"\x00") + struct.pack("<Q", 0xDB4775248B80FB57)
    Path(f"{prefix}.data-00000-of-00001").write_bytes(bytes(data))
    Path(f"{prefix}.index").write_bytes(bytes(table + footer))
    return Path(f"{prefix}.index")


def _batch_norm(rng: np.random.Generator, name: str, channels: int) -> dict[str, np.ndarray]:
    return {
        f"{name}/gamma": rng.uniform(0.5, 1.5, channels).astype(np.float32),
        f"{name}/beta": rng.normal(0, 0.1, channels).astype(np.float32),
        f"{name}/moving_mean": rng.normal(0, 0.2, channels).astype(np.float32),
        f"{name}/moving_variance": rng.uniform(0.5, 2.0, channels).astype(np.float32),
    }


def _dense(rng, name, shape):
    scale = 1.0 / np.sqrt(np.prod(shape[:-1]))
    return {f"{name}/kernel": (scale * rng.standard_normal(shape)).astype(np.float32),
            f"{name}/bias": rng.normal(0, 0.1, shape[-1]).astype(np.float32)}


def tiny_musicnn(seed: int = 0, *, timbral: int = 4, temporal: int = 3, mid: int = 5, units: int = 6, tags: int = 7,
                 n_mels: int = 96, optimizer: bool = True) -> dict[str, np.ndarray]:
    """Random tensors named and shaped as a musicnn checkpoint, with small widths (plus Adam slots)."""
    rng = np.random.default_rng(seed)
    weights = _batch_norm(rng, "batch_normalization", 1)
    kernels = [(7, int(0.4 * n_mels)), (7, int(0.7 * n_mels)), (128, 1), (64, 1), (32, 1)]
    for i, (kh, kw) in enumerate(kernels):
        filters = timbral if i < 2 else temporal
        weights |= _dense(rng, "conv2d" if i == 0 else f"conv2d_{i}", (kh, kw, 1, filters))
        weights |= _batch_norm(rng, f"batch_normalization_{i + 1}", filters)
    front = 2 * timbral + 3 * temporal
    for i in range(3):
        weights |= _dense(rng, f"conv2d_{5 + i}", (7, front if i == 0 else mid, 1, mid))
        weights |= _batch_norm(rng, f"batch_normalization_{6 + i}", mid)
    pooled = 2 * (front + 3 * mid)
    weights |= _batch_norm(rng, "batch_normalization_9", pooled)
    weights |= _dense(rng, "dense", (pooled, units))
    weights |= _batch_norm(rng, "batch_normalization_10", units)
    weights |= _dense(rng, "dense_1", (units, tags))
    return _with_optimizer(rng, weights) if optimizer else weights


def tiny_vgg(seed: int = 0, *, filters: int = 4, tags: int = 7, optimizer: bool = True) -> dict[str, np.ndarray]:
    """Random tensors named and shaped as a vgg checkpoint for 187 x 96 patches, with ``filters`` channels."""
    rng = np.random.default_rng(seed)
    weights = _batch_norm(rng, "batch_normalization", 1)
    for i in range(5):
        weights |= _dense(rng, f"{i + 1}CNN", (3, 3, 1 if i == 0 else filters, filters))
        weights |= _batch_norm(rng, f"batch_normalization_{i + 1}", filters)
    weights |= _dense(rng, "dense", (2 * 1 * filters, tags))
    return _with_optimizer(rng, weights) if optimizer else weights


def _with_optimizer(rng, weights):
    slots = {}
    for name, value in weights.items():
        if name.endswith(("kernel", "bias", "gamma", "beta")):
            slots[f"{name}/Adam"] = rng.standard_normal(value.shape).astype(np.float32)
            slots[f"{name}/Adam_1"] = rng.standard_normal(value.shape).astype(np.float32)
    slots["beta1_power"] = np.array(0.9, dtype=np.float32)
    slots["beta2_power"] = np.array(0.999, dtype=np.float32)
    return weights | slots
