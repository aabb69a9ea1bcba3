"""Read MegaLogViewer binary logs (``.mlg``, format versions 1 and 2).

TunerStudio writes its logs in this format; MegaLogViewer and
TunerStudio can export them as CSV. Layout, big-endian throughout
(facts from EFI Analytics' "MLG binary format" description as
implemented by karniv00l/mlg-converter, checked here against real v1
and v2 files):

- Header: magic ``MLVLG\\0`` (6 bytes), format version (int16, 1 or 2),
  timestamp (int32, Unix seconds), offset of the information text
  (uint16 in v1, uint32 in v2), offset of the first data block
  (int32/uint32), record length (uint16), number of fields (uint16).
  The header is 22 bytes in v1 and 24 in v2.
- One descriptor per field: type (uint8), name (34 bytes), units (10
  bytes), display style (uint8), scale (float32), transform (float32),
  digits (int8); v2 adds a category (34 bytes), so descriptors are 55
  bytes in v1 and 89 in v2. Field types 0 to 7 are U08, S08, U16, S16,
  U32, S32, S64 and F32; 10 to 12 are bit fields of 1, 2 and 4 bytes.
  A displayed value is ``(raw + transform) * scale``; bit fields are
  raw integers.
- Data blocks: block type (uint8: 0 record, 1 marker), a rolling
  counter (uint8), a timestamp (uint16), then for a record
  ``record length`` bytes of field values and a checksum byte (the sum
  of the value bytes modulo 256), or for a marker a 50-byte message.

NOTE: TunerStudio 3.3.01 writes a v2 field of type 16 with an empty
name and units ``bits``; it takes 1 byte in the record (the record
length leaves exactly one byte for it) and is read as a raw U08.
"""

from __future__ import annotations

import json
import logging
import os
import struct
from pathlib import Path

import numpy as np
import xarray as xr

from dynoai_lab import channels as registry
from dynoai_lab.io.canonical import Column, build_dataset, shift_time
from dynoai_lab.io.errors import LogFormatError
from dynoai_lab.io.files import read_regular_file

logger = logging.getLogger(__name__)

MAGIC = b"MLVLG\x00"

# Field type -> numpy big-endian dtype.
_TYPES = {
    0: ">u1",
    1: ">i1",
    2: ">u2",
    3: ">i2",
    4: ">u4",
    5: ">i4",
    6: ">i8",
    7: ">f4",
    10: ">u1",
    11: ">u2",
    12: ">u4",
    16: ">u1",
}
_BIT_FIELDS = (10, 11, 12, 16)
_HEADER = {1: (">hiHiHH", 22, 55), 2: (">hiIIHH", 24, 89)}
_MARKER_LENGTH = 50


def looks_like_mlg(head: bytes) -> bool:
    """Tell whether a file starts with the MLG magic bytes."""
    return head.startswith(MAGIC[:5])


def read_mlg(path: str | os.PathLike) -> xr.Dataset:
    """Read a MegaLogViewer binary log.

    Parameters
    ----------
    path : str or path-like
        The ``.mlg`` file.

    Returns
    -------
    xarray.Dataset
        Canonical variables on ``time`` [s] (from the log's ``Time``
        field, shifted to start at 0), every other field kept. Dataset
        attrs: ``source_format`` (``"mlg-v1"`` or ``"mlg-v2"``),
        ``source_file``, ``info`` (the information text), ``log_start``
        (Unix time [s] of the header), ``time_offset`` [s] and
        ``markers`` (JSON list of ``{"time": s, "text": ...}``).

    Raises
    ------
    LogFormatError
        If the magic bytes or version are wrong, the header or field
        descriptors are cut short, the record length does not match the
        fields, a block type is unknown, or there is no ``Time`` field.
    """
    path = Path(path)
    data = read_regular_file(path, LogFormatError, "MLG log")
    version, header = _read_header(path, data)
    fields = _read_fields(path, data, version, header)
    records, markers = _read_blocks(path, data, header, fields)
    return _build(path, version, header, fields, records, markers, data)


def _read_header(path: Path, data: bytes) -> tuple[int, dict]:
    if not data.startswith(MAGIC):
        raise LogFormatError(
            f"{path} starts with {data[:6]!r}; expected the MLG magic "
            f"{MAGIC!r}"
        )
    if len(data) < 8:
        raise LogFormatError(f"{path} is cut short inside the MLG header")
    (version,) = struct.unpack(">h", data[6:8])
    if version not in _HEADER:
        raise LogFormatError(
            f"{path} is MLG format version {version}; expected 1 or 2"
        )
    layout, size, descriptor = _HEADER[version]
    if len(data) < size:
        raise LogFormatError(
            f"{path} is cut short inside the MLG header ({len(data)} of "
            f"{size} bytes)"
        )
    _, stamp, info, begin, record_length, n_fields = struct.unpack(
        layout, data[6:size]
    )
    header = {
        "timestamp": stamp,
        "info_start": info,
        "data_start": begin,
        "record_length": record_length,
        "n_fields": n_fields,
        "fields_start": size,
        "descriptor": descriptor,
    }
    return version, header


