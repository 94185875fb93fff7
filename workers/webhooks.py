"""Webhooks: an HTTP POST signed with HMAC-SHA256 when a model version is ready or a job fails.

Delivery runs in a worker task with exponential back-off, so no request ever waits on a receiver. A
delivery is sent at least once (the receiver dedupes by ``X-Loupe-Delivery``): a row whose task never
reached the broker (``queued_at`` empty: the send after its commit failed, or the send of its next
attempt) is sent by a running worker's sweep (``send_unqueued``), and says so in ``last_error`` until then.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from datetime import timedelta

import httpx
from celery.exceptions import Reject

from app import task_client
from app.db import session_scope
from app.models import Project, WebhookDelivery
from app.models.base import utcnow
from app.repos import webhooks as webhooks_repo
from app.services.project_settings import effective_settings
from app.settings import get_settings
from workers.celery_app import celery_app

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 6
SIGNATURE_HEADER = "X-Loupe-Signature"


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def emit(project_id: int, event: str, payload: dict) -> None:
    """Record the event and queue its delivery, if the project has a webhook. A send that fails leaves
    the delivery to a worker's sweep (``send_unqueued``), saying so on the row; it never raises for it."""
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
    send(settings.database_url, settings.broker_url, [delivery_id])


def send(db_url: str, broker_url: str, delivery_ids: list[int]) -> list[int]:
    """Send the deliveries' tasks; stamp those that reached the broker (``queued_at``), and note on the
    others that they are not queued yet. Returns the ones sent."""
    sent, failed, reason = [], [], ""
    for delivery_id in delivery_ids:
        try:
            task_client.send_delivery(broker_url, delivery_id)
            sent.append(delivery_id)
        except Exception as exc:  # noqa: BLE001 - any broker failure means "not queued yet"
            log.warning("could not queue webhook delivery %s; a worker's sweep sends it", delivery_id)
            failed.append(delivery_id)
            reason = f"{type(exc).__name__}: {exc}"
    with session_scope(db_url) as s:
        webhooks_repo.stamp_queued(s, sent)
        webhooks_repo.note_not_queued(s, failed, reason)
    return sent


def send_unqueued(db_url: str, broker_url: str) -> list[int]:
    """Send the pending deliveries whose task never reached the broker (a worker's sweep, every
    ``job_sweep_seconds``); never one that is in the broker, waiting in a queue or between retries.
    Returns the ones sent."""
    with session_scope(db_url) as s:
        lost = webhooks_repo.never_queued(s, utcnow() - timedelta(seconds=task_client.LOST_SEND_AFTER_S))
    if lost:
        log.warning("webhook deliveries %s never reached the broker: sent now", lost)
    return send(db_url, broker_url, lost)


@celery_app.task(name=task_client.DELIVER_WEBHOOK_TASK, bind=True, max_retries=MAX_ATTEMPTS - 1)
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
        if d.attempts >= MAX_ATTEMPTS:  # its attempts, however many sends (a sweep's among them) made them
            d.status = "failed"
            return
        attempts = d.attempts
    try:  # 1 s, 2 s, 4 s, ... between attempts
        retry = self.retry(countdown=2 ** (attempts - 1), throw=False)
    except Reject as exc:  # the next attempt never reached the broker: a sweep sends it
        log.warning("could not queue the next attempt of webhook delivery %s", delivery_id)
        with session_scope(settings.database_url) as s:
            webhooks_repo.note_not_queued(s, [delivery_id], str(exc.reason))
        return
    raise retry
