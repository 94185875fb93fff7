"""Queries on webhook delivery rows for the workers (``workers.webhooks``): which deliveries never
reached the broker, and what a send did. Functions take the caller's session and never commit."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.models import WebhookDelivery
from app.models.base import utcnow

# What a delivery whose task could not be sent says until a sweep sends it (``last_error``).
NOT_QUEUED = "not queued yet (the broker could not be reached: {}); a worker's sweep sends it"


def stamp_queued(session: Session, delivery_ids: Collection[int]) -> None:
    """Their tasks have just reached the broker; a 'not queued' note goes (a receiver's error stays)."""
    if not delivery_ids:
        return
    rows = WebhookDelivery.id.in_(delivery_ids)
    session.execute(update(WebhookDelivery).where(rows).values(queued_at=utcnow()))
    session.execute(update(WebhookDelivery).where(rows, WebhookDelivery.last_error.startswith("not queued yet"))
                    .values(last_error=None))


def note_not_queued(session: Session, delivery_ids: Collection[int], reason: str) -> None:
    """Their tasks could not be sent: the rows wait for a sweep, and say why (an admin reads ``last_error``)."""
    if delivery_ids:
        session.execute(update(WebhookDelivery).where(WebhookDelivery.id.in_(delivery_ids),
                                                      WebhookDelivery.status == "pending")
                        .values(queued_at=None, last_error=NOT_QUEUED.format(reason)[:500]))


def never_queued(session: Session, created_before: datetime) -> list[int]:
    """Pending deliveries whose task never reached the broker (the send after their commit failed, or
    the send of their next attempt), made before ``created_before``."""
    return list(session.scalars(select(WebhookDelivery.id).where(
        WebhookDelivery.status == "pending", WebhookDelivery.queued_at.is_(None),
        WebhookDelivery.created_at < created_before).order_by(WebhookDelivery.id)))
