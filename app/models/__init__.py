"""All tables, imported here so Alembic and the services see one metadata."""

from app.models.backbone import RegisteredBackbone
from app.models.base import Base
from app.models.data_check import DataCheckSet, SampleExclusion
from app.models.job import Job
from app.models.label import IdempotencyRecord, Label, LabelCount, Review, WebhookDelivery
from app.models.label_issue import LabelIssueDecision, LabelIssueSet
from app.models.model_version import BackboneVersion, EmbeddingVersion, ModelVersion, Prediction
from app.models.notes import ProjectGuidelines, SampleComment
from app.models.project import Membership, Project
from app.models.sample import Sample, SampleCount
from app.models.sample_text import SampleText
from app.models.user import ApiToken, User

__all__ = [
    "ApiToken",
    "BackboneVersion",
    "DataCheckSet",
    "EmbeddingVersion",
    "Base",
    "IdempotencyRecord",
    "Job",
    "Label",
    "LabelCount",
    "LabelIssueDecision",
    "LabelIssueSet",
    "Membership",
    "ModelVersion",
    "Prediction",
    "Project",
    "ProjectGuidelines",
    "RegisteredBackbone",
    "Review",
    "WebhookDelivery",
    "Sample",
    "SampleComment",
    "SampleCount",
    "SampleExclusion",
    "SampleText",
    "User",
]
