"""Dependencies of the routers, as ``Annotated`` aliases."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import Depends, Path, Request

from plateseg.contracts import validate_experiment_id
from plateseg.errors import InputError
from plateseg.runs.ids import check_execution_name
from plateseg.web.state import AppState

__all__ = ["AppStateDep", "ExperimentId", "ImageId", "RunId"]

#: Image ids are ``<plate>_<well>_<field>`` and plates may be named with spaces or any
#: script; a path separator, a backslash or a control character is what must never pass.
_IMAGE_ID = re.compile(r"^[^./\\\x00-\x1f\x7f][^/\\\x00-\x1f\x7f]{0,199}$")


def get_state(request: Request) -> AppState:
    state: AppState = request.app.state.plateseg
    return state


def _experiment_id(experiment_id: Annotated[str, Path(max_length=128)]) -> str:
    return validate_experiment_id(experiment_id)


def _run_id(run_id: Annotated[str, Path(max_length=80)]) -> str:
    """A run id, or the execution name of one of its retries (the one rule:
    :mod:`plateseg.runs.ids`)."""
    return check_execution_name(run_id)


def _image_id(image_id: Annotated[str, Path(max_length=200)]) -> str:
    if not _IMAGE_ID.fullmatch(image_id) or ".." in image_id:
        raise InputError(f"invalid image id {image_id[:60]!r}")
    return image_id


AppStateDep = Annotated[AppState, Depends(get_state)]
ExperimentId = Annotated[str, Depends(_experiment_id)]
RunId = Annotated[str, Depends(_run_id)]
ImageId = Annotated[str, Depends(_image_id)]
