"""Read an offline W&B run file (`run-<id>.wandb`) the way `wandb sync` does, for the tests.

The file is a W&B header (":W&B", magic 0xBEE1, version) followed by LevelDB-log records in 32 KiB
blocks, each record a `wandb_internal_pb2.Record` protobuf (W&B's own schema): config updates,
history rows (one per `log` call), summaries. wandb ships no Python reader any more.
"""

from __future__ import annotations

import struct
from pathlib import Path

BLOCK = 32 * 1024
HEADER = struct.Struct("<4sHB")   # ident, magic, version
RECORD = struct.Struct("<IHB")    # crc32c, length, type (1 full, 2 first, 3 middle, 4 last)


def read_records(path: Path) -> list:
    from wandb.proto import wandb_internal_pb2

    data = Path(path).read_bytes()
    ident, magic, _ = HEADER.unpack_from(data)
    assert (ident, magic) == (b":W&B", 0xBEE1), f"{path} is not a W&B run file"
    records, pos, pending = [], HEADER.size, b""
    while pos + RECORD.size <= len(data):
        left = BLOCK - pos % BLOCK
        if left < RECORD.size:  # a block's tail too short for a record header is padding
            pos += left
            continue
        _, length, kind = RECORD.unpack_from(data, pos)
        if kind == 0:  # zero padding up to the next block
            pos += left
            continue
        chunk = data[pos + RECORD.size:pos + RECORD.size + length]
        pos += RECORD.size + length
        pending = chunk if kind in (1, 2) else pending + chunk
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            records.append(record)
    return records


def _key(item) -> str:
    return item.key or "/".join(item.nested_key)


def config(records: list) -> dict[str, str]:
    """Every config key the run set, with its JSON value."""
    return {_key(u): u.value_json for r in records if r.WhichOneof("record_type") == "config"
            for u in r.config.update}


def history(records: list) -> list[dict[str, str]]:
    """One dict per logged row (key -> JSON value)."""
    return [{_key(i): i.value_json for i in r.history.item} for r in records
            if r.WhichOneof("record_type") == "history"]
