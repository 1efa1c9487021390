"""``iso``: AWS's timestamp form, with each second formatted once (the Map hot path)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

from plateseg.engine.context import iso

BASE = datetime(2024, 5, 1, 23, 59, 59, 998_765, tzinfo=UTC)


def test_iso_truncates_to_milliseconds_across_second_boundaries() -> None:
    assert iso(BASE) == "2024-05-01T23:59:59.998Z"
    assert iso(BASE + timedelta(microseconds=1_500)) == "2024-05-02T00:00:00.000Z"
    assert iso(BASE) == "2024-05-01T23:59:59.998Z"  # back to a second seen before
    assert iso(BASE.replace(microsecond=5_000)) == "2024-05-01T23:59:59.005Z"


def test_iso_is_right_on_many_threads_at_once() -> None:
    moments = [BASE + timedelta(milliseconds=137 * i) for i in range(2_000)]
    expected = [m.strftime("%Y-%m-%dT%H:%M:%S.") + f"{m.microsecond // 1000:03d}Z" for m in moments]
    with ThreadPoolExecutor(8) as pool:
        assert list(pool.map(iso, moments)) == expected
