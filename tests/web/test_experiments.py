"""Experiments API and pages: list with counts, plate map with layout, thumbnails."""

from __future__ import annotations

from fastapi.testclient import TestClient

from plateseg.store import LocalStore

from .conftest import EXPERIMENT, WELLS


def test_experiment_list_counts_plates_wells_fields_channels(
    client: TestClient, demo: LocalStore
) -> None:
    [row] = client.get("/api/experiments").json()
    assert row["experiment_id"] == EXPERIMENT
    assert (row["plates"], row["wells"], row["fields"]) == (1, len(WELLS), 2 * len(WELLS))
    assert row["channels"] == ["w1", "w2"]
    assert row["runs"] == 0


def test_experiment_detail_has_a_96_well_plate_map_with_layout(
    client: TestClient, demo: LocalStore
) -> None:
    detail = client.get(f"/api/experiments/{EXPERIMENT}").json()
    [plate] = detail["plate_maps"]
    assert (plate["rows"], plate["columns"]) == (8, 12)
    assert sorted(plate["wells"]) == sorted(WELLS)
    assert plate["wells"]["A01"]["layout"]["control"] == "neg"
    assert plate["wells"]["A12"]["layout"]["control"] == "pos"
    assert [f["image_id"] for f in plate["wells"]["D05"]["fields"]] == ["P1_D05_1", "P1_D05_2"]
    assert "control" in detail["layout_columns"]


def test_layout_annotations_are_parsed_by_the_shared_layout_module(
    client: TestClient, demo: LocalStore
) -> None:
    # plateseg.plate.layout normalises "a1" to A01, as aggregation does when it records the wells
    demo.put_bytes(
        f"experiments/{EXPERIMENT}/layout.csv",
        b"well,condition,concentration,control\na1,DMSO,0,neg\n",
    )
    detail = client.get(f"/api/experiments/{EXPERIMENT}").json()
    wells = detail["plate_maps"][0]["wells"]
    assert wells["A01"]["layout"] == {
        "condition": "DMSO",
        "compound": "",
        "concentration": "0",
        "control": "neg",
    }
    assert wells["B01"]["layout"] == {}
    assert detail["layout_columns"] == ["concentration", "condition", "control"]
    assert detail["layout_error"] is None


def test_an_invalid_layout_is_reported_without_hiding_the_plate(
    client: TestClient, demo: LocalStore
) -> None:
    demo.put_bytes(f"experiments/{EXPERIMENT}/layout.csv", b"well,control\nA01,maybe\n")
    detail = client.get(f"/api/experiments/{EXPERIMENT}").json()
    assert "line 2, column 'control'" in detail["layout_error"]
    assert detail["plate_maps"][0]["wells"]["A01"]["layout"] == {}
    page = client.get(f"/experiments/{EXPERIMENT}")
    assert page.status_code == 200 and 'id="layout-error"' in page.text


def test_thumbnail_is_a_small_png_of_the_channel(client: TestClient, demo: LocalStore) -> None:
    response = client.get(f"/api/experiments/{EXPERIMENT}/fields/P1_A01_1/w2.png")
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    assert response.content[:8] == b"\x89PNG\r\n\x1a\n"


def test_unknown_channel_field_and_experiment_are_404(client: TestClient, demo: LocalStore) -> None:
    assert client.get(f"/api/experiments/{EXPERIMENT}/fields/P1_A01_1/w9.png").status_code == 404
    assert client.get(f"/api/experiments/{EXPERIMENT}/fields/P1_H12_1/w1.png").status_code == 404
    missing = client.get("/api/experiments/NOT-THERE")
    assert missing.status_code == 404
    assert "no images" in missing.json()["detail"]


def test_pages_render_the_list_and_the_plate(client: TestClient, demo: LocalStore) -> None:
    listing = client.get("/")
    assert listing.status_code == 200
    assert f'href="/experiments/{EXPERIMENT}"' in listing.text
    plate = client.get(f"/experiments/{EXPERIMENT}")
    assert plate.status_code == 200
    assert plate.text.count('data-well="') == len(WELLS)
    assert 'class="well has ctl-neg"' in plate.text
    form = client.get(f"/experiments/{EXPERIMENT}/new-run?segmenter=classical")
    assert 'data-param="min_diameter"' in form.text
    assert 'value="0.05"' in form.text  # a classical default (neck_depth), filled in
    assert 'placeholder="auto"' in form.text  # diameters: estimated from each image


def test_missing_experiment_page_is_a_readable_404(client: TestClient, demo: LocalStore) -> None:
    response = client.get("/experiments/NOT-THERE", headers={"Accept": "text/html"})
    assert response.status_code == 404
    assert "has no images" in response.text
    assert "<html" in response.text
