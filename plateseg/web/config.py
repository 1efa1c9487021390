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
    web_max_body : int
        Largest request body accepted, bytes.
    web_secure_cookies : bool
        Mark cookies ``Secure`` (HTTPS deployments).
    lambda_gb_second_usd, state_transition_usd : float
        Prices used for the AWS cost estimate of a run.
    """

    model_config = SettingsConfigDict(env_prefix="PLATESEG_", extra="ignore")

    engine: Literal["local", "aws"] = "local"
    state_machine_arn: str = ""
    web_auth: Literal["token", "password", "proxy"] = "token"
    web_token: str = Field(default_factory=lambda: secrets.token_urlsafe(24))
    web_password: str = ""
    web_secret: str = Field(default_factory=lambda: secrets.token_urlsafe(32))
    web_max_body: int = Field(default=1024 * 1024, gt=0)
    web_secure_cookies: bool = False
    lambda_gb_second_usd: float = 0.0000166667
    lambda_memory_gb: float = 3.0
    state_transition_usd: float = 0.000025
