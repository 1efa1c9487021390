"""Layouts as labs have them (issue 16 item 8), on the experiment page (Chromium): a
CellProfiler metadata CSV is uploaded and its mapping report shown, an invalid one is
answered with its problems, and a well's control role is fixed from the well panel;
axe-core finds nothing serious with the report open, and a phone does not scroll sideways.

Screenshot: ``test-artifacts/layout-upload.png`` (copied to ``docs/images/``).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from playwright.sync_api import Browser, Page, expect

from plateseg.demo import write_demo_experiment
from plateseg.store import LocalStore

from .browser import ARTIFACTS, chromium, screenshot, served
from .conftest import EXPERIMENT, TOKEN
from .test_browser_a11y import WIDEST, serious_violations

#: One row per image (two sites of A01), a free column and an unknown Metadata_ column.
CELLPROFILER = """\
Metadata_Plate,Metadata_Well,Metadata_Site,Metadata_Compound,Metadata_Concentration,Metadata_Role,FileName_DNA
P1,A01,1,DMSO,0,negative,a1.tif
P1,A01,2,DMSO,0,negative,a2.tif
P1,B01,1,DMSO,0,negative,b1.tif
P1,A12,1,staurosporine,1,positive,a12.tif
P1,B12,1,staurosporine,1,positive,b12.tif
P1,C03,1,drug-x,0.5,,c3.tif
P1,D05,1,drug-x,5,treatment,d5.tif
"""
#: A second experiment with two plates, for the choice "this plate only" / "every plate".
TWO_PLATES = "DEMO-2P"
PLATES = ("P1", "P2")
BROKEN = """\
Metadata_Plate,Metadata_Well,Metadata_Role
P1,A01,negative
P1,Z99,positive
P1,A02,sideways
"""


@pytest.fixture
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


def test_a_lab_layout_is_uploaded_and_a_role_fixed_on_the_plate(
    app: FastAPI, demo: LocalStore, browser: Browser
) -> None:
    with served(app) as url:
        # bypass_csp: axe-core is injected as an inline script
        context = browser.new_context(viewport={"width": 1280, "height": 1000}, bypass_csp=True)
        page: Page = context.new_page()
        page.set_default_timeout(30_000)
        page.goto(f"{url}/?token={TOKEN}")
        page.goto(f"{url}/experiments/{EXPERIMENT}")

        # ---- an invalid file: every problem, each naming its line; nothing stored
        page.locator("#layout-file").set_input_files(
            files=[{"name": "broken.csv", "mimeType": "text/csv", "buffer": BROKEN.encode()}]
        )
        page.locator("#layout-upload").click()
        problems = page.locator("#layout-problems li")
        expect(problems).not_to_have_count(0)
        for text in problems.all_inner_texts():
            assert "broken.csv" in text and "line" in text, text

        # ---- a CellProfiler metadata CSV: the report names the format and the mapping
        page.locator("#layout-file").set_input_files(
            files=[{"name": "plate1.csv", "mimeType": "text/csv", "buffer": CELLPROFILER.encode()}]
        )
        page.locator("#layout-upload").click()
        expect(page.locator("#layout-format")).to_have_text("CellProfiler metadata CSV")
        report = page.locator("#layout-report")
        expect(report.locator("caption", has_text="Mapped")).to_be_visible()
        mapped = report.locator("table", has=page.locator("caption", has_text="Mapped"))
        expect(mapped.locator("tr", has_text="Metadata_Role")).to_contain_text("control")
        ignored = report.locator("table", has=page.locator("caption", has_text="Ignored"))
        expect(ignored).to_contain_text("FileName_DNA")
        expect(ignored).to_contain_text("Metadata_Site")
        plate = page.locator('.plate[data-plate="P1"]')
        expect(plate.locator('.well[data-well="A12"]')).to_have_class(
            "well has ctl-pos"
        )  # repainted
        c03 = plate.locator('.well[data-well="C03"]')
        expect(c03).to_have_class("well has ctl-none")

        # ---- a well's role, fixed in the well panel
        c03.click()
        expect(page.locator("#well-title")).to_have_text("P1 · C03")
        expect(page.locator("#role-select")).to_have_value("none")
        expect(page.locator("#role-note")).to_contain_text("next run")
        page.locator("#role-select").select_option("pos")
        expect(page.locator("#role-status")).to_have_text("saved")
        expect(c03).to_have_class("well has selected ctl-pos")
        expect(page.locator("#well-layout")).to_contain_text("pos")
        screenshot(page, "layout-upload")

        # ---- the report and the role control keep the page accessible, and narrow
        found = serious_violations(page)
        assert not found, found
        page.set_viewport_size({"width": 390, "height": 844})
        width = page.evaluate("() => document.documentElement.scrollWidth")
        assert width <= 390, page.evaluate(WIDEST)
        page.set_viewport_size({"width": 1280, "height": 1000})

        stored = page.request.get(f"{url}/api/experiments/{EXPERIMENT}/layout")
        assert stored.ok, stored.text()
        roles = {w["well"]: w["control"] for w in stored.json()["wells"]}
        assert roles["C03"] == "pos" and roles["A12"] == "pos" and roles["A01"] == "neg"

        # ---- and back to no control; the page, reloaded, shows what was stored
        page.locator("#role-select").select_option("none")
        expect(page.locator("#role-status")).to_have_text("saved")
        page.reload()
        expect(plate.locator('.well[data-well="C03"]')).to_have_class("well has ctl-none")
        expect(plate.locator('.well[data-well="B01"]')).to_have_class("well has ctl-neg")
        context.close()


def test_on_two_plates_a_role_is_fixed_on_one_plate_or_on_every_plate(
    app: FastAPI, store: LocalStore, browser: Browser
) -> None:
    """Issue 16: with several plates the well panel asks where a role applies."""
    write_demo_experiment(store, TWO_PLATES, plates=2, size=64, wells=["A01", "C03"])
    with served(app) as url:
        context = browser.new_context(viewport={"width": 1280, "height": 1000}, bypass_csp=True)
        page: Page = context.new_page()
        page.set_default_timeout(30_000)
        page.goto(f"{url}/?token={TOKEN}")
        page.goto(f"{url}/experiments/{TWO_PLATES}")
        wells = {
            p: page.locator(f'.plate[data-plate="{p}"] .well[data-well="C03"]') for p in PLATES
        }

        # ---- this plate only (the default): plate P2's C03 becomes a positive control
        wells["P2"].click()
        expect(page.locator("#well-title")).to_have_text("P2 · C03")
        scope = page.locator("#role-scope")
        expect(scope.get_by_role("radio", name="this plate only (P2)")).to_be_checked()
        expect(scope.get_by_role("radio", name="every plate (2)")).not_to_be_checked()
        page.locator("#role-select").select_option("pos")
        expect(page.locator("#role-status")).to_have_text("saved on P2 only")
        expect(wells["P2"]).to_have_class("well has selected ctl-pos")
        expect(wells["P1"]).to_have_class("well has ctl-none")

        # ---- every plate: a negative control on both plates
        scope.get_by_role("radio", name="every plate (2)").check()
        page.locator("#role-select").select_option("neg")
        expect(page.locator("#role-status")).to_have_text("saved on every plate")
        expect(wells["P1"]).to_have_class("well has ctl-neg")
        expect(wells["P2"]).to_have_class("well has selected ctl-neg")
        ARTIFACTS.mkdir(exist_ok=True)
        page.locator(".split").screenshot(path=str(ARTIFACTS / "layout-every-plate.png"))
        found = serious_violations(page)
        assert not found, found
        page.set_viewport_size({"width": 390, "height": 844})
        width = page.evaluate("() => document.documentElement.scrollWidth")
        assert width <= 390, page.evaluate(WIDEST)

        stored = page.request.get(f"{url}/api/experiments/{TWO_PLATES}")
        assert stored.ok, stored.text()
        roles = {
            p["plate"]: p["wells"]["C03"]["layout"]["control"] for p in stored.json()["plate_maps"]
        }
        assert roles == {"P1": "neg", "P2": "neg"}
        context.close()
