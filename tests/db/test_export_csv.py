"""CSV exports cannot run formulas in a spreadsheet (OWASP CSV injection)."""

from __future__ import annotations

import io

import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

from plateseg.db.export import table_bytes


@pytest.mark.parametrize("text", ['=HYPERLINK("http://x")', "+1+1", "-2+3", "@SUM(A1)", "\tx"])
def test_text_cells_a_spreadsheet_would_evaluate_are_defused(text: str) -> None:
    table = pa.table({"well": ["A01", text], "count": [1, -3], "area": [-1.5, 2.0]})
    written = pacsv.read_csv(io.BytesIO(table_bytes(table, "csv")))
    assert written["well"].to_pylist() == ["A01", f"'{text}"]
    assert written["count"].to_pylist() == [1, -3]  # numbers are never altered
    assert written["area"].to_pylist() == [-1.5, 2.0]


def test_parquet_keeps_the_text_as_it_is() -> None:
    import pyarrow.parquet as pq

    table = pa.table({"compound": ["=cmd|' /C calc'!A0"]})
    assert pq.read_table(io.BytesIO(table_bytes(table, "parquet"))).equals(table)
