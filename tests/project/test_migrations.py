"""The Alembic revisions are the schema: they match the models and run both ways on both databases."""

from __future__ import annotations

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from tests.conftest import ROOT


def _cfg(url: str) -> Config:
    cfg = Config(str(ROOT / "alembic.ini"))
    cfg.attributes["url"] = url
    cfg.attributes["skip_logging"] = True
    return cfg


def test_migrated_schema_matches_the_models(db_url):
    from app.models import Base
    from app.repos.texts import is_word_index

    engine = create_engine(db_url)
    with engine.connect() as conn:
        # The word index over documents (migration 0020) is the database's own, not a model's.
        ctx = MigrationContext.configure(conn, opts={"include_name": lambda name, *_: not is_word_index(name or "")})
        diff = compare_metadata(ctx, Base.metadata)
    engine.dispose()
    assert diff == [], f"models and migrations differ; write a revision: {diff}"


def test_downgrade_to_base_and_up_again(db_url):
    command.downgrade(_cfg(db_url), "base")
    engine = create_engine(db_url)
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    engine.dispose()
    command.upgrade(_cfg(db_url), "head")
    engine = create_engine(db_url)
    assert {"users", "projects", "samples", "labels", "jobs"} <= set(inspect(engine).get_table_names())
    engine.dispose()


def test_settings_refuse_the_default_secret_in_production(tmp_path):
    from app.settings import Settings

    with pytest.raises(ValueError, match="LOUPE_SECRET_KEY"):
        Settings(environment="production", var_dir=tmp_path)
    strong = "s3cret-from-vault-0123456789abcdef"
    assert Settings(environment="production", var_dir=tmp_path, secret_key=strong).secret_key
