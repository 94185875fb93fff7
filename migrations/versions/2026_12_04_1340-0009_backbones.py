"""registered backbone files (issue 13)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04 13:40:00

The ``backbones`` table: backbone files an admin registered (torchvision state dict, TorchScript, ONNX)
or exported from a project, each checked before its row is written; the file is in the media store.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.models.base

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "backbones",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("format", sa.String(length=16), nullable=False),
        sa.Column("architecture", sa.String(length=64), nullable=True),
        sa.Column("embedding_dim", sa.Integer(), nullable=False),
        sa.Column("input_size", sa.Integer(), nullable=False),
        sa.Column("in_channels", sa.Integer(), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("file_key", sa.String(length=300), nullable=False),
        sa.Column("filename", sa.String(length=300), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("source_project_id", sa.Integer(), nullable=True),
        sa.Column("source_backbone_version_id", sa.Integer(), nullable=True),
        sa.Column("created_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by"], ["users.id"], name=op.f("fk_backbones_created_by_users"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["source_project_id"], ["projects.id"], name=op.f("fk_backbones_source_project_id_projects"),
            ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["source_backbone_version_id"], ["backbone_versions.id"],
            name=op.f("fk_backbones_source_backbone_version_id_backbone_versions"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_backbones")),
        sa.UniqueConstraint("name", name=op.f("uq_backbones_name")),
    )


def downgrade() -> None:
    op.drop_table("backbones")
