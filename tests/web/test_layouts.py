"""The layout API: upload a lab's layout in any format, read it back, fix a control role."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient

from plateseg.demo import write_demo_experiment
from plateseg.plate.layout import parse_any_layout
from plateseg.store import LocalStore
from plateseg.store.keys import layout_key

from .conftest import EXPERIMENT, TOKEN

URL = f"/api/experiments/{EXPERIMENT}/layout"
TWO_PLATES = "DEMO-2P"
CELLPROFILER = (
    "Metadata_Plate,Metadata_Well,Metadata_Site,Metadata_Compound,Metadata_Concentration,"
    "Metadata_Role,FileName_DNA\n"
    "P1,A01,1,DMSO,0,negative,P1_A01_s1_w1.tif\n"
    "P1,A01,2,DMSO,0,negative,P1_A01_s2_w1.tif\n"
    "P1,A12,1,staurosporine,1,positive,P1_A12_s1_w1.tif\n"
    "P1,C03,1,CPD-1,0.3,treatment,P1_C03_s1_w1.tif\n"
)


def _grid(title: str, value: Any) -> str:
    numbers = ",".join(str(c) for c in range(1, 13))
    rows = "".join(f"{r}," + ",".join(value(r, c) for c in range(1, 13)) + "\n" for r in "ABCDEFGH")
    return f"{title}\n,{numbers}\n{rows}\n"


def _upload(client: TestClient, text: str | bytes, name: str = "layout.csv", **params: Any) -> Any:
    data = text.encode() if isinstance(text, str) else text
    return client.post(URL, files={"file": (name, data, "text/csv")}, params=params)


def _stored(store: LocalStore) -> str:
    return store.get_bytes(layout_key(EXPERIMENT)).decode()


def test_a_cellprofiler_csv_is_mapped_stored_natively_and_read_back(
    client: TestClient, demo: LocalStore
) -> None:
    response = _upload(client, CELLPROFILER, "metadata.csv")
    assert response.status_code == 200, response.text
    body = response.json()
    report = body["report"]
    assert (report["format"], report["source"], report["rows"], report["wells"]) == (
        "cellprofiler",
        "metadata.csv",
        4,
        3,
    )
    assert {m["source"]: m["field"] for m in report["mapped"]}["Metadata_Role"] == "control"
    assert {i["source"] for i in report["ignored"]} == {"Metadata_Site", "FileName_DNA"}
    assert body["warnings"] == []
    assert [(w["plate"], w["well"], w["control"]) for w in body["wells"]] == [
        ("P1", "A01", "neg"),
        ("P1", "A12", "pos"),
        ("P1", "C03", ""),
    ]
    # stored in the native format, which the rest of plateseg reads
    stored = parse_any_layout(_stored(demo))
    assert stored.report.format == "native"
    assert [(w.well, w.compound, w.concentration) for w in stored.layout.wells] == [
        ("A01", "DMSO", 0.0),
        ("A12", "staurosporine", 1.0),
        ("C03", "CPD-1", 0.3),
    ]
    again = client.get(URL).json()
    assert again["wells"] == body["wells"]
    assert again["report"]["format"] == "native"
    detail = client.get(f"/api/experiments/{EXPERIMENT}").json()
    wells = detail["plate_maps"][0]["wells"]
    assert wells["C03"]["layout"]["compound"] == "CPD-1"
    assert wells["B01"]["layout"] == {}


def test_a_grid_sheet_is_accepted_and_shown_on_the_plate(
    client: TestClient, demo: LocalStore
) -> None:
    text = _grid("role", lambda r, c: "neg" if c == 1 else "pos" if c == 12 else "") + _grid(
        "compound", lambda r, c: "CPD-3"
    )
    response = _upload(client, text, "plate map.csv", plate_format=96)
    assert response.status_code == 200, response.text
    report = response.json()["report"]
    assert (report["format"], report["plate_format"], report["wells"]) == ("grid", 96, 96)
    assert [m["field"] for m in report["mapped"]] == ["control", "compound"]
    plate = client.get(f"/api/experiments/{EXPERIMENT}").json()["plate_maps"][0]
    assert plate["wells"]["A12"]["layout"]["control"] == "pos"
    assert plate["wells"]["D05"]["layout"] == {
        "condition": "",
        "compound": "CPD-3",
        "concentration": "",
        "control": "",
    }


def test_an_invalid_upload_lists_every_problem_and_changes_nothing(
    client: TestClient, demo: LocalStore
) -> None:
    before = _stored(demo)
    bad = CELLPROFILER + "P1,A01,3,DMSO,0,positive,x.tif\nP1,B2,1,,lots,,y.tif\n"
    response = _upload(client, bad, "metadata.csv")
    assert response.status_code == 422
    body = response.json()
    assert body["error"] == "LayoutError"
    assert body["problems"] == [
        "metadata.csv: line 6, column 'Metadata_Role': plate P1, well A01 has control 'pos' "
        "but line 2 gave 'neg'",
        "metadata.csv: line 7, column 'Metadata_Concentration': 'lots' is not a number",
    ]
    assert _stored(demo) == before
    grid = _grid("role", lambda r, c: "maybe" if (r, c) == ("B", 4) else "")
    problems = _upload(client, grid, "map.csv").json()["problems"]
    assert problems[0].startswith("map.csv: line 4, cell B04 of grid 'role': 'maybe'")
    native = _upload(client, "well,control\nA01,neg\nQ01,pos\n", plate_format=96)
    assert native.status_code == 422
    assert native.json()["problems"] == [
        "layout.csv: line 3, column 'well': 'Q01' is not on a 96-well plate"
    ]
    latin = _upload(client, "well,condition\nA01,caf\xe9\n".encode("latin-1"))
    assert latin.status_code == 422 and "not UTF-8" in latin.json()["detail"]
    empty = _upload(client, "well,control\n")
    assert empty.status_code == 422 and "defines no wells" in empty.json()["detail"]
    assert _stored(demo) == before


def test_plates_without_images_are_a_warning(client: TestClient, demo: LocalStore) -> None:
    body = _upload(client, "Metadata_Plate,Metadata_Well\nPlate-1,A01\n").json()
    assert body["warnings"] == [
        "plates in the layout without images: Plate-1 (the experiment's plates: P1)"
    ]


def test_a_role_is_set_without_editing_files(client: TestClient, demo: LocalStore) -> None:
    response = client.patch(f"{URL}/wells/c3", json={"control": "pos"})
    assert response.status_code == 200, response.text
    c03 = [w for w in response.json()["wells"] if w["well"] == "C03"]
    assert [(w["plate"], w["control"], w["compound"]) for w in c03] == [(None, "pos", "CPD-1")]
    a01 = client.patch(f"{URL}/wells/A01", json={"control": "none"}).json()
    assert [w["control"] for w in a01["wells"] if w["well"] == "A01"] == [""]
    # a plate-specific role for one plate, from the row for every plate
    p1 = client.patch(f"{URL}/wells/B01", json={"control": "pos", "plate": "P1"}).json()
    b01 = {w["plate"]: w["control"] for w in p1["wells"] if w["well"] == "B01"}
    assert b01 == {None: "neg", "P1": "pos"}
    layout = parse_any_layout(_stored(demo)).layout
    entry = layout.lookup("P1", "B01")
    assert entry is not None and entry.control == "pos"
    plate = client.get(f"/api/experiments/{EXPERIMENT}").json()["plate_maps"][0]["wells"]
    assert (plate["A01"]["layout"]["control"], plate["C03"]["layout"]["control"]) == ("", "pos")
    assert client.get(URL).json()["wells"] == p1["wells"]


def test_on_two_plates_a_role_is_set_on_one_plate_or_on_every_plate(
    client: TestClient, store: LocalStore
) -> None:
    """Issue 16: the well panel's "this plate only" sends ``plate``, "every plate" not."""
    write_demo_experiment(store, TWO_PLATES, plates=2, size=64, wells=["A01", "C03"])
    url = f"/api/experiments/{TWO_PLATES}/layout"

    def roles(well: str) -> dict[str, str]:
        maps = client.get(f"/api/experiments/{TWO_PLATES}").json()["plate_maps"]
        return {p["plate"]: p["wells"][well]["layout"].get("control", "") for p in maps}

    assert roles("C03") == {"P1": "", "P2": ""}
    one = client.patch(f"{url}/wells/C03", json={"control": "pos", "plate": "P2"})
    assert one.status_code == 200, one.text
    assert roles("C03") == {"P1": "", "P2": "pos"}
    every = client.patch(f"{url}/wells/C03", json={"control": "neg"})
    assert every.status_code == 200, every.text
    assert roles("C03") == {"P1": "neg", "P2": "neg"}
    c03 = {w["plate"]: w["control"] for w in every.json()["wells"] if w["well"] == "C03"}
    assert c03 == {None: "neg", "P2": "neg"}
    # a well the layout names on one plate only: "every plate" reaches the other one too
    store.put_bytes(layout_key(TWO_PLATES), b"plate,well,control\nP1,A01,pos\n")
    assert roles("A01") == {"P1": "pos", "P2": ""}
    client.patch(f"{url}/wells/A01", json={"control": "neg"})
    assert roles("A01") == {"P1": "neg", "P2": "neg"}
    client.patch(f"{url}/wells/A01", json={"control": "none", "plate": "P1"})
    assert roles("A01") == {"P1": "", "P2": "neg"}


