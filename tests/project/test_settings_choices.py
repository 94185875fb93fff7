"""The API's choices for project settings and backbone registration are the ml registries' names: the API
may not import ml (it never loads torch), so it writes them once (app/services/project_settings.py,
app/services/backbones.py) and these tests tie each list to its registry. A name registered in ml and
neither offered nor excluded by the API fails here, and so does a choice ml does not know."""

from __future__ import annotations

import pytest

from app.services import backbones as backbone_service
from app.services import project_settings as ps


def test_estimators_are_the_registry_less_those_a_project_cannot_choose():
    from ml.estimators import DEFAULT_ESTIMATOR, list_estimators

    assert not set(ps.ESTIMATORS) & set(ps.NOT_PROJECT_ESTIMATORS)
    assert sorted([*ps.ESTIMATORS, *ps.NOT_PROJECT_ESTIMATORS]) == list_estimators()
    assert ps.ProjectSettings().estimator == DEFAULT_ESTIMATOR


def test_strategies_are_the_registry():
    from ml.strategies import DEFAULT_STRATEGY, list_strategies

    assert sorted(ps.STRATEGIES) == list_strategies()
    assert ps.ProjectSettings().strategy == DEFAULT_STRATEGY


def test_each_kinds_defaults_are_registered_choices():
    from ml.strategies import DEFAULT_STRATEGY, list_strategies

    assert ps.effective_settings({}, "image") == ps.ProjectSettings().model_dump()
    assert ps.effective_settings({}, "text")["strategy"] == "typical_first" != DEFAULT_STRATEGY
    assert all(ps.effective_settings({}, kind)["strategy"] in list_strategies() for kind in ps.KIND_DEFAULTS)
    assert ps.effective_settings({"strategy": "random"}, "text")["strategy"] == "random"


def test_ssl_methods_are_the_registry():
    from ml.ssl import list_methods

    assert sorted(ps.SSL_METHODS) == list_methods()
    assert ps.ProjectSettings().ssl_method in list_methods()


@pytest.mark.parametrize("layer", ps.EMBEDDING_LAYERS)
def test_every_embedding_layer_choice_is_one_the_embedding_understands(layer):
    from ml.embedding import parse_layer

    assert parse_layer(layer, 4)


def test_backbone_formats_and_normalisations_are_the_loaders():
    from ml.backbones.external import FORMATS, NORMALIZATIONS

    assert backbone_service.FORMATS == FORMATS
    assert set(backbone_service.NORMALIZATIONS) == set(NORMALIZATIONS)


def test_the_api_offers_exactly_these_choices():
    """What the REST API (and the settings form built from its schema) offers is these lists."""
    fields = ps.ProjectSettingsPatch.model_json_schema()["properties"]

    def offered(name: str) -> list[str]:
        return next(x["enum"] for x in fields[name]["anyOf"] if "enum" in x)

    assert offered("estimator") == list(ps.ESTIMATORS)
    assert offered("strategy") == list(ps.STRATEGIES)
    assert offered("ssl_method") == list(ps.SSL_METHODS)
    assert offered("embedding_layer") == list(ps.EMBEDDING_LAYERS)
    assert offered("backbone_mode") == list(ps.BACKBONE_MODES)


def test_the_patch_model_has_every_setting_with_its_limits_and_none_by_default():
    settings, patch = ps.ProjectSettings.model_fields, ps.ProjectSettingsPatch.model_fields
    assert list(patch) == list(settings)
    assert all(f.default is None for f in patch.values())
    assert [f.metadata for f in patch.values()] == [f.metadata for f in settings.values()]
    assert ps.ProjectSettingsPatch(input_size="auto").input_size == "auto"  # back to the automatic choice
    with pytest.raises(ValueError, match="multiple of 4"):
        ps.ProjectSettingsPatch(input_size=50)
    with pytest.raises(ValueError, match="Extra inputs are not permitted"):
        ps.ProjectSettingsPatch(nonsense=1)


def test_a_registered_estimator_a_project_cannot_choose_is_refused_with_why(admin):
    """finetune is an ml estimator but a job, not a setting: the 422 says why (not only "input should be")."""
    pid = admin.post("/projects", json={"name": "not an estimator", "classes": ["a", "b"]}).json()["id"]
    r = admin.patch(f"/projects/{pid}", json={"settings": {"estimator": "finetune"}})
    assert r.status_code == 422, r.text
    msg = str(r.json()["detail"])
    assert "kind finetune" in msg and "fine-tuned embeddings" in msg and "docs/benchmarks.md" in msg, msg
    assert admin.get(f"/projects/{pid}").json()["settings"]["estimator"] == "logistic"
