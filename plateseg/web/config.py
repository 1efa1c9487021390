"""Settings of the web app: how users authenticate and which engine runs the runs.

Read like :class:`plateseg.settings.Settings` (explicit > ``PLATESEG_*`` environment >
default) but kept apart, so the library's settings stay free of web concerns.
"""

from __future__ import annotations

import secrets
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["WebSettings"]


class WebSettings(BaseSettings):
    """How the web app authenticates and where runs execute.

    Attributes
    ----------
    engine : {"local", "aws"}
        ``local`` runs the state machine in this process (background thread per run);
        ``aws`` starts Step Functions executions of ``state_machine_arn``.
    state_machine_arn : str
        The segmentation state machine on AWS (``engine="aws"`` only).
    web_auth : {"token", "password", "proxy"}
        ``token``: a random access token printed at start (like Jupyter), or
        ``web_token`` when set. ``password``: ``web_password``. ``proxy``: a fronting
        identity provider (ALB + Cognito, API Gateway authorizer) authenticated the
        request; the app requires its identity header / authorizer context.
    web_token : str
        Access token; a random one is drawn when empty.
    web_password : str
        Password for ``web_auth="password"``.
    web_secret : str
        Key signing session cookies and CSRF tokens; random per process when empty.
        Token, password and secret are left out of ``repr`` (and so of logs).
    web_max_body : int
        Largest request body accepted, bytes.
    web_secure_cookies : bool
        Mark cookies ``Secure`` (HTTPS deployments).
    web_max_active_runs : int
        Local engine: runs executing at once (each starts a pool of worker processes);
        0 turns admission control off. See :mod:`plateseg.web.admission`.
    web_max_queued_runs : int
        Local engine: accepted runs waiting for a free slot; starts beyond get 429.
    web_max_query : int
        Longest query string accepted, bytes (longer gets 414).
    run_settings : str
        JSON of the deployed Map settings (:class:`plateseg.contracts.RunSettings`), set
        by the web stack from ``cdk.json``; empty: the packaged definition's. The
        new-run estimate models these (AWS prices: :mod:`plateseg.planning.prices`).
    """

    model_config = SettingsConfigDict(
        env_prefix="PLATESEG_", extra="ignore", hide_input_in_errors=True
    )

    engine: Literal["local", "aws"] = "local"
    state_machine_arn: str = ""
    web_auth: Literal["token", "password", "proxy"] = "token"
    web_token: str = Field(default_factory=lambda: secrets.token_urlsafe(24), repr=False)
    web_password: str = Field(default="", repr=False)
    web_secret: str = Field(default_factory=lambda: secrets.token_urlsafe(32), repr=False)
    web_max_body: int = Field(default=1024 * 1024, gt=0)
    web_secure_cookies: bool = False
    web_max_active_runs: int = Field(default=2, ge=0, le=64)
    web_max_queued_runs: int = Field(default=20, ge=0, le=10_000)
    web_max_query: int = Field(default=4096, gt=0)
    run_settings: str = Field(default="", max_length=2000)