def _text(raw: bytes) -> str:
    return raw.split(b"\x00", 1)[0].decode("latin-1").strip()


def _read_fields(
    path: Path, data: bytes, version: int, header: dict
) -> list[dict]:
    size = header["descriptor"]
    start = header["fields_start"]
    end = start + size * header["n_fields"]
    if end > len(data) or end > header["data_start"]:
        raise LogFormatError(
            f"{path}: {header['n_fields']} field descriptors of {size} "
            f"bytes end at byte {end}, past the data start "
            f"{header['data_start']} or the file end {len(data)}"
        )
    fields = []
    for number in range(header["n_fields"]):
        raw = data[start + number * size : start + (number + 1) * size]
        kind = raw[0]
        if kind not in _TYPES:
            raise LogFormatError(
                f"{path}: field {number} {_text(raw[1:35])!r} has type "
                f"{kind}; expected one of {sorted(_TYPES)}"
            )
        scale, transform = struct.unpack(">ff", raw[46:54])
        fields.append(
            {
                "type": kind,
                "name": _text(raw[1:35]),
                "units": _text(raw[35:45]),
                "scale": 1.0 if kind in _BIT_FIELDS else scale,
                "transform": 0.0 if kind in _BIT_FIELDS else transform,
                "digits": struct.unpack(">b", raw[54:55])[0],
            }
        )
    total = sum(np.dtype(_TYPES[f["type"]]).itemsize for f in fields)
    if total != header["record_length"]:
        raise LogFormatError(
            f"{path}: the fields take {total} bytes but the header gives a "
            f"record length of {header['record_length']}; the descriptors "
            "do not match the data"
        )
    return fields


def _read_blocks(path: Path, data: bytes, header: dict, fields: list[dict]):
    """Split the data section into record bytes and markers."""
    record_length = header["record_length"]
    dtype = np.dtype(
        [(f"f{i}", _TYPES[f["type"]]) for i, f in enumerate(fields)]
    )
    chunks = []
    markers = []
    bad_checksums = 0
    position = header["data_start"]
    while position < len(data):
        block_type = data[position]
        if block_type == 0:
            end = position + 4 + record_length + 1
            if end > len(data):
                logger.warning(
                    "%s: the last record is cut short (%d of %d bytes); "
                    "dropping it",
                    path,
                    len(data) - position,
                    end - position,
                )
                break
            values = data[position + 4 : end - 1]
            if sum(values) & 0xFF != data[end - 1]:
                bad_checksums += 1
            chunks.append(values)
            position = end
        elif block_type == 1:
            end = position + 4 + _MARKER_LENGTH
            text = _text(data[position + 4 : min(end, len(data))])
            markers.append((len(chunks), text))
            position = end
        else:
            raise LogFormatError(
                f"{path}: block type {block_type} at byte {position}; "
                "expected 0 (record) or 1 (marker)"
            )
    if bad_checksums:
        logger.warning(
            "%s: %d records fail their checksum; their values are kept",
            path,
            bad_checksums,
        )
    records = np.frombuffer(b"".join(chunks), dtype=dtype)
    return records, markers


def _build(path, version, header, fields, records, markers, data):
    values = [
        (records[f"f{i}"].astype(float) + f["transform"]) * f["scale"]
        for i, f in enumerate(fields)
    ]
    names = [f["name"] for f in fields]
    if "Time" not in names:
        raise LogFormatError(
            f"{path} has no 'Time' field; expected one among {names[:8]}..."
        )
    time_index = names.index("Time")
    time_units = registry.normalize_units(fields[time_index]["units"]) or "s"
    time = registry.convert(values[time_index], time_units, "s")
    time, keep, offset = shift_time(path, time)
    columns = [
        Column(
            f["name"],
            v[keep],
            registry.normalize_units(f["units"]),
            {"source_units": f["units"]} if f["units"] else {},
        )
        for i, (f, v) in enumerate(zip(fields, values, strict=True))
        if i != time_index
    ]
    kept_index = np.cumsum(keep) - 1
    marker_list = [
        {
            "time": float(time[max(kept_index[max(n - 1, 0)], 0)])
            if time.size
            else 0.0,
            "text": text,
        }
        for n, text in markers
    ]
    info = data[header["info_start"] : header["data_start"]]
    return build_dataset(
        path,
        time,
        columns,
        source="tunerstudio",
        source_format=f"mlg-v{version}",
        attrs={
            "info": _text(info.replace(b"\x00", b"")) if info else "",
            "log_start": header["timestamp"],
            "time_offset": offset,
            "markers": json.dumps(marker_list),
        },
    )
