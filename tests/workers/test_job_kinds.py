"""One list of job kinds (app/job_kinds.py): the API's choices, the queues and the runner's handlers agree."""

from __future__ import annotations

from app.job_kinds import KINDS, LONG_QUEUES, QUEUES, SHORT_QUEUES, JobKind, queue_for
from app.schemas.jobs import JobIn
from workers.jobs.runner import handlers


def test_every_kind_has_a_handler_a_queue_and_is_an_api_choice():
    assert set(handlers()) == set(KINDS) == set(JobKind)
    assert {info.queue for info in KINDS.values()} == set(QUEUES) == set(SHORT_QUEUES.split(",")) | {LONG_QUEUES}
    choices = JobIn.model_json_schema()["$defs"]["JobKind"]["enum"]
    assert choices == ["pretrain", "embed", "finetune", "train"]


def test_long_jobs_have_their_own_queue_and_an_unknown_kind_goes_to_the_cpu():
    assert [k for k, info in KINDS.items() if info.long] == [JobKind.FINETUNE, JobKind.PRETRAIN]
    assert queue_for("train") == "cpu" and queue_for("embed") == "gpu" and queue_for("pretrain") == "long"
    assert queue_for("from-a-newer-version") == "cpu"


def test_the_worker_registers_the_task_the_api_sends():
    from app.task_client import RUN_JOB_TASK
    from workers import startup, tasks  # noqa: F401 - the worker imports both before it starts
    from workers.celery_app import celery_app

    assert RUN_JOB_TASK in celery_app.tasks
