"""Web UI Lambda: the FastAPI app behind Mangum (API Gateway / ALB events).

Settings come from the environment (``PLATESEG_ENGINE=aws``, ``PLATESEG_STATE_MACHINE_ARN``,
``PLATESEG_STORE=s3://…``, RDS settings, ``PLATESEG_WEB_AUTH=proxy`` behind Cognito).
The app is built on the first invocation, not at import.
"""

from __future__ import annotations

from typing import Any

_handler: Any = None


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Translate an HTTP event into an ASGI call of the plateseg web app."""
    global _handler
    if _handler is None:
        from mangum import Mangum

        from plateseg.web import create_app

        _handler = Mangum(create_app(), lifespan="off")
    result: dict[str, Any] = _handler(event, context)
    return result
