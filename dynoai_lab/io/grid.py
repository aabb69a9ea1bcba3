"""Read and write tables as grid CSV files.

A grid CSV contains one table: the first row is a corner cell followed by
the column breakpoints, each further row a row breakpoint followed by
the cells. Variants seen in tuning tools:

- rpm rows and load columns, corner ``RPM``, ``RPM\\MAP`` or ``rpm``;
- load rows and rpm columns, corner ``MAP_kPa``, ``MAP`` or ``TPS``
  (the table is transposed on reading);
- comma, semicolon or tab separators; cells prefixed with ``'`` (a
  spreadsheet guard against formulas) or ``+``; blank cells, read as
  NaN, never as 0.

Writing replaces only the text of changed cells, so an unchanged grid
is written back byte for byte.
"""

from __future__ import annotations

import logging
import os
import re
from functools import cached_property
from pathlib import Path

import numpy as np
import xarray as xr

from dynoai_lab.io import delimited
from dynoai_lab.io.errors import TuneFormatError
from dynoai_lab.io.files import read_regular_file, write_atomic
from dynoai_lab.io.numbers import parse_number
from dynoai_lab.io.tables import check_axes, check_new_values

logger = logging.getLogger(__name__)

_LOAD_CORNERS = ("map", "kpa", "load", "tps")


def _cell_value(text: str) -> float:
    cleaned = text.strip().strip('"').lstrip("'").lstrip("+")
    if cleaned == "" or cleaned.casefold() in ("nan", "n/a"):
        return np.nan
    return parse_number(cleaned)


def looks_like_grid(first_line: str) -> bool:
    """Tell whether a first line is a grid header (corner + numbers)."""
    delimiter = delimited.sniff_delimiter(first_line)
    fields = delimited.split_line(first_line, delimiter)
    if len(fields) < 3 or delimited.is_number(fields[0]):
        return False
    return all(delimited.is_number(f) for f in fields[1:] if f)


