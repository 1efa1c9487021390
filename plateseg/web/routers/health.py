"""``GET /health``: the one route that needs no authentication."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["health"])


@router.get("/health")
def health() -> dict[str, str]:
    """Liveness: answers without touching the store or the database."""
    return {"status": "ok"}
