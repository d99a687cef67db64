"""What a job's W&B run logged, read from its transaction log (``run-<id>.wandb``), offline.

The file is the one ``wandb sync`` uploads: a 7-byte header, then protobuf ``Record``s in
32 KiB blocks, each chunk behind a 7-byte header (CRC-32, length, type: full, first,
middle, last), as in LevelDB's log format. wandb 0.31 has no Python reader left, so this
is one; records whose checksum fails are skipped.
"""

from __future__ import annotations

import json
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HEADER = b":W&B"
BLOCK = 32768
CHUNK_HEADER = 7
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def _chunks(data: bytes):
    """(type, payload) of each chunk with a valid checksum."""
    i = CHUNK_HEADER  # the file header fills the first 7 bytes of the first block
    while i + CHUNK_HEADER <= len(data):
        left = BLOCK - i % BLOCK
        if left < CHUNK_HEADER:  # a block's tail too short for a header is padding
            i += left
            continue
        crc, length, kind = struct.unpack("<IHB", data[i : i + CHUNK_HEADER])
        payload = data[i + CHUNK_HEADER : i + CHUNK_HEADER + length]
        i += CHUNK_HEADER + length
        if zlib.crc32(payload, zlib.crc32(bytes([kind]))) & 0xFFFFFFFF == crc:
            yield kind, payload


def read_records(path: Path) -> list[Any]:
    """The protobuf ``Record``s of a ``.wandb`` file."""
    from wandb.proto import wandb_internal_pb2 as pb

    data = path.read_bytes()
    if not data.startswith(HEADER):
        raise ValueError(f"{path} is not a W&B transaction log")
    records, pending = [], b""
    for kind, payload in _chunks(data):
        if kind in (FIRST, MIDDLE):
            pending = payload if kind == FIRST else pending + payload
            continue
        record = pb.Record()
        record.ParseFromString(payload if kind == FULL else pending + payload)
        records.append(record)
    return records


@dataclass
class WandbRun:
    """A W&B run as its files record it: identity, and the keys it logged."""

    id: str = ""
    project: str = ""
    entity: str = ""
    group: str = ""
    name: str = ""
    offline: bool = True
    run_dirs: list[str] = field(default_factory=list)
    history: set[str] = field(default_factory=set)  # scalar keys logged over steps
    media: set[str] = field(default_factory=set)  # image keys (samples/grid, ...)
    summary: set[str] = field(default_factory=set)
    config: dict[str, Any] = field(default_factory=dict)  # flattened: optim.d.lr -> 0.0002


def _flatten(prefix: str, value: Any, out: dict[str, Any]) -> None:
    if isinstance(value, dict) and value:
        for k, v in value.items():
            _flatten(f"{prefix}.{k}" if prefix else str(k), v, out)
    else:
        out[prefix] = value


def _items(items, keys: set[str], media: set[str] | None) -> None:
    for item in items:
        path = [item.key] if item.key else list(item.nested_key)
        if media is not None and len(path) > 1 and path[-1] == "_type":
            media.add("/".join(path[:-1]))
        elif len(path) == 1:
            keys.add(path[0])


def _add(run: WandbRun, record: Any) -> None:
    kind = record.WhichOneof("record_type")
    if kind == "run":
        r = record.run
        run.id, run.project, run.entity = r.run_id, r.project, r.entity or run.entity
        run.group, run.name = r.run_group, r.display_name
    elif kind == "history":
        _items(record.history.item, run.history, run.media)
    elif kind == "summary":
        _items(record.summary.update, run.summary, None)
    elif kind == "config":
        for item in record.config.update:
            if not item.key.startswith("_"):
                _flatten(item.key, json.loads(item.value_json), run.config)


def read_job_run(job_dir: Path) -> WandbRun | None:
    """The W&B run of a job folder (all its run directories: a resumed run has several),
    or None when the job logged nothing to W&B."""
    files = sorted(job_dir.glob("wandb/*run-*/run-*.wandb"))
    if not files:
        return None
    run = WandbRun()
    for path in files:
        for record in read_records(path):
            _add(run, record)
        run.run_dirs.append(str(path.parent))
        run.offline = run.offline and path.parent.name.startswith("offline-run-")
    run.history -= {k for k in run.history if k.startswith("_")}
    return run
