"""Queries on accounts (``users``)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import User


def by_username(session: Session, username: str) -> User | None:
    return session.scalar(select(User).where(User.username == username))


def username_taken(session: Session, username: str) -> bool:
    return session.scalar(select(User.id).where(User.username == username)) is not None


def list_all(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.id)))


def add(session: Session, user: User) -> User:
    session.add(user)
    session.flush()
    return user


def get(session: Session, user_id: int) -> User | None:
    return session.get(User, user_id)
