"""Server-rendered pages: login, experiments, experiment plate, new run, run + results."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from plateseg.segmentation import get_segmenter
from plateseg.web.deps import AppStateDep, ExperimentId, RunId
from plateseg.web.routers.experiments import experiment_detail, list_experiments
from plateseg.web.state import HERE, AppState

router = APIRouter(include_in_schema=False)


def _page(state: AppState, request: Request, name: str, **context: Any) -> Response:
    context.setdefault("engine", state.config.engine)
    context["csrf_token"] = state.guard.csrf_token()
    return state.templates.TemplateResponse(request, name, context)


def _safe_next(target: str) -> str:
    """Only same-site relative paths (no scheme, host or ``//``) are followed after login."""
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return "/"
    return target


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, next: str = "/", failed: bool = False) -> Response:
    state: AppState = request.app.state.plateseg
    css = (HERE / "static" / "app.css").read_text(encoding="utf-8")
    return state.templates.TemplateResponse(
        request,
        "login.html",
        {"next": _safe_next(next), "failed": failed, "css": css, "mode": state.config.web_auth},
        status_code=401 if failed else 200,
    )


@router.post("/login")
def login(
    request: Request,
    secret: Annotated[str, Form(max_length=512)],
    next: Annotated[str, Form(max_length=2048)] = "/",
) -> Response:
    state: AppState = request.app.state.plateseg
    target = _safe_next(next)
    if state.config.web_auth == "proxy" or not state.guard.credential_ok(secret):
        return RedirectResponse(f"/login?failed=true&next={target}", status_code=303)
    response = RedirectResponse(target, status_code=303)
    response.headers.append("set-cookie", state.guard.cookie_header().decode())
    return response


@router.get("/", response_class=HTMLResponse)
def experiments_page(request: Request, state: AppStateDep) -> Response:
    return _page(state, request, "experiments.html", experiments=list_experiments(state))


@router.get("/experiments/{experiment_id}", response_class=HTMLResponse)
def experiment_page(request: Request, state: AppStateDep, experiment_id: ExperimentId) -> Response:
    detail = experiment_detail(state, experiment_id)
    return _page(state, request, "experiment.html", exp=detail)


@router.get("/experiments/{experiment_id}/new-run", response_class=HTMLResponse)
def new_run_page(request: Request, state: AppStateDep, experiment_id: ExperimentId) -> Response:
    detail = experiment_detail(state, experiment_id)
    schema = get_segmenter("classical").params_model.model_json_schema()
    image_ids = [
        f["image_id"]
        for p in detail["plate_maps"]
        for w in p["wells"].values()
        for f in w["fields"]
    ]
    return _page(
        state,
        request,
        "new_run.html",
        exp=detail,
        params=schema.get("properties", {}),
        image_ids=image_ids,
    )


@router.get("/runs/{run_id}", response_class=HTMLResponse)
def run_page(request: Request, state: AppStateDep, run_id: RunId) -> Response:
    progress = state.backend.progress(run_id)
    return _page(state, request, "run.html", run=progress.as_json())
