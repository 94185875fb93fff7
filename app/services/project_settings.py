"""Project settings: the knobs an admin may turn, their defaults, and their validation."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model, field_validator
from pydantic.fields import FieldInfo

# The API's choices are the names the ml registries register (ml/estimators, ml/strategies, ml/ssl), written
# here once because the API may not import ml (it never loads torch); tests/project/test_settings_choices.py
# ties each list to its registry, so a name registered there and neither offered nor excluded here fails.
# co_training takes its two views from the embedding's blocks (the last block and the ones before it:
# ml/fit.py: views), so it wants a concat:k or weighted:k layer; on one block it splits the columns in half.
ESTIMATORS = ("logistic", "label_spreading", "co_training")
# Registered but not a project's choice, each with why (the 422 says it): fine-tuning trains the backbone
# itself on the images (not a model on embeddings), so it is the finetune job, after which the estimator is
# fitted on the fine-tuned embeddings. The fine-tuned network's own head was measured against that probe
# (bench/finetune_gain.py, accuracy_head) on EuroSAT at 100 and 500 labels and lost on every run, by 2.5-6.1
# points (docs/benchmarks.md, "What fine-tuning buys"), so it is not an estimator.
NOT_PROJECT_ESTIMATORS = {
    "finetune": "fine-tuning is not an estimator setting: it trains the backbone itself on the labelled images, "
                "so it is a job (POST /projects/{pid}/jobs with kind finetune), after which the project's estimator "
                "is fitted on the fine-tuned embeddings; the fine-tuned network's own classifier is not offered "
                "because it scored below that on EuroSAT at 100 and 500 labels (docs/benchmarks.md, \"What "
                "fine-tuning buys\")",
}
STRATEGIES = ("mixed", "random", "least_confidence", "margin", "entropy", "kcenter", "cold_start", "typical_first")
SSL_METHODS = ("simclr", "rotation", "masked_ae", "relative_patch", "jigsaw", "vicreg")
# The backbone input side an admin may choose: 16 px still keeps some structure; 224 px is what ImageNet
# backbones take (and what a GPU affords); multiples of 4 keep the CNNs' pooling stages exact.
InputSize = Annotated[int, Field(ge=16, le=224, multiple_of=4)]
# Which backbone blocks make the embedding (ml/embedding.py). concat:3 won on real photographs (EuroSAT, and
# the held-out photo set of issue 13: 37.8 % vs 31.8 % for last at 100 labels) and on CIFAR (docs/benchmarks.md);
# weighted:k is a learned weighted sum of the last k blocks (weighted: all of them), its weights fitted on the
# labels at each train (ml/block_weights.py; equal, i.e. concat:k, below 20 labels). A backbone with fewer
# blocks (a registered TorchScript or ONNX file) uses all it has.
EMBEDDING_LAYERS = ("last", "penultimate", "concat:2", "concat:3", "concat:4", "weighted:2", "weighted:3", "weighted")
BACKBONE_MODES = ("frozen", "continue", "finetune")  # how a registered backbone is used (app/services/backbones.py)


class ProjectSettings(BaseModel):
    """Defaults chosen from the benchmarks in docs/benchmarks.md."""

    model_config = ConfigDict(extra="forbid")

    estimator: Literal[ESTIMATORS] = "logistic"  # type: ignore[valid-type]
    strategy: Literal[STRATEGIES] = "mixed"  # type: ignore[valid-type]
    retrain_every: int = Field(20, ge=1, le=100_000, description="retrain after this many new labels")
    batch_size: int = Field(20, ge=1, le=1000, description="samples the strategy picks per round")
    ssl_method: Literal[SSL_METHODS] = "simclr"  # type: ignore[valid-type]
    pretrain_budget_s: float = Field(300, ge=1, le=24 * 3600, description="one pretraining chunk (seconds of "
                                     "CPU or GPU): between chunks the backbone is checked and shorter jobs run")
    pretrain_total_budget_s: float = Field(3600, ge=1, le=30 * 24 * 3600, description="background pretraining "
                                           "goes on in chunks until this much training is done")
    auto_pretrain: bool = Field(True, description="pretrain a backbone after the first import")
    auto_embed: bool = Field(True, description="embed new samples as they arrive")
    embedding_layer: Literal[EMBEDDING_LAYERS] = Field(  # type: ignore[valid-type]
        "concat:3", description="backbone blocks pooled into the embedding; a change re-embeds every sample")
    input_size: InputSize | None = Field(None, description="backbone input side in pixels; absent: chosen at each "
                                         "pretraining from the images and the worker's device")
    lease_seconds: int = Field(300, ge=10, le=24 * 3600)
    audit_fraction: float = Field(0.1, ge=0.0, le=0.5, description="share of labels asked on the random audit sample")
    target_accuracy: float = Field(0.95, gt=0.0, le=1.0)
    review_confidence: float = Field(0.95, gt=0.0, le=1.0,
                                     description="a label against a model this sure goes to review")
    overlap: float = Field(0.0, ge=0.0, le=1.0, description="share of samples served, after their first label, to "
                           "a second annotator who does not see it (agreement on the dashboard; a disagreement goes "
                           "to review)")
    overlap_classes: list[Annotated[str, Field(min_length=1, max_length=200)]] = Field(
        [], max_length=1000, description="classes whose every sample, first labelled as one of "
        "them, also goes to a second annotator (rare or costly classes)")
    webhook_url: str | None = Field(None, max_length=2000, pattern=r"^https?://")
    webhook_secret: str | None = Field(None, max_length=200)
    backbone: int | None = Field(None, ge=1,
                                 description="a registered backbone's id; none: self-supervision from scratch")
    backbone_mode: Literal[BACKBONE_MODES] = Field(  # type: ignore[valid-type]
        "frozen", description="use the registered backbone frozen, continue its pretraining on this project's images, "
        "or fine-tune it on the labels")

    @field_validator("input_size", mode="before")
    @classmethod
    def _auto_is_absent(cls, v: Any) -> Any:
        return None if v == "auto" else v

    @field_validator("estimator", mode="before")
    @classmethod
    def _registered_but_not_a_setting(cls, v: Any) -> Any:
        return _not_a_project_estimator(v)


def _not_a_project_estimator(v: Any) -> Any:
    """An estimator ml registers but a project cannot choose is refused with why, not only "input should be"."""
    if isinstance(v, str) and v in NOT_PROJECT_ESTIMATORS:
        raise ValueError(NOT_PROJECT_ESTIMATORS[v])
    return v


# A project kind's defaults where they differ from ProjectSettings' (an image project's): what won that kind's
# benchmarks. Written into a project's settings when it is created, so a project keeps the defaults it was
# created with and shows them.
# A text project: typical picks (TypiClust) until 5 labels a class and at least 100, then margin within
# diversity. On the TF-IDF embedding (lsa) with the logistic probe it beat random picks and `mixed` (whose
# cold start ends at one label a class) on AG News and BANKING77, 3 seeds (docs/benchmarks.md, "Text: label
# efficiency"); `mixed` lost to random picks on AG News at 100 labels. The estimator stays the probe.
TEXT_DEFAULTS: dict[str, Any] = {"strategy": "typical_first"}
KIND_DEFAULTS: dict[str, dict[str, Any]] = {
    "image": {},
    "text": TEXT_DEFAULTS,
}


def effective_settings(stored: dict[str, Any] | None, kind: str = "image") -> dict[str, Any]:
    """Every setting: the stored ones, and for the others the defaults of the project's ``kind``."""
    known = ProjectSettings.model_fields
    return ProjectSettings(**{**KIND_DEFAULTS.get(kind, {}),
                              **{k: v for k, v in (stored or {}).items() if k in known}}).model_dump()


