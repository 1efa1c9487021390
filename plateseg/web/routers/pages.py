"""Server-rendered pages: login, experiments, experiment plate, new run, run + results."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal
from urllib.parse import quote, urlsplit

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from plateseg.contracts import DEFAULT_SEGMENTER
from plateseg.plate.channels import default_channels
from plateseg.plate.naming import PRESETS
from plateseg.segmentation import get_segmenter
from plateseg.segmentation.model_store import MAX_MODEL_BYTES, list_models
from plateseg.segmentation.onnx_model import DEFAULT_MODEL, MODEL_NAME_PATTERN
from plateseg.web.deps import AppStateDep, ExperimentId, RunId
from plateseg.web.routers.experiments import experiment_detail, list_experiments
from plateseg.web.security import TooManyAttempts
from plateseg.web.state import HERE, AppState

#: Segmenters the new-run page offers (``onnx``/``trainable`` take a model from the store).
SEGMENTERS = {
    "onnx": "onnx (learned nuclei model nuclei-unet, or any ONNX model)",
    "classical": "classical (threshold + watershed)",
    "trainable": "trainable (pixel classifier from scribbles)",
}

router = APIRouter(include_in_schema=False)


def render_page(state: AppState, request: Request, name: str, **context: Any) -> Response:
    context.setdefault("engine", state.config.engine)
    context["csrf_token"] = request.state.csrf_token  # set by the security middleware
    context["signed_in"] = bool(request.state.session)
    return state.templates.TemplateResponse(request, name, context)


def _safe_next(target: str) -> str:
    """Only same-site relative paths (no scheme, host or ``//``) are followed after login."""
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return "/"
    return target


def _login_page(
    request: Request, next: str, *, failed: bool = False, status: int = 200, wait: int = 0
) -> Response:
    state: AppState = request.app.state.plateseg
    css = (HERE / "static" / "app.css").read_text(encoding="utf-8")
    context = {
        "next": _safe_next(next),
        "failed": failed,
        "wait": wait,
        "css": css,
        "mode": state.config.web_auth,
    }
    response = state.templates.TemplateResponse(request, "login.html", context, status_code=status)
    if wait:
        response.headers["Retry-After"] = str(wait)
    return response


@router.get("/login", response_class=HTMLResponse)
def login_page(
    request: Request,
    next: Annotated[str, Query(max_length=2048)] = "/",
    failed: bool = False,
) -> Response:
    return _login_page(request, next, failed=failed, status=401 if failed else 200)


@router.post("/login")
def login(
    request: Request,
    secret: Annotated[str, Form(max_length=512)],
    next: Annotated[str, Form(max_length=2048)] = "/",
) -> Response:
    """Check the password / token (rate-limited per client); a new session on success."""
    state: AppState = request.app.state.plateseg
    target = _safe_next(next)
    client = request.client.host if request.client else "unknown"
    try:
        good = state.config.web_auth != "proxy" and state.guard.check(secret, client)
    except TooManyAttempts as exc:
        return _login_page(request, target, status=429, wait=exc.retry_after)
    if not good:
        return RedirectResponse(f"/login?failed=true&next={quote(target)}", status_code=303)
    response = RedirectResponse(target, status_code=303)
    session = state.guard.new_session()
    response.headers.append("set-cookie", state.guard.cookie_header(session).decode())
    return response


@router.post("/logout")
def logout(request: Request, state: AppStateDep) -> Response:
    """Revoke this browser's session and remove its cookie (CSRF-checked like any POST)."""
    state.guard.revoke(request.state.session)
    response = RedirectResponse("/login", status_code=303)
    response.headers.append("set-cookie", state.guard.clear_cookie_header().decode())
    return response


@router.get("/", response_class=HTMLResponse)
def experiments_page(request: Request, state: AppStateDep) -> Response:
    return render_page(state, request, "experiments.html", experiments=list_experiments(state))


@router.get("/experiments/{experiment_id}", response_class=HTMLResponse)
def experiment_page(request: Request, state: AppStateDep, experiment_id: ExperimentId) -> Response:
    detail = experiment_detail(state, experiment_id)
    return render_page(state, request, "experiment.html", exp=detail)


def _choice(value: str | None, pattern: str) -> str | None:
    """A query value kept only when it matches ``pattern`` (preselection is a hint)."""
    return value if value is not None and re.fullmatch(pattern, value) else None


@router.get("/experiments/{experiment_id}/new-run", response_class=HTMLResponse)
def new_run_page(
    request: Request,
    state: AppStateDep,
    experiment_id: ExperimentId,
    segmenter: Literal["classical", "trainable", "onnx"] = DEFAULT_SEGMENTER,
    model: Annotated[str | None, Query(max_length=64)] = None,
    nuclei: Annotated[str | None, Query(max_length=64)] = None,
    planes: Annotated[str | None, Query(max_length=8)] = None,
) -> Response:
    """The recipe and run-options form (``plateseg run``'s options: naming, secondary
    objects, batch size, concurrency, run id); ``?segmenter=trainable&model=NAME&nuclei=w1``
    preselects a model, ``&planes=max`` the maximum projection (what the Models page's
    "Use" links carry for a model taught on projections)."""
    detail = experiment_detail(state, experiment_id)
    schema = get_segmenter(segmenter).params_model.model_json_schema()
    models: list[str] = []
    if segmenter != "classical":
        wanted = "pixel-features" if segmenter == "trainable" else None
        models = [
            m.name
            for m in list_models(state.store)
            if wanted is None or m.kind in (wanted, "unknown")
        ]
    chosen = _choice(model, MODEL_NAME_PATTERN)
    if chosen is None and segmenter == "onnx":
        chosen = DEFAULT_MODEL
    if chosen is not None and chosen not in models:
        models.insert(0, chosen)
    channel = _choice(nuclei, r"[A-Za-z0-9_.-]+")
    defaults = default_channels(detail["channels"])  # what Lookup picks for a bare recipe
    return render_page(
        state,
        request,
        "new_run.html",
        exp=detail,
        params=schema.get("properties", {}),
        segmenters=SEGMENTERS,
        segmenter=segmenter,
        models=models,
        model=chosen or (models[0] if models else None),
        nuclei=channel if channel in detail["channels"] else defaults and defaults.nuclei,
        planes=_choice(planes, "first|max") or "first",
        cells=defaults and defaults.cells,
        presets=sorted(PRESETS),
        map_defaults=state.backend.map_settings,
    )


@router.get("/models", response_class=HTMLResponse)
def models_page(
    request: Request,
    state: AppStateDep,
    experiment: Annotated[str | None, Query(max_length=128)] = None,
) -> Response:
    """Models in the store, upload, and the scribble trainer."""
    experiments = [e for e in list_experiments(state) if e.in_store]
    ids = [e.experiment_id for e in experiments]
    return render_page(
        state,
        request,
        "models.html",
        models=[m.as_json() for m in list_models(state.store)],
        experiments=experiments,
        experiment=experiment if experiment in ids else (ids[0] if ids else None),
        max_body=_size(min(state.config.web_max_body, MAX_MODEL_BYTES)),
    )


def _size(n: int) -> str:
    """``1 MiB``, ``512 KiB``: a byte limit for people."""
    return f"{n / 2**20:.3g} MiB" if n >= 2**20 else f"{n / 2**10:.3g} KiB"


@router.get("/runs/{run_id}", response_class=HTMLResponse)
def run_page(request: Request, state: AppStateDep, run_id: RunId) -> Response:
    progress = state.backend.progress(run_id)
    return render_page(state, request, "run.html", run=progress.as_json())
