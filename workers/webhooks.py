"""Webhooks: an HTTP POST signed with HMAC-SHA256 when a model version is ready or a job fails.

Delivery runs in a worker task with exponential back-off, so no request ever waits on a receiver.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging

import httpx

from app.db import session_scope
from app.models import Project, WebhookDelivery
from app.models.base import utcnow
from app.services.project_settings import effective_settings
from app.settings import get_settings
from workers.celery_app import celery_app

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 6
SIGNATURE_HEADER = "X-Loupe-Signature"


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def emit(project_id: int, event: str, payload: dict) -> None:
    """Record the event and queue its delivery, if the project has a webhook."""
    settings = get_settings()
    with session_scope(settings.database_url) as s:
        project = s.get(Project, project_id)
        if project is None or not effective_settings(project.settings).get("webhook_url"):
            return
        delivery = WebhookDelivery(project_id=project_id, event=event,
                                   payload={"event": event, "project_id": project_id, **payload})
        s.add(delivery)
        s.flush()
        delivery_id = delivery.id
    deliver.apply_async(args=[delivery_id], queue="cpu")


@celery_app.task(name="loupe.deliver_webhook", bind=True, max_retries=MAX_ATTEMPTS - 1)
def deliver(self, delivery_id: int) -> None:
    settings = get_settings()
    with session_scope(settings.database_url) as s:
        d = s.get(WebhookDelivery, delivery_id)
        if d is None or d.status != "pending":
            return
        project = s.get(Project, d.project_id)
        cfg = effective_settings(project.settings if project is not None else None)
        url, secret, payload = cfg.get("webhook_url"), cfg.get("webhook_secret") or "", d.payload
        d.attempts += 1
        if not url:  # removed after this delivery was queued: nothing to send it to, and nothing to retry
            d.status, d.last_error = "failed", "the project's webhook was removed before this event was delivered"
            return
    body = json.dumps(payload, sort_keys=True).encode()
    error = None
    try:
        r = httpx.post(url, content=body, timeout=10, headers={
            "content-type": "application/json", SIGNATURE_HEADER: sign(secret, body),
            "X-Loupe-Event": payload["event"], "X-Loupe-Delivery": str(delivery_id)})
        if r.status_code >= 300:
            error = f"receiver answered {r.status_code}"
    except httpx.HTTPError as exc:
        error = f"{type(exc).__name__}: {exc}"
    with session_scope(settings.database_url) as s:
        d = s.get(WebhookDelivery, delivery_id)
        assert d is not None
        if error is None:
            d.status, d.delivered_at, d.last_error = "delivered", utcnow(), None
            return
        d.last_error = error[:500]
        if self.request.retries >= MAX_ATTEMPTS - 1:
            d.status = "failed"
            return
    # 1 s, 2 s, 4 s, ... between attempts
    raise self.retry(countdown=2 ** self.request.retries)
