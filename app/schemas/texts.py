"""Answers about text projects' documents (issue 19): snippets for the browsing views, and the words
that drive a suggestion."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel


class SnippetOut(BaseModel):
    sample_id: int
    text: str  # the start of the document


class SnippetsOut(BaseModel):
    items: list[SnippetOut]


class TermOut(BaseModel):
    term: str  # a word or two (a bigram), lower case, accents stripped
    # Its pull towards ``label`` in this document: (1 + log count) * the n-gram's weight ("ngrams"), or the
    # fall of ``label``'s log-odds when the word is dropped from the document ("occlusion": e to the weight is
    # the factor by which the odds of ``label`` fall without it).
    weight: float
    spans: list[tuple[int, int]]  # each occurrence, [start, end) in the document's characters


class ExplanationOut(BaseModel):
    """The words of a document that drive the current model towards ``label`` (the suggestion unless
    another class was asked for), strongest first. Empty before a model, or for a moment after a new
    model version while its train job writes the weights."""
    sample_id: int
    model_version: int | None
    label: str | None
    terms: list[TermOut]
    # How the terms were found: the model version's n-gram weights, or (a text project whose embedding holds
    # its encoder, for the documents the queue serves next) occlusion of each word.
    method: Literal["ngrams", "occlusion"] = "ngrams"
