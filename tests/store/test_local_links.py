"""Symbolic links in a local store: followed inside the store, refused when they lead out.

A store folder is a trust boundary: a key must never read or write a file outside it,
even through a link someone made with ``ln -s``. Links that stay inside keep working
(a plate folder linked under a second experiment name is listed and read); links that
lead out, dangle or loop are refused by name, and Lookup lists them in its report
instead of letting a linked plate vanish.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from plateseg.contracts import LookupRequest
from plateseg.errors import StoreKeyError
from plateseg.pipeline.lookup import lookup
from plateseg.store import LocalStore, get_json
from plateseg.store.local import RefusedLink

EXP = "LINKS"


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A plate folder on "another disk": outside the store root."""
    folder = tmp_path / "elsewhere" / "P2"
    folder.mkdir(parents=True)
    for channel in ("w1", "w2"):
        (folder / f"P2_A01_s1_{channel}.tif").write_bytes(b"II*\x00outside")
    (tmp_path / "secret.txt").write_bytes(b"not yours")
    return folder


@pytest.fixture
def store(tmp_path: Path, outside: Path) -> LocalStore:
    """P1 stored normally; P2 a link to ``outside``; P3 a link to P1 (inside)."""
    store = LocalStore(tmp_path / "store")
    for channel in ("w1", "w2"):
        store.put_bytes(f"experiments/{EXP}/P1/P1_B02_s1_{channel}.tif", b"II*\x00inside")
    folder = store.root / "experiments" / EXP
    (folder / "P2").symlink_to(outside, target_is_directory=True)
    (folder / "P3").symlink_to(folder / "P1", target_is_directory=True)
    return store


def test_reading_through_a_link_that_leads_outside_is_refused_naming_the_key(
    store: LocalStore, outside: Path
) -> None:
    key = f"experiments/{EXP}/P2/P2_A01_s1_w1.tif"
    for operation in (store.get_bytes, store.size, store.exists):
        with pytest.raises(StoreKeyError) as caught:
            operation(key)
        assert f"store key {key!r} leads through a symbolic link to {outside}" in str(caught.value)
        assert f"outside the store {store.root}" in str(caught.value)


def test_a_file_link_to_outside_is_refused_for_reading_and_writing(
    store: LocalStore, tmp_path: Path
) -> None:
    link = store.root / "experiments" / EXP / "P1" / "notes.txt"
    link.symlink_to(tmp_path / "secret.txt")
    key = f"experiments/{EXP}/P1/notes.txt"
    with pytest.raises(StoreKeyError, match="outside the store"):
        store.get_bytes(key)
    with pytest.raises(StoreKeyError, match="outside the store"):
        store.put_bytes(f"experiments/{EXP}/P2/new.txt", b"x")  # a write through P2
    assert not (tmp_path / "elsewhere" / "P2" / "new.txt").exists()
    assert (tmp_path / "secret.txt").read_bytes() == b"not yours"


def test_listing_skips_links_that_lead_outside_and_follows_links_inside(
    store: LocalStore,
) -> None:
    keys = [info.key for info in store.list(f"experiments/{EXP}/")]
    assert keys == [
        f"experiments/{EXP}/P1/P1_B02_s1_w1.tif",
        f"experiments/{EXP}/P1/P1_B02_s1_w2.tif",
        f"experiments/{EXP}/P3/P1_B02_s1_w1.tif",
        f"experiments/{EXP}/P3/P1_B02_s1_w2.tif",
    ]
    assert store.get_bytes(f"experiments/{EXP}/P3/P1_B02_s1_w1.tif") == b"II*\x00inside"
    assert store.size(f"experiments/{EXP}/P3/P1_B02_s1_w1.tif") == len(b"II*\x00inside")


def test_refused_links_name_outside_broken_and_looping_links(
    store: LocalStore, outside: Path, tmp_path: Path
) -> None:
    folder = store.root / "experiments" / EXP
    (folder / "P4").symlink_to(folder / "gone", target_is_directory=True)
    (folder / "P1" / "again").symlink_to(folder, target_is_directory=True)
    assert store.refused_links(f"experiments/{EXP}/") == (
        RefusedLink(f"experiments/{EXP}/P1/again", str(folder), "a loop"),
        RefusedLink(f"experiments/{EXP}/P2", str(outside), "outside the store"),
        RefusedLink(f"experiments/{EXP}/P3/again", str(folder), "a loop"),
        RefusedLink(f"experiments/{EXP}/P4", str(folder / "gone"), "broken"),
    )
    keys = [info.key for info in store.list(f"experiments/{EXP}/")]
    assert len(keys) == 4  # the loop is not walked forever, the broken link not listed


def test_an_experiment_folder_that_is_itself_a_link_out_is_refused(
    tmp_path: Path, outside: Path
) -> None:
    store = LocalStore(tmp_path / "store")
    (store.root / "experiments").mkdir(parents=True)
    (store.root / "experiments" / "E2").symlink_to(outside.parent, target_is_directory=True)
    assert list(store.list("experiments/E2/")) == []
    assert store.refused_links("experiments/E2/") == (
        RefusedLink("experiments/E2", str(outside.parent), "outside the store"),
    )


def test_lookup_reports_a_linked_plate_folder_instead_of_dropping_it(store: LocalStore) -> None:
    request = LookupRequest(
        input={"experiment_id": EXP, "run_id": "r1"}, execution_name="x", bucket="b"
    )
    result = lookup(request, store)
    assert result.item_count == 2  # P1 and its inside link P3
    report = get_json(store, "runs/r1/lookup-report.json")
    assert report["refused_links"] == [
        {
            "key": f"experiments/{EXP}/P2",
            "target": str(store.root.parent / "elsewhere" / "P2"),
            "reason": "outside the store",
        }
    ]
    assert (
        f"1 symbolic link(s) not followed: experiments/{EXP}/P2 (outside the store)"
        in result.message
    )


def test_lookup_of_an_experiment_of_only_linked_plates_says_why_it_is_empty(
    tmp_path: Path, outside: Path
) -> None:
    store = LocalStore(tmp_path / "store")
    (store.root / "experiments" / EXP).mkdir(parents=True)
    (store.root / "experiments" / EXP / "P2").symlink_to(outside, target_is_directory=True)
    request = LookupRequest(
        input={"experiment_id": EXP, "run_id": "r1"}, execution_name="x", bucket="b"
    )
    result = lookup(request, store)
    assert result.item_count == 0
    assert "is empty; 1 symbolic link(s) not followed" in result.message
    assert "links must stay inside the store" in result.message
