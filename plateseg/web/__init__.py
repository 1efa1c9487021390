"""The web UI and JSON API for scientists (``plateseg serve``; a Lambda behind Cognito)."""

from __future__ import annotations

from plateseg.web.app import create_app
from plateseg.web.config import WebSettings

__all__ = ["WebSettings", "create_app"]