class GridTable:
    """One table read from a grid CSV.

    Attributes
    ----------
    shared_ve : bool
        True: the one table is :attr:`ve_front` and :attr:`ve_rear`.
    afr_target, displacement : None
        A grid contains one table only.
    """

    shared_ve = True
    afr_target = None
    displacement = None

    def __init__(self, data: bytes, path: str | os.PathLike | None = None):
        self.data = bytes(data)
        self.path = Path(path) if path is not None else None
        self._label = str(self.path) if self.path else "<grid bytes>"
        self._parse()

    def __repr__(self) -> str:
        return f"GridTable({self._label!r}, {self.values.shape})"

    def _parse(self) -> None:
        try:
            text = self.data.decode("utf-8-sig")
        except UnicodeDecodeError:
            text = self.data.decode("cp1252")
        offset = (
            len(self.data) - len(text.encode("utf-8"))
            if (self.data.startswith(b"\xef\xbb\xbf"))
            else 0
        )
        lines = [
            (m.start() + offset, m.group(0))
            for m in re.finditer(r"[^\r\n]+", text)
            if m.group(0).strip() and not m.group(0).startswith("#")
        ]
        if len(lines) < 2:
            raise TuneFormatError(
                f"{self._label}: {len(lines)} table lines; expected a header "
                "row of breakpoints and at least one row of cells"
            )
        delimiter = delimited.sniff_delimiter(lines[0][1])
        rows = [self._split(start, line, delimiter) for start, line in lines]
        header = rows[0]
        self.corner = header[0][2].strip()
        try:
            columns = [_cell_value(t) for _, _, t in header[1:] if t.strip()]
            # A line ending in a separator has an empty last field.
            rows = [
                row[:-1]
                if len(row) > len(columns) + 1 and not row[-1][2].strip()
                else row
                for row in rows
            ]
            row_labels = [_cell_value(r[0][2]) for r in rows[1:]]
            cells = []
            spans = []
            for number, row in enumerate(rows[1:], start=2):
                if len(row) - 1 < len(columns):
                    raise TuneFormatError(
                        f"{self._label}, line {number}: {len(row) - 1} "
                        f"cells; expected {len(columns)}, one per column"
                    )
                cells.append(
                    [_cell_value(t) for _, _, t in row[1:][: len(columns)]]
                )
                spans.append([(a, b) for a, b, _ in row[1:][: len(columns)]])
        except TuneFormatError:
            raise
        except ValueError as error:
            raise TuneFormatError(
                f"{self._label}: a cell is not a number ({error}); expected "
                "numbers, blank cells or 'nan'"
            ) from None
        self.values = np.array(cells, dtype=float)
        self.spans = spans
        self.row_labels = np.array(row_labels, dtype=float)
        self.column_labels = np.array(columns, dtype=float)
        self.decimals = max(
            (
                len(t.split(".")[1]) if "." in t else 0
                for row in rows[1:]
                for _, _, t in row[1:]
            ),
            default=0,
        )
        self.transposed = self.corner.casefold().startswith(_LOAD_CORNERS)

    @staticmethod
    def _split(start: int, line: str, delimiter: str):
        """Split a line into (byte start, byte end, text) per field."""
        fields, position = [], 0
        for part in line.split(delimiter):
            begin = start + len(line[:position].encode("utf-8"))
            end = begin + len(part.encode("utf-8"))
            fields.append((begin, end, part))
            position += len(part) + len(delimiter)
        return fields

    @cached_property
    def ve(self) -> xr.DataArray:
        """The table with dims ``("rpm", load)`` [units as in the file]."""
        corner = self.corner.casefold()
        dim, unit = ("tps", "%") if "tps" in corner else ("map", "kPa")
        values, rpm, load = self.values, self.row_labels, self.column_labels
        if self.transposed:
            values, rpm, load = values.T, self.column_labels, self.row_labels
        table = xr.DataArray(
            values.copy(),
            dims=("rpm", dim),
            coords={
                "rpm": ("rpm", rpm, {"units": "rpm", "source_units": "rpm"}),
                dim: (dim, load, {"units": unit, "source_units": unit}),
            },
            name="ve",
            attrs={"units": "%", "source_name": self.corner},
        )
        return check_axes(table, f"{self._label}, table {self.corner!r}")

    @property
    def ve_front(self) -> xr.DataArray:
        """The table; the same as :attr:`ve_rear` (``shared_ve``)."""
        return self.ve

    @property
    def ve_rear(self) -> xr.DataArray:
        """The table; the same as :attr:`ve_front` (``shared_ve``)."""
        return self.ve

    def with_ve(self, ve) -> GridTable:
        """Return a copy whose changed cells are rewritten.

        ``ve`` is checked like the other tunes' new values (see
        :func:`dynoai_lab.io.tables.check_new_values`); NaN cells are
        written blank.
        """
        new = check_new_values(self.ve, ve, f"{self._label}, table")
        if self.transposed:
            new = new.T
        edits = {}
        for r, c in zip(
            *np.nonzero(np.ones_like(new, dtype=bool)), strict=True
        ):
            old, value = self.values[r, c], new[r, c]
            if np.isnan(value) and np.isnan(old):
                continue
            if np.isnan(value):
                text = ""
            else:
                text = f"{value:.{self.decimals}f}"
                if not np.isnan(old) and float(text) == old:
                    continue
            edits[self.spans[r][c]] = text.encode()
        if not edits:
            return self
        pieces, position = [], 0
        for start, end in sorted(edits):
            pieces += [self.data[position:start], edits[(start, end)]]
            position = end
        pieces.append(self.data[position:])
        return GridTable(b"".join(pieces), self.path)

    def write(
        self, path: str | os.PathLike, *, overwrite_readonly: bool = False
    ) -> Path:
        """Write the grid's bytes atomically.

        See :func:`dynoai_lab.io.files.write_atomic` for symlinks and
        read-only destinations.
        """
        path = Path(path)
        write_atomic(path, self.data, overwrite_readonly=overwrite_readonly)
        return path


def read_grid(path: str | os.PathLike) -> GridTable:
    """Read a grid CSV table.

    Raises
    ------
    TuneFormatError
        If the file cannot be read, has fewer than two lines, a row has
        fewer cells than there are columns or a cell is not a number.
    """
    path = Path(path)
    data = read_regular_file(path, TuneFormatError, "grid")
    return GridTable(data, path)
