"""The CSV ItemReader splits text by Step Functions' rules, not Python's ``csv`` defaults.

AWS: https://docs.aws.amazon.com/step-functions/latest/dg/example-csv-parse-dist-map.html
(quotes may hold delimiters and newlines, ``""`` is a quote, a backslash escapes a
backslash, a quote or the field separator and is dropped before anything else).
"""

from __future__ import annotations

import doctest

import pytest

from plateseg.engine import item_io
from plateseg.engine.item_io import split_csv


@pytest.mark.parametrize(
    ("text", "delimiter", "records"),
    [
        ('"x,y",p\\,q', ",", [["x,y", "p,q"]]),
        ("a,b\r\nc,d\r\n", ",", [["a", "b"], ["c", "d"]]),
        ("a,b\n\n\nc,d", ",", [["a", "b"], ["c", "d"]]),
        ('"line1\nline2",x', ",", [["line1\nline2", "x"]]),
        ('"a""b",c', ",", [['a"b', "c"]]),
        ('"a\\,b\\"c",d', ",", [['a,b"c', "d"]]),
        ("a\\\\,b", ",", [["a\\", "b"]]),
        ("a\\;b;c", ";", [["a;b", "c"]]),
        ("a\\ b c", " ", [["a b", "c"]]),
        ("a\\\tb\tc", "\t", [["a\tb", "c"]]),
        ("a\\,b|c", "|", [["a,b", "c"]]),  # a comma is no separator here: backslash dropped
        ("a,b,", ",", [["a", "b", ""]]),
        (",", ",", [["", ""]]),
        ('"open,never closed', ",", [["open,never closed"]]),
        ("trailing\\", ",", [["trailing"]]),
        ("", ",", []),
    ],
)
def test_split_csv(text: str, delimiter: str, records: list[list[str]]) -> None:
    assert split_csv(text, delimiter) == records


def test_the_docstring_examples_hold() -> None:
    failures, tried = doctest.testmod(item_io, verbose=False)
    assert (failures, tried > 0) == (0, True)
