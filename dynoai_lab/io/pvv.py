"""Read and write Dynojet Power Vision tunes (``.pvv``).

A ``.pvv`` file is XML: a ``<PVV>`` root holding ``<Item name=".."
units="..">`` elements, each with ``<Columns units=".."><Col label=".."
/>...</Columns>`` and ``<Rows units=".."><Row label=".."><Cell value=".."
/>...</Row></Rows>``. Scalars are 1 x 1 items, strings such as the
calibration ID are a row of character codes, and item names may repeat.
RPM axes are written in thousands (units ``RPMx1000``).

Axes are padded: the last real breakpoint is repeated to fill the
table's fixed size (the rpm axis of the base Harley VE table ends in
nine ``6.5`` rows). Repeated labels are not breakpoints, so tables
returned here keep only the first occurrence, and the padding cells
keep their place in the item for the writer.

Writing edits the original bytes at the positions of the changed
``value="..."`` texts and copies every other byte, so an unchanged tune
is written back byte for byte. By default padding cells are left as
they were, see :meth:`PvvTune.with_table`. Files are UTF-8 (or ASCII);
UTF-16 with a byte-order mark is read and written back in UTF-16.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from xml.etree.ElementTree import Element, ParseError

import numpy as np
import xarray as xr
from defusedxml import DefusedXmlException
from defusedxml import ElementTree as SafeElementTree

from dynoai_lab import units as unit_constants
from dynoai_lab.channels import slugify
from dynoai_lab.io.errors import TuneFormatError
from dynoai_lab.io.files import read_regular_file, write_atomic
from dynoai_lab.io.numbers import is_number, parse_number
from dynoai_lab.io.tables import LOAD_DIMS, check_axes, check_new_values

logger = logging.getLogger(__name__)

VE_ITEMS = {
    ("map", "front"): "VE (MAP based/Front Cyl)",
    ("map", "rear"): "VE (MAP based/Rear Cyl)",
    ("tps", "front"): "VE (TPS based/Front Cyl)",
    ("tps", "rear"): "VE (TPS based/Rear Cyl)",
}
AFR_TARGET_ITEM = "Air-Fuel Ratio"
DISPLACEMENT_ITEM = "Engine Displacement"
INJECTOR_SIZE_ITEM = "Injector Size"
CALIBRATION_ID_ITEM = "Calibration ID"

#: Decimals written for a new cell value when the item's own cells use
#: fewer. Power Vision files show up to 3 decimals in tables.
MIN_DECIMALS = 3

# Axis units as written in .pvv files -> (dimension, unit, scale to unit).
# Fahrenheit is handled apart because it needs an offset.
_AXES = {
    "RPMx1000": ("rpm", "rpm", 1000.0),
    "RPM": ("rpm", "rpm", 1.0),
    "Kilopascals": ("map", "kPa", 1.0),
    "%": ("tps", "%", 1.0),
}
# Cell units as written -> (unit, scale to unit).
_CELL_UNITS = {
    "RPMx1000": ("rpm", 1000.0),
    "RPM": ("rpm", 1.0),
    "Kilopascals": ("kPa", 1.0),
    "Degrees": ("deg", 1.0),
    "AFR": ("1", 1.0),
}

# The whitespace before "value" keeps attributes such as "old-value"
# from matching.
_CELL = re.compile(rb"<Cell\b[^>]*?\svalue\s*=\s*(?:\"([^\"]*)\"|'([^']*)')")
_COMMENT = re.compile(rb"<!--.*?-->", re.DOTALL)


def _utf16_codec(data: bytes) -> tuple[str, int] | None:
    """Return (codec, BOM length) of UTF-16 data, or None for UTF-8.

    Without a byte-order mark, a NUL in the first or second byte marks
    UTF-16 as in the XML specification's encoding detection (appendix
    F), because a .pvv starts with ``<`` or whitespace.
    """
    if data.startswith(b"\xff\xfe"):
        return "utf-16-le", 2
    if data.startswith(b"\xfe\xff"):
        return "utf-16-be", 2
    if len(data) >= 2 and data[0] != 0 and data[1] == 0:
        return "utf-16-le", 0
    if len(data) >= 2 and data[0] == 0 and data[1] != 0:
        return "utf-16-be", 0
    return None


@dataclass(frozen=True)
class PvvItem:
    """One ``<Item>`` of a tune, as written in the file.

    Attributes
    ----------
    index : int
        Position of the item in the file (0-based).
    name : str
        The ``name`` attribute. Names may repeat within one file.
    id : str or None
        The ``id`` attribute, or None where the file has none.
    units : str
        Unit of the cell values as written (``"%"``, ``"RPMx1000"``...).
    column_units, row_units : str
        Units of the column and row labels as written.
    column_labels, row_labels : tuple of str
        Axis labels as written, including padding repeats.
    cell_text : tuple of tuple of str
        Cell values as written, one tuple per row.
    first_cell : int
        Number of ``<Cell>`` elements in the file before this item's
        first cell; the writer uses it to find a cell's position.
    """

    index: int
    name: str
    id: str | None
    units: str
    column_units: str
    column_labels: tuple[str, ...]
    row_units: str
    row_labels: tuple[str, ...]
    cell_text: tuple[tuple[str, ...], ...]
    first_cell: int

    @property
    def shape(self) -> tuple[int, int]:
        """Rows and columns as written, padding included."""
        return len(self.row_labels), len(self.column_labels)

    @property
    def values(self) -> np.ndarray:
        """Cell values as written, as floats of shape :attr:`shape`."""
        return np.array(
            [[float(text) for text in row] for row in self.cell_text],
            dtype=float,
        ).reshape(self.shape)

    @property
    def real_shape(self) -> tuple[int, int]:
        """Rows and columns once padding repeats are dropped."""
        return (
            count_breakpoints(self.row_labels),
            count_breakpoints(self.column_labels),
        )

    @property
    def decimals(self) -> int:
        """Maximum number of digits after the decimal point in the cells."""
        return max(
            (
                len(text) - text.index(".") - 1 if "." in text else 0
                for row in self.cell_text
                for text in row
            ),
            default=0,
        )


def count_breakpoints(labels: Sequence[str]) -> int:
    """Count the axis labels that remain once padding is dropped.

    Padding is a run of labels at the end of an axis equal to the label
    before the run. The first occurrence is kept as the breakpoint.

    Parameters
    ----------
    labels : sequence of str
        Axis labels as written.

    Returns
    -------
    int
        Number of real breakpoints.

    Examples
    --------
    >>> count_breakpoints(["60", "80", "100", "100", "100"])
    3
    """
    count = len(labels)
    while count > 1 and _same_label(labels[count - 1], labels[count - 2]):
        count -= 1
    return count


def _same_label(a: str, b: str) -> bool:
    try:
        return float(a) == float(b)
    except ValueError:
        return a == b


class PvvTune:
    """A Power Vision tune read from a ``.pvv`` file.

    The tune keeps the file's bytes, so edits made with
    :meth:`with_table` change only the edited cells' text. Tables are
    returned as :class:`xarray.DataArray` on the tune's real breakpoints
    (padding repeats dropped), with rpm axes in rpm.

    Parameters
    ----------
    data : bytes
        Contents of a ``.pvv`` file: UTF-8, or UTF-16 with a byte-order
        mark.
    path : str or path-like, optional
        File the bytes came from; used in messages. A tune made by
        :meth:`with_table` keeps the path of the tune it was made from.
    ve_occurrence : int, default 0
        Which of several items with the VE table's name to use for
        :attr:`ve_front`, :attr:`ve_rear` and :meth:`with_tables` (0 is
        the first in the file). A warning names the copies when a name
        repeats with different contents.

    Raises
    ------
    TuneFormatError
        If the bytes are not XML, the root is not ``<PVV>``, an item
        lacks its ``Columns`` or ``Rows`` or has none of them, a row has
        a different number of cells than there are columns, a cell value
        is not a decimal number, or a cell's raw text cannot be located
        for writing.
    """

    def __init__(
        self,
        data: bytes,
        path: str | os.PathLike | None = None,
        *,
        ve_occurrence: int = 0,
    ):
        self.data = bytes(data)
        self.path = Path(path) if path is not None else None
        self.ve_occurrence = ve_occurrence
        self._label = str(self.path) if self.path else "<.pvv bytes>"
        self._utf16 = _utf16_codec(self.data)
        self._text = self._utf8_text()
        root = self._parse_root()
        spans = self._cell_spans()
        self.items: tuple[PvvItem, ...] = tuple(self._read_items(root))
        self._spans = self._check_spans(spans)

    # -- parsing -------------------------------------------------------

    def _utf8_text(self) -> bytes:
        """Return the file as UTF-8 bytes, where cell spans are found.

        A UTF-16 file is transcoded; the writer encodes the edited text
        back to UTF-16, so unchanged bytes stay identical.
        """
        if self._utf16 is None:
            return self.data
        codec, bom = self._utf16
        try:
            return self.data[bom:].decode(codec).encode("utf-8")
        except UnicodeError as error:
            raise TuneFormatError(
                f"{self._label} looks like {codec.upper()} but does not "
                f"decode as such ({error}); expected a Power Vision .pvv "
                "tune in UTF-8 or UTF-16"
            ) from None

    def _parse_root(self) -> Element:
        try:
            root = SafeElementTree.fromstring(self.data)
        except ParseError as error:
            hint = ""
            if self._utf16 is not None:
                hint = (
                    f" (read as {self._utf16[0].upper()}); save it as UTF-8 "
                    "or as UTF-16 with a byte-order mark"
                )
            raise TuneFormatError(
                f"{self._label} is not valid XML ({error}); expected a "
                f"Power Vision .pvv tune{hint}"
            ) from None
        except DefusedXmlException as error:
            raise TuneFormatError(
                f"{self._label} uses a forbidden XML feature ({error!r}); "
                "a Power Vision .pvv tune has none"
            ) from None
        if root.tag != "PVV":
            raise TuneFormatError(
                f"{self._label} has root element <{root.tag}>; expected "
                "<PVV> as in a Power Vision .pvv tune"
            )
        return root

    def _cell_spans(self) -> list[tuple[int, int]]:
        """Find the byte span of every cell's value text, outside comments.

        Spans are positions in :meth:`_utf8_text`, which is the file
        itself unless it is UTF-16.
        """
        comments = [m.span() for m in _COMMENT.finditer(self._text)]
        spans = []
        for match in _CELL.finditer(self._text):
            group = 1 if match.group(1) is not None else 2
            start = match.start()
            if any(a <= start < b for a, b in comments):
                continue
            spans.append(match.span(group))
        return spans

    def _read_items(self, root: Element) -> list[PvvItem]:
        items = []
        first_cell = 0
        for index, element in enumerate(root.iter("Item")):
            item = self._read_item(index, element, first_cell)
            first_cell += item.shape[0] * item.shape[1]
            items.append(item)
        return items

    def _read_item(
        self, index: int, element: Element, first_cell: int
    ) -> PvvItem:
        name = element.get("name", "")
        where = f"{self._label}, item {index} {name!r}"
        columns = element.find("Columns")
        rows = element.find("Rows")
        if columns is None or rows is None:
            raise TuneFormatError(
                f"{where} has no <Columns> or no <Rows>; expected both"
            )
        column_labels = tuple(c.get("label", "") for c in columns.iter("Col"))
        row_labels = []
        cell_text = []
        for row in rows.iter("Row"):
            label = row.get("label", "")
            cells = tuple(c.get("value", "") for c in row.iter("Cell"))
            if len(cells) != len(column_labels):
                raise TuneFormatError(
                    f"{where}, row {label!r} has {len(cells)} cells; "
                    f"expected {len(column_labels)}, one per column"
                )
            for text in cells:
                if not is_number(text):
                    raise TuneFormatError(
                        f"{where}, row {label!r} has cell value {text!r}; "
                        "expected a decimal number"
                    )
            row_labels.append(label)
            cell_text.append(cells)
        for axis, labels in (
            ("<Columns>", column_labels),
            ("<Rows>", row_labels),
        ):
            if not labels:
                raise TuneFormatError(
                    f"{where} has an empty {axis}; expected at least one "
                    f"{'<Col>' if axis == '<Columns>' else '<Row>'}"
                )
        return PvvItem(
            index=index,
            name=name,
            id=element.get("id"),
            units=element.get("units", ""),
            column_units=columns.get("units", ""),
            column_labels=column_labels,
            row_units=rows.get("units", ""),
            row_labels=tuple(row_labels),
            cell_text=tuple(cell_text),
            first_cell=first_cell,
        )

    def _check_spans(
        self, spans: list[tuple[int, int]]
    ) -> list[tuple[int, int]]:
        """Check that the raw cell texts line up with the parsed cells.

        The writer replaces cell texts by byte position, so the n-th
        ``value="..."`` text in the bytes must be the n-th parsed cell.
        """
        parsed = [
            text.encode()
            for item in self.items
            for row in item.cell_text
            for text in row
        ]
        found = [self._text[a:b] for a, b in spans]
        if found == parsed:
            return spans
        first = next(
            (
                k
                for k, (raw, cell) in enumerate(
                    zip(found, parsed, strict=False)
                )
                if raw != cell
            ),
            min(len(found), len(parsed)),
        )
        where = self._describe_cell(first)
        if first < len(found):
            line = self._text.count(b"\n", 0, spans[first][0]) + 1
            raw = f"the raw text on line {line} is {found[first].decode()!r}"
        else:
            raw = "no raw <Cell value=...> text is left for it"
        if len(found) == len(parsed):
            problem = (
                f"{where} has value {parsed[first].decode()!r}, but {raw}"
            )
        else:
            problem = (
                f"{len(found)} raw <Cell value=...> texts but {len(parsed)} "
                f"cells inside items; the first difference is at {where}: "
                f"{raw}"
            )
        encoding = (
            f" (read as {self._utf16[0].upper()})" if self._utf16 else ""
        )
        raise TuneFormatError(
            f"{self._label}{encoding}: {problem}; expected each <Cell> "
            "inside an "
            'item\'s <Rows>, written as value="number" without entities, '
            "CDATA or nested items"
        )

    def _describe_cell(self, number: int) -> str:
        """Name the item, row and column of the n-th parsed cell."""
        for item in self.items:
            n_rows, n_columns = item.shape
            offset = number - item.first_cell
            if 0 <= offset < n_rows * n_columns:
                row, column = divmod(offset, n_columns)
                return (
                    f"item {item.index} {item.name!r}, row "
                    f"{item.row_labels[row]!r}, column "
                    f"{item.column_labels[column]!r}"
                )
        return "a cell after the last item"

    # -- looking items up ------------------------------------------------

    def find(self, name: str) -> list[int]:
        """Return the indices of all items with this name, in file order."""
        return [item.index for item in self.items if item.name == name]

    def item(self, name: str | int, occurrence: int = 0) -> PvvItem:
        """Return an item by index, or by name and occurrence.

        Parameters
        ----------
        name : str or int
            Item name, or the item's index in :attr:`items`.
        occurrence : int, default 0
            Which of several items with the same name (0 is the first).

        Raises
        ------
        KeyError
            If no such item exists; the message lists similar names.
        """
        if isinstance(name, int):
            return self.items[name]
        found = self.find(name)
        if occurrence >= len(found):
            words = [w for w in re.split(r"\W+", name.casefold()) if w]
            similar = sorted(
                {
                    item.name
                    for item in self.items
                    if any(w in item.name.casefold() for w in words)
                }
            )
            raise KeyError(
                f"{self._label} has {len(found)} item(s) named {name!r}, "
                f"so occurrence {occurrence} does not exist; similar "
                f"names: {similar[:10]}"
            )
        return self.items[found[occurrence]]

    def table(self, name: str | int, occurrence: int = 0) -> xr.DataArray:
        """Return an item's cells on its real breakpoints.

        Axes labelled ``RPMx1000`` (thousands) or ``RPM`` become
        dimension ``rpm`` [rpm],
        ``Kilopascals`` becomes ``map`` [kPa], ``%`` becomes ``tps`` [%]
        and ``Fahrenheit`` becomes ``temperature`` [°C]; other axes are
        ``row`` and ``column`` with the file's unit. A single row with
        label ``0`` and no unit (a vector) is dropped, so vectors are
        1-D and scalars 0-D. Cell values in ``RPMx1000`` become rpm and
        in ``Fahrenheit`` become °C; other units stay as written.
        Breakpoints are not checked here; :attr:`ve_front`,
        :attr:`ve_rear` and :attr:`afr_target` check theirs.

        Parameters
        ----------
        name : str or int
            Item name, or index in :attr:`items`.
        occurrence : int, default 0
            Which of several items with the same name.

        Returns
        -------
        xarray.DataArray
            The cells with ``attrs`` ``units``, ``long_name``,
            ``source_name`` and ``source_units``.

        Raises
        ------
        TuneFormatError
            If an axis label is not a number.
        """
        item = self.item(name, occurrence)
        n_rows, n_columns = item.real_shape
        for axis, n_real, labels in (
            ("row", n_rows, item.row_labels),
            ("column", n_columns, item.column_labels),
        ):
            if n_real < len(labels):
                logger.info(
                    "%s, item %r: dropped %d padding %s(s) repeating label %r",
                    self._label,
                    item.name,
                    len(labels) - n_real,
                    axis,
                    labels[n_real - 1],
                )

        row_dim, row_coord = self._axis(item, "row", n_rows)
        column_dim, column_coord = self._axis(item, "column", n_columns)
        if row_dim == column_dim:
            row_dim, column_dim = f"{row_dim}_row", f"{column_dim}_column"
        cell_units, values = _convert_cells(item.units, item.values)
        array = xr.DataArray(
            values[:n_rows, :n_columns],
            dims=(row_dim, column_dim),
            coords={row_dim: row_coord, column_dim: column_coord},
            name=slugify(item.name) or f"item_{item.index}",
            attrs={
                "units": cell_units,
                "long_name": item.name,
                "source_name": item.name,
                "source_units": item.units,
            },
        )
        if item.row_labels == ("0",) and item.row_units == "":
            array = array.isel({row_dim: 0}, drop=True)
        if item.column_labels == ("0",) and item.column_units == "":
            array = array.isel({column_dim: 0}, drop=True)
        return array

    def _axis(
        self, item: PvvItem, axis: str, n_real: int
    ) -> tuple[str, xr.Variable]:
        labels = item.row_labels if axis == "row" else item.column_labels
        file_units = item.row_units if axis == "row" else item.column_units
        try:
            numbers = np.array([parse_number(x) for x in labels[:n_real]])
        except ValueError:
            raise TuneFormatError(
                f"{self._label}, item {item.name!r}: {axis} labels "
                f"{list(labels[:n_real])} are not all numbers"
            ) from None

        if file_units in _AXES:
            dim, unit, scale = _AXES[file_units]
            numbers = numbers * scale
        elif file_units == "Fahrenheit":
            dim, unit = "temperature", "°C"
            numbers = unit_constants.fahrenheit_to_celsius(numbers)
        else:
            dim, unit = axis, file_units or "unknown"
        attrs = {"units": unit, "source_units": file_units}
        return dim, xr.Variable(dim, numbers, attrs)

    def scalar(self, name: str | int, occurrence: int = 0) -> float:
        """Return the value of a 1 x 1 item, in the units of :meth:`table`.

        Raises
        ------
        ValueError
            If the item is not 1 x 1.
        """
        item = self.item(name, occurrence)
        if item.shape != (1, 1):
            raise ValueError(
                f"{self._label}, item {item.name!r} is {item.shape[0]} x "
                f"{item.shape[1]}; expected a 1 x 1 scalar, use table()"
            )
        return float(self.table(item.index).values)

    # -- named quantities ------------------------------------------------

    @property
    def ve_load(self) -> str:
        """Load axis of the VE tables: ``"map"`` or ``"tps"``.

        When a tune contains both, the MAP-based (speed-density) tables are
        used.

        NOTE: the 110 CID template also contains a 1 x 1 "Volumetric
        Efficiency Table Selection" switch (value 1); what its values
        mean is not documented, so it is not used here.
        """
        for load in ("map", "tps"):
            if self.find(VE_ITEMS[(load, "front")]):
                return load
        raise KeyError(
            f"{self._label} has no VE table; expected an item named "
            f"{VE_ITEMS[('map', 'front')]!r} or {VE_ITEMS[('tps', 'front')]!r}"
        )

    @cached_property
    def ve_front(self) -> xr.DataArray:
        """VE table of the front cylinder [%], dims ``("rpm", ve_load)``."""
        return self._ve("front")

    @cached_property
    def ve_rear(self) -> xr.DataArray:
        """VE table of the rear cylinder [%], dims ``("rpm", ve_load)``."""
        return self._ve("rear")

    def ve_decimals(self, cylinder: str) -> int:
        """Return the decimals written for new cells of a VE table.

        Pass it as ``decimals=`` to
        :meth:`dynoai_lab.history.TableHistory.apply`, so that the
        corrected table in memory is what this file stores and a
        rollback still matches after the tune is saved and read again.
        """
        item = self.item(
            VE_ITEMS[(self.ve_load, cylinder)], self.ve_occurrence
        )
        return max(MIN_DECIMALS, item.decimals)

    def _ve(self, cylinder: str) -> xr.DataArray:
        load = self.ve_load
        array = self._checked_table(
            VE_ITEMS[(load, cylinder)], self.ve_occurrence, (load,)
        )
        array.name = f"ve_{cylinder}"
        array.attrs["long_name"] = (
            f"volumetric efficiency, {cylinder} cylinder"
        )
        return array

    @cached_property
    def afr_target(self) -> xr.DataArray:
        """Target air-fuel ratio table [1], dims ``("rpm", "map")``."""
        array = self._checked_table(AFR_TARGET_ITEM, 0, LOAD_DIMS)
        array.name = "afr_target"
        array.attrs["long_name"] = "target air-fuel ratio"
        return array

    def _checked_table(
        self, name: str, occurrence: int, load_dims: tuple[str, ...]
    ) -> xr.DataArray:
        """Return a table used for interpolation, with its axes checked.

        When several items share the name and differ, a warning names
        them and the one used.
        """
        item = self.item(name, occurrence)
        self._warn_duplicates(item, occurrence)
        return check_axes(
            self.table(item.index),
            f"{self._label}, item {item.index} {name!r}",
            load_dims,
        )

    def _warn_duplicates(self, item: PvvItem, occurrence: int) -> None:
        indices = self.find(item.name)
        if len(indices) < 2:
            return
        copies = [self.items[i] for i in indices]
        same = all(
            (c.cell_text, c.row_labels, c.column_labels)
            == (item.cell_text, item.row_labels, item.column_labels)
            for c in copies
        )
        choose = (
            "pass ve_occurrence=N to read_pvv to use another"
            if item.name in VE_ITEMS.values()
            else "use table(name, occurrence=N) for another"
        )
        logger.log(
            logging.INFO if same else logging.WARNING,
            "%s: %d items are named %r (items %s) and %s; using item %d "
            "(occurrence %d); %s",
            self._label,
            len(indices),
            item.name,
            ", ".join(str(i) for i in indices),
            "are identical" if same else "differ",
            item.index,
            occurrence,
            choose,
        )

    @property
    def displacement_cid(self) -> float:
        """Engine displacement [in³] ("CID" in the file)."""
        return self.scalar(DISPLACEMENT_ITEM)

    @property
    def displacement(self) -> float:
        """Engine displacement [m³]."""
        return self.displacement_cid * unit_constants.CUBIC_INCH

    @property
    def injector_size_lb_h(self) -> float:
        """Injector flow rating [lb/h]."""
        return self.scalar(INJECTOR_SIZE_ITEM)

    @property
    def injector_flow_rate(self) -> float:
        """Injector flow rating [kg/s]."""
        return self.injector_size_lb_h * unit_constants.POUND / 3600.0

    @property
    def calibration_id(self) -> str:
        """Calibration ID, decoded from the item's character codes.

        NUL codes and trailing spaces are removed.
        """
        item = self.item(CALIBRATION_ID_ITEM)
        codes = item.values.ravel()
        if not np.all(
            (codes == np.round(codes)) & (codes >= 0) & (codes < 256)
        ):
            raise TuneFormatError(
                f"{self._label}, item {item.name!r} contains "
                f"{codes.tolist()}; "
                "expected character codes 0 to 255"
            )
        return "".join(chr(int(c)) for c in codes if c != 0).rstrip()

    # -- editing and writing ---------------------------------------------

    def with_table(
        self,
        name: str | int,
        values,
        occurrence: int = 0,
        *,
        padding: str = "keep",
    ) -> PvvTune:
        """Return a copy of the tune with one item's cells replaced.

        Parameters
        ----------
        name : str or int
            Item name, or index in :attr:`items`.
        values : xarray.DataArray or array_like
            New cell values in the units of :meth:`table`, on the real
            breakpoints (padding dropped). A DataArray must have the
            dims and coordinates that :meth:`table` returns, so a table
            on other axes cannot be written by mistake; an array must
            have the shape of :meth:`table`, so a transposed array is
            rejected (except for a square table).
        occurrence : int, default 0
            Which of several items with the same name.
        padding : {"keep", "copy"}, default "keep"
            ``"keep"`` leaves padding cells as they are: the ECU reads
            them only if it clamps to the last index of an axis rather
            than the first match of the last breakpoint. ``"copy"``
            writes each changed cell of the last real row or column into
            the padding cells that repeat it.

        Returns
        -------
        PvvTune
            A new tune whose bytes differ from this one only in the
            ``value`` text of cells whose value changed. A new value
            that formats to the same number as the old text leaves the
            old text in place.

        Raises
        ------
        ValueError
            If the values have the wrong shape or axes, hold NaN or
            infinity, or ``padding`` is not ``"keep"`` or ``"copy"``.
        """
        if padding not in ("keep", "copy"):
            raise ValueError(f"padding={padding!r}; expected 'keep' or 'copy'")
        item = self.item(name, occurrence)
        new = self._check_new_values(item, values)
        edits = _cell_edits(item, new, padding)
        if not edits:
            return self
        logger.info(
            "%s, item %r: %d cell(s) changed",
            self._label,
            item.name,
            len(edits),
        )
        return PvvTune(
            self._apply(edits), self.path, ve_occurrence=self.ve_occurrence
        )

    def with_tables(
        self, ve_front=None, ve_rear=None, *, padding: str = "keep"
    ) -> PvvTune:
        """Return a copy with new VE tables (see :meth:`with_table`).

        Parameters
        ----------
        ve_front, ve_rear : xarray.DataArray or array_like, optional
            New VE [%] on the axes of :attr:`ve_front` and
            :attr:`ve_rear`, written to the item of occurrence
            :attr:`ve_occurrence`. None leaves a table unchanged.
        padding : {"keep", "copy"}, default "keep"
            How padding cells are treated, see :meth:`with_table`.
        """
        tune = self
        for cylinder, values in (("front", ve_front), ("rear", ve_rear)):
            if values is not None:
                item = VE_ITEMS[(self.ve_load, cylinder)]
                tune = tune.with_table(
                    item, values, self.ve_occurrence, padding=padding
                )
        return tune

    def write(
        self, path: str | os.PathLike, *, overwrite_readonly: bool = False
    ) -> Path:
        """Write the tune's bytes to a file, atomically.

        The bytes go to a temporary file in the destination folder,
        which then replaces the destination, so a crash does not leave a
        half-written tune. Writing over the file the tune was read from
        is allowed and also atomic. A symlink is written through to its
        target; see :func:`dynoai_lab.io.files.write_atomic`.

        Parameters
        ----------
        path : str or path-like
            Destination file.
        overwrite_readonly : bool, default False
            Replace a destination without write permission.

        Returns
        -------
        pathlib.Path
            The destination.

        Raises
        ------
        OSError
            If the folder is missing, the destination is read-only
            (``PermissionError``) or writing fails.
        """
        path = Path(path)
        write_atomic(path, self.data, overwrite_readonly=overwrite_readonly)
        logger.info("wrote %s (%d bytes)", path, len(self.data))
        return path

    def _check_new_values(self, item: PvvItem, values) -> np.ndarray:
        where = f"{self._label}, item {item.index} {item.name!r}"
        expected = self.table(item.index)
        array = check_new_values(expected, values, where)
        array = array.reshape(item.real_shape)
        if not np.all(np.isfinite(array)):
            rows, columns = np.nonzero(~np.isfinite(array))
            raise ValueError(
                f"{where}: new values contain {rows.size} NaN or infinite "
                f"cells (first at row {rows[0]}, column {columns[0]}); "
                "fill them before writing"
            )
        _, scale = _CELL_UNITS.get(item.units, (item.units, 1.0))
        if item.units == "Fahrenheit":
            return unit_constants.celsius_to_fahrenheit(array)
        return array / scale

    def _apply(self, edits: dict[int, bytes]) -> bytes:
        """Splice new value texts into the original bytes."""
        pieces = []
        position = 0
        for cell in sorted(edits):
            start, end = self._spans[cell]
            pieces.append(self._text[position:start])
            pieces.append(edits[cell])
            position = end
        pieces.append(self._text[position:])
        spliced = b"".join(pieces)
        if self._utf16 is None:
            return spliced
        codec, bom = self._utf16
        return self.data[:bom] + spliced.decode("utf-8").encode(codec)

    def __repr__(self) -> str:
        return f"PvvTune({self._label!r}, {len(self.items)} items)"


def _convert_cells(file_units: str, values: np.ndarray):
    """Convert cell values to library units; return (unit, values)."""
    if file_units == "Fahrenheit":
        return "°C", unit_constants.fahrenheit_to_celsius(values)
    unit, scale = _CELL_UNITS.get(file_units, (file_units or "unknown", 1.0))
    return unit, values * scale


def format_value(value: float, decimals: int) -> str:
    """Format a cell value the way Power Vision writes it.

    At most ``decimals`` digits after the point, no trailing zeros and
    no trailing point, and ``0`` rather than ``-0``.

    Examples
    --------
    >>> format_value(104.25, 3), format_value(98.0, 3), format_value(-1e-9, 3)
    ('104.25', '98', '0')
    """
    text = f"{value:.{decimals}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _cell_edits(
    item: PvvItem, new: np.ndarray, padding: str
) -> dict[int, bytes]:
    """Map global cell numbers to new value texts for changed cells."""
    n_rows, n_columns = item.shape
    real_rows, real_columns = item.real_shape
    decimals = max(MIN_DECIMALS, item.decimals)
    changed: dict[tuple[int, int], str] = {}
    for r in range(real_rows):
        for c in range(real_columns):
            text = format_value(float(new[r, c]), decimals)
            if float(text) != float(item.cell_text[r][c]):
                changed[(r, c)] = text

    if padding == "copy":
        for r in range(n_rows):
            for c in range(n_columns):
                if r < real_rows and c < real_columns:
                    continue
                source = (min(r, real_rows - 1), min(c, real_columns - 1))
                if source in changed:
                    changed[(r, c)] = changed[source]

    return {
        item.first_cell + r * n_columns + c: text.encode("ascii")
        for (r, c), text in changed.items()
    }


def read_pvv(path: str | os.PathLike, *, ve_occurrence: int = 0) -> PvvTune:
    """Read a Power Vision ``.pvv`` tune.

    Parameters
    ----------
    path : str or path-like
        The ``.pvv`` file (UTF-8, or UTF-16 with a byte-order mark).
    ve_occurrence : int, default 0
        Which item to use when the VE table's name appears more than
        once, see :class:`PvvTune`.

    Returns
    -------
    PvvTune
        The tune, holding the file's bytes for a faithful write.

    Raises
    ------
    TuneFormatError
        If the file cannot be read, is not a regular file (a FIFO, a
        device or a directory) or is not a valid ``.pvv`` tune; the
        message names the file and what is wrong.

    Examples
    --------
    >>> tune = read_pvv("data/base.pvv")  # doctest: +SKIP
    >>> tune.ve_front.dims  # doctest: +SKIP
    ('rpm', 'tps')
    """
    path = Path(path)
    data = read_regular_file(path, TuneFormatError, "tune")
    tune = PvvTune(data, path, ve_occurrence=ve_occurrence)
    logger.info("read %s: %d items", path, len(tune.items))
    return tune


def write_pvv(
    tune: PvvTune,
    path: str | os.PathLike,
    ve_front=None,
    ve_rear=None,
    *,
    padding: str = "keep",
    overwrite_readonly: bool = False,
) -> PvvTune:
    """Write a tune, optionally with new VE tables, atomically.

    Only the ``value`` text of changed VE cells differs from the bytes
    the tune was read from; see :meth:`PvvTune.with_table`.

    Parameters
    ----------
    tune : PvvTune
        The tune to write.
    path : str or path-like
        Destination file. It may be the file the tune was read from.
    ve_front, ve_rear : xarray.DataArray or array_like, optional
        New VE [%] on the axes of ``tune.ve_front`` and ``tune.ve_rear``.
    padding : {"keep", "copy"}, default "keep"
        How padding cells are treated, see :meth:`PvvTune.with_table`.
    overwrite_readonly : bool, default False
        Replace a destination without write permission.

    Returns
    -------
    PvvTune
        The tune as written.

    Raises
    ------
    ValueError
        If new values have other dims, coordinates or shape than the
        tables they replace, or hold NaN or infinity.
    OSError
        If the destination's folder is missing, the destination is
        read-only (``PermissionError``) or writing fails.
    """
    written = tune.with_tables(ve_front, ve_rear, padding=padding)
    written.write(path, overwrite_readonly=overwrite_readonly)
    return written
