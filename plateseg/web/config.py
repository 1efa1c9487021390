"""Settings of the web app: how users authenticate and which engine runs the runs.

Read like :class:`plateseg.settings.Settings` (explicit > ``PLATESEG_*`` environment >
default) but kept apart, so the library's settings stay free of web concerns.
"""

from __future__ import annotations

import re
import secrets
from typing import Literal, Self

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["ALB_ARN_PATTERN", "WebSettings"]

#: An Application Load Balancer's ARN (the ``signer`` of the tokens it signs).
ALB_ARN_PATTERN = re.compile(
    r"^arn:aws[a-z-]*:elasticloadbalancing:([a-z0-9-]+):\d{12}:loadbalancer/app/[\w-]+/[0-9a-f]+$"
)


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
        identity provider authenticated the request, proven as ``web_proxy`` says; a
        bare identity header is never trusted.
    web_proxy : {"alb", "apigateway"}
        ``alb``: an Application Load Balancer with OIDC sign-in; every request must carry
        its ES256-signed ``x-amzn-oidc-data`` token, verified against the ALB's public
        key (signer ``web_alb_arn``, not expired); state-changing requests also need the
        CSRF token (the ALB's session cookie is an ambient credential).
        ``apigateway``: an API Gateway HTTP API whose JWT authorizer guards every route
        (``stacks/web.py``); the app runs in Lambda and accepts only requests whose event
        carries the authorizer's verified claims (built by API Gateway, not by clients).
    web_alb_arn : str
        ARN of the ALB (``web_proxy="alb"``): the only accepted token signer; its region
        picks the public-key endpoint.
    web_alb_keys : str
        Where the ALB's public keys are: empty for AWS
        (``https://public-keys.auth.elb.<region>.amazonaws.com/<kid>``), a URL template
        with ``{kid}`` (and optionally ``{region}``), or a local directory of PEM files
        named by key id. Keys are cached per key id.
    web_session_ttl : int
        Seconds a sign-in session lasts (cookie ``Max-Age`` and checked by the server);
        every sign-in mints a new session id, sign-out revokes it.
    web_login_attempts, web_login_window : int
        At most ``web_login_attempts`` failed credentials (login form, ``?token=``,
        bearer) per client address in ``web_login_window`` seconds; further attempts get
        429 until the window has passed.
    web_header_timeout : float
        Seconds a connection may take to send a request's headers (``plateseg serve``);
        slower connections are closed.
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
    web_max_previews : int
        Recipe previews segmenting at once (a 36-Mpx field takes about 0.9 GB); one
        more gets 503 with ``Retry-After``.
    web_max_query : int
        Longest query string accepted, bytes (longer gets 414).
    run_settings : str
        JSON of the deployed Map settings (:class:`plateseg.map_settings.MapSettings`),
        set by the web stack from ``cdk.json``; empty: the defaults. The
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
    web_max_previews: int = Field(default=2, ge=1, le=64)
    web_max_query: int = Field(default=4096, gt=0)
    web_proxy: Literal["alb", "apigateway"] = "alb"
    web_alb_arn: str = ""
    web_alb_keys: str = ""
    web_session_ttl: int = Field(default=12 * 3600, gt=0, le=30 * 86400)
    web_login_attempts: int = Field(default=5, gt=0)
    web_login_window: int = Field(default=300, gt=0)
    web_header_timeout: float = Field(default=10.0, gt=0, le=300)
    run_settings: str = Field(default="", max_length=2000)

    @model_validator(mode="after")
    def _proxy_needs_a_verifier(self) -> Self:
        alb = self.web_auth == "proxy" and self.web_proxy == "alb"
        if alb and not ALB_ARN_PATTERN.fullmatch(self.web_alb_arn):
            raise ValueError(
                "web_auth=proxy with web_proxy=alb needs PLATESEG_WEB_ALB_ARN, the ARN of "
                "the load balancer that signs x-amzn-oidc-data (arn:aws:elasticloadbalancing:"
                "<region>:<account>:loadbalancer/app/<name>/<id>)"
            )
        return self

    @property
    def alb_region(self) -> str:
        """The region of ``web_alb_arn`` (empty when unset)."""
        found = ALB_ARN_PATTERN.fullmatch(self.web_alb_arn)
        return found.group(1) if found else ""