# A patch names the settings it changes and leaves the others as they are: every setting again, with the
# same limits, optional and None by default. Only the settings a patch may clear with an explicit null
# carry a description of their own (what the null means); "auto" asks for the automatic input size.
CLEARABLE = {"backbone": "a registered backbone's id; null: self-supervision from scratch"}
_PATCH_TYPES: dict[str, Any] = {"input_size": InputSize | Literal["auto"] | None}


def _patch_field(name: str, field: FieldInfo) -> tuple[Any, FieldInfo]:
    setting: Any = field.annotation
    kind = _PATCH_TYPES.get(name, setting | None)
    return kind, FieldInfo.merge_field_infos(field, default=None, description=CLEARABLE.get(name))


if TYPE_CHECKING:
    ProjectSettingsPatch = ProjectSettings
else:
    ProjectSettingsPatch = create_model(
        "ProjectSettingsPatch", __config__=ConfigDict(extra="forbid"),
        __validators__={"_registered_but_not_a_setting":
                        field_validator("estimator", mode="before")(lambda cls, v: _not_a_project_estimator(v))},
        **{name: _patch_field(name, f) for name, f in ProjectSettings.model_fields.items()})


def patch_values(patch: ProjectSettingsPatch) -> dict[str, Any]:
    """What a patch changes: its non-null values, and the clearable settings it sets to null."""
    return {**patch.model_dump(exclude_none=True),
            **{k: None for k in CLEARABLE if k in patch.model_fields_set and getattr(patch, k) is None}}