def test_a_role_for_an_experiment_without_a_layout_starts_one(
    client: TestClient, demo: LocalStore
) -> None:
    demo.delete_keys([layout_key(EXPERIMENT)])
    missing = client.get(URL)
    assert missing.status_code == 404 and "has no layout" in missing.json()["detail"]
    body = client.patch(f"{URL}/wells/H12", json={"control": "neg"}).json()
    assert [(w["well"], w["control"]) for w in body["wells"]] == [("H12", "neg")]


def test_bad_requests(client: TestClient, demo: LocalStore) -> None:
    assert client.patch(f"{URL}/wells/A01", json={"control": "maybe"}).status_code == 422
    assert client.patch(f"{URL}/wells/A00", json={"control": "pos"}).status_code == 422
    assert client.patch(f"{URL}/wells/A-1", json={"control": "pos"}).status_code == 422
    assert client.patch(f"{URL}/wells/ZZ1", json={"control": "pos"}).status_code == 422
    unknown = "/api/experiments/NOT-THERE/layout"
    assert client.get(unknown).status_code == 404
    assert client.patch(f"{unknown}/wells/A01", json={"control": "pos"}).status_code == 404
    assert (
        client.post(unknown, files={"file": ("l.csv", b"well\nA01\n", "text/csv")}).status_code
        == 404
    )
    assert client.get("/api/experiments/..%2Fx/layout").status_code in (404, 422)
    demo.put_bytes(layout_key(EXPERIMENT), b"well,control\nA01,maybe\n")
    broken = client.get(URL)
    assert broken.status_code == 422
    assert "line 2, column 'control': 'maybe'" in broken.json()["problems"][0]


def test_anonymous_requests_are_refused(anonymous: TestClient, demo: LocalStore) -> None:
    assert anonymous.get(URL).status_code == 401
    response = anonymous.patch(f"{URL}/wells/A01", json={"control": "pos"})
    assert response.status_code == 401
    assert TOKEN not in response.text


def test_a_changed_role_is_in_the_next_runs_z_prime(
    app: FastAPI, client: TestClient, demo: LocalStore
) -> None:
    """Demo controls: A01, B01 negative, A12, B12 positive; B01 becomes a positive."""
    response = client.patch(f"{URL}/wells/B01", json={"control": "pos"})
    assert response.status_code == 200
    started = client.post("/api/runs", json={"experiment_id": EXPERIMENT})
    assert started.status_code == 202, started.text
    run_id = started.json()["run_id"]
    final = app.state.plateseg.backend.manager.wait(run_id, timeout=240)
    assert final.status == "SUCCEEDED", final
    [plate] = client.get(f"/api/runs/{run_id}/plate-qc").json()["plates"]
    assert (plate["n_pos"], plate["n_neg"]) == (3, 1)
