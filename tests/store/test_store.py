"""One contract, two stores: the local folder and S3 (moto) behave the same."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from plateseg.errors import ObjectNotFoundError, StoreKeyError, StoreUnavailableError
from plateseg.store import LocalStore, S3Store, Store, get_json, open_store, put_json


@pytest.fixture(params=["local", "s3"])
def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "local":
        yield LocalStore(tmp_path / "store")
        return
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="plateseg-test")
        yield S3Store("plateseg-test", client=client)


def test_put_then_get_returns_the_bytes(any_store: Store) -> None:
    any_store.put_bytes("experiments/E1/a.tif", b"\x00\x01")
    assert any_store.get_bytes("experiments/E1/a.tif") == b"\x00\x01"


def test_missing_key_raises_object_not_found(any_store: Store) -> None:
    with pytest.raises(ObjectNotFoundError, match="nope.tif"):
        any_store.get_bytes("experiments/E1/nope.tif")


def test_list_returns_keys_under_prefix_in_order(any_store: Store) -> None:
    for key in ["runs/r1/b.json", "experiments/E1/x/2.tif", "experiments/E1/1.tif"]:
        any_store.put_bytes(key, b"x")
    keys = [info.key for info in any_store.list("experiments/E1/")]
    assert keys == ["experiments/E1/1.tif", "experiments/E1/x/2.tif"]


def test_list_reports_sizes(any_store: Store) -> None:
    any_store.put_bytes("a/b.bin", b"12345")
    (info,) = list(any_store.list("a/"))
    assert info.size == 5 and info.etag


def test_size_is_the_object_length_and_a_missing_key_is_not_found(any_store: Store) -> None:
    any_store.put_bytes("experiments/E1/a.tif", b"123456789")
    assert any_store.size("experiments/E1/a.tif") == 9
    with pytest.raises(ObjectNotFoundError):
        any_store.size("experiments/E1/none.tif")
    with pytest.raises(ObjectNotFoundError):
        any_store.size("experiments/E1")  # a folder (local) or a prefix (S3) is no object


def test_delete_keys_deletes_exactly_those_and_ignores_missing_ones(any_store: Store) -> None:
    for name in ("a.tif", "a.tif.bak", "b.tif", "c.tif"):
        any_store.put_bytes(f"runs/R/masks/{name}", b"x")
    assert any_store.delete_keys(["runs/R/masks/a.tif", "runs/R/masks/b.tif", "runs/R/gone"]) == 3
    left = [info.key for info in any_store.list("runs/R/")]
    assert left == ["runs/R/masks/a.tif.bak", "runs/R/masks/c.tif"]  # not a prefix delete


def test_list_of_a_partial_name_prefix_matches_like_s3(any_store: Store) -> None:
    any_store.put_bytes("experiments/E10/a.tif", b"x")
    any_store.put_bytes("experiments/E1/a.tif", b"x")
    # S3 orders keys by their UTF-8 bytes: "/" (0x2F) sorts before "0" (0x30).
    assert [i.key for i in any_store.list("experiments/E1")] == [
        "experiments/E1/a.tif",
        "experiments/E10/a.tif",
    ]


def test_exists_and_delete_prefix(any_store: Store) -> None:
    any_store.put_bytes("runs/r1/a.json", b"{}")
    any_store.put_bytes("runs/r1/m/b.json", b"{}")
    assert any_store.exists("runs/r1/a.json")
    assert any_store.delete_prefix("runs/r1/") == 2
    assert not any_store.exists("runs/r1/a.json")


def test_json_round_trip(any_store: Store) -> None:
    put_json(any_store, "runs/r1/manifest.json", [{"well": "B03"}])
    assert get_json(any_store, "runs/r1/manifest.json") == [{"well": "B03"}]


@pytest.mark.parametrize("key", ["../etc/passwd", "/abs/key", "a/../b", "a/./b", ""])
def test_unsafe_keys_are_refused(any_store: Store, key: str) -> None:
    with pytest.raises(StoreKeyError):
        any_store.get_bytes(key)


def test_local_store_leaves_no_temporary_files(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    store.put_bytes("a/b.json", b"1")
    store.put_bytes("a/b.json", b"2")
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["b.json"]
    assert store.get_bytes("a/b.json") == b"2"


def test_open_store_picks_the_implementation(tmp_path: Path) -> None:
    assert isinstance(open_store(str(tmp_path)), LocalStore)
    s3 = open_store("s3://my-bucket")
    assert isinstance(s3, S3Store) and s3.name == "my-bucket"


def test_s3_throttling_is_transient() -> None:
    from botocore.exceptions import ClientError

    class Throttled:
        def get_object(self, **kwargs: object) -> None:
            raise ClientError({"Error": {"Code": "SlowDown", "Message": "slow"}}, "GetObject")

    with pytest.raises(StoreUnavailableError, match="SlowDown"):
        S3Store("b", client=Throttled()).get_bytes("k")
