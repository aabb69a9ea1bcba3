"""Apply and roll back corrections exactly, also through save and load."""

import numpy as np
import pytest
from conftest import DATA

import dynoai_lab as dl
from dynoai_lab.history import HistoryError, TableHistory, table_digest


@pytest.fixture
def table():
    return dl.read_tune(DATA / "base.pvv").ve_front


def awkward_ratio(table, seed=0):
    # Ratios with full-precision mantissas, so before · ratio / ratio is
    # not the original in floating point: only a stored copy restores it.
    rng = np.random.default_rng(seed)
    return 1.0 + rng.uniform(-0.1, 0.1, size=table.shape) / 3.0


def test_apply_then_rollback_is_bit_exact(table):
    history = TableHistory()
    after = history.apply("ve_front", table, awkward_ratio(table), "pull 1")
    assert table_digest(after) != table_digest(table)
    restored = history.rollback("ve_front", after)
    assert restored.values.tobytes() == table.values.tobytes()
    assert table_digest(restored) == table_digest(table)
    assert len(history) == 0


def test_division_would_not_restore(table):
    # Why the history stores the table: dividing back is not exact.
    ratio = awkward_ratio(table)
    divided = (table.values * ratio) / ratio
    assert not np.array_equal(divided, table.values)


def test_rollback_after_save_and_load(table, tmp_path):
    history = TableHistory()
    first = history.apply("ve_front", table, awkward_ratio(table, 1), "a")
    second = history.apply("ve_front", first, awkward_ratio(table, 2), "b")
    path = history.save(tmp_path / "history.nc")
    loaded = TableHistory.load(path)
    assert len(loaded) == 2
    back_once = loaded.rollback("ve_front", second)
    assert back_once.values.tobytes() == first.values.tobytes()
    back_twice = loaded.rollback("ve_front", back_once)
    assert back_twice.values.tobytes() == table.values.tobytes()
    np.testing.assert_array_equal(back_twice["rpm"], table["rpm"])


def test_rollback_refuses_edited_table(table):
    history = TableHistory()
    after = history.apply("ve_front", table, awkward_ratio(table), "pull 1")
    edited = after.copy(data=after.values + 0.5)
    with pytest.raises(HistoryError, match="edited since"):
        history.rollback("ve_front", edited)
    with pytest.raises(HistoryError, match="no recorded change"):
        history.rollback("ve_rear", table)


def test_corrupt_history_file_detected(table, tmp_path):
    import xarray as xr

    history = TableHistory()
    history.apply("ve_front", table, awkward_ratio(table), "pull 1")
    path = history.save(tmp_path / "history.nc")
    ds = xr.load_dataset(path)
    ds["c0_before"].values[0, 0] += 1.0
    ds.to_netcdf(tmp_path / "bad.nc")
    with pytest.raises(HistoryError, match="does not match its recorded"):
        TableHistory.load(tmp_path / "bad.nc")


def test_bad_ratio_rejected(table):
    history = TableHistory()
    with pytest.raises(ValueError, match="shape"):
        history.apply("ve_front", table, np.ones((2, 2)))
    with pytest.raises(ValueError, match="finite and > 0"):
        history.apply("ve_front", table, np.zeros(table.shape))


def test_rollback_after_pvv_round_trip(tmp_path):
    # Apply a correction, save the tune, read it back, roll back: the
    # table is the original bit for bit, and so is the file written
    # from it.
    original = DATA / "base.pvv"
    tune = dl.read_tune(original)
    table = tune.ve_front
    history = TableHistory()
    corrected = history.apply(
        "ve_front",
        table,
        awkward_ratio(table),
        "pull 1",
        decimals=tune.ve_decimals("front"),
    )
    saved = tmp_path / "corrected.pvv"
    dl.write_tune(tune, saved, ve_front=corrected)
    reread = dl.read_tune(saved)
    assert table_digest(reread.ve_front) == table_digest(corrected)

    restored = history.rollback("ve_front", reread.ve_front)
    assert table_digest(restored) == table_digest(table)
    back = tmp_path / "restored.pvv"
    dl.write_tune(reread, back, ve_front=restored)
    assert back.read_bytes() == original.read_bytes()
