"""The kinds of job and the queues they run on: the one list the API's schema, the task client, the
services and the workers' runner all read (a test ties the runner's handlers to it).

Embedding wants an accelerator, fitting and scoring are CPU work: both are short, and the expert waits
for them. Pretraining chunks and fine-tuning are long: they have their own queue, which `loupe serve`
gives its own worker process, so a short job never waits behind them (docs/architecture.md, Jobs).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

GPU, CPU, LONG = "gpu", "cpu", "long"
QUEUES = (GPU, CPU, LONG)
SHORT_QUEUES, LONG_QUEUES = f"{GPU},{CPU}", LONG


class JobKind(StrEnum):
    # In this order in the API's schema (and its 422 answer for an unknown kind).
    PRETRAIN = "pretrain"
    EMBED = "embed"
    FINETUNE = "finetune"
    TRAIN = "train"


@dataclass(frozen=True)
class KindInfo:
    queue: str
    # The project's status line names what the expert waits for most first: new images become usable,
    # then the model, then the backbone.
    status_rank: int
    # A new request joins one of the same kind still waiting (it will see everything the new one would).
    folds_into_waiting: bool

    @property
    def long(self) -> bool:
        return self.queue == LONG


KINDS: dict[JobKind, KindInfo] = {
    JobKind.EMBED: KindInfo(queue=GPU, status_rank=0, folds_into_waiting=True),
    JobKind.TRAIN: KindInfo(queue=CPU, status_rank=1, folds_into_waiting=True),
    JobKind.FINETUNE: KindInfo(queue=LONG, status_rank=2, folds_into_waiting=False),
    JobKind.PRETRAIN: KindInfo(queue=LONG, status_rank=3, folds_into_waiting=False),
}


def info(kind: str) -> KindInfo | None:
    """The kind's entry; None for a kind this version does not know (a row from another version)."""
    try:
        return KINDS[JobKind(kind)]
    except ValueError:
        return None


def queue_for(kind: str) -> str:
    found = info(kind)
    return found.queue if found is not None else CPU
