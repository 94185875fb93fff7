"""One settings object for the API, the CLI and the workers (env prefix ``LOUPE_``)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_SECRET = "loupe-development-secret-change-me"


def _check_secret(key: str) -> None:
    """Refuse a production secret key that could be guessed: it signs each session's CSRF token."""
    if key == DEV_SECRET:
        raise ValueError("LOUPE_SECRET_KEY must be set to a real secret in production "
                         "(for example: openssl rand -hex 32)")
    if len(key) < 32 or len(set(key)) < 10:
        raise ValueError(f"LOUPE_SECRET_KEY is too weak for production ({len(key)} characters, {len(set(key))} "
                         "distinct): use at least 32 random characters, for example: openssl rand -hex 32")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LOUPE_", env_file=".env", extra="ignore")

    environment: Literal["development", "test", "production"] = "development"
    var_dir: Path = Path("var")
    # Defaults derive from var_dir so a fresh checkout needs nothing installed.
    database_url: str = ""
    broker_url: str = ""
    media_dir: Path | None = None
    # Signs each session's CSRF token (app/security.csrf_token); production refuses a weak one.
    secret_key: str = DEV_SECRET

    # Upload limits: checked before an upload is read whole, so a hostile client costs little.
    max_file_bytes: int = 64 * 1024 * 1024
    max_request_bytes: int = 1024 * 1024 * 1024  # a request to an upload route (app/api/uploads.py)
    # Every other route's body (app/api/limits.py): 1 MiB, nginx's default, holds a project of 1,000
    # long class names or a batch of thousands of labels; sign-in, open to anyone, gets 64 KiB.
    max_json_bytes: int = 1024 * 1024
    max_login_bytes: int = 64 * 1024
    # Slow clients (app/server.py, loupe serve): a request's line and headers must arrive within
    # header_timeout_s of its first byte (of the connection, for the first request), and a body may
    # pause at most body_timeout_s between two reads; headers over max_header_bytes get 431.
    header_timeout_s: float = 10.0
    body_timeout_s: float = 30.0
    max_header_bytes: int = 64 * 1024
    max_image_pixels: int = 40_000_000
    max_zip_members: int = 200_000
    max_zip_uncompressed_bytes: int = 8 * 1024 * 1024 * 1024
    max_zip_ratio: float = 200.0
    thumbnail_size: int = 256
    # Short side of the working copy made at import (what pretraining and embedding read): about twice
    # the largest backbone input; a GPU deployment training at 224 px may raise it to 448.
    work_side: int = 256
    # A text project's import (app/services/text_import.py): characters a document may have, and rows
    # (documents) one upload may bring; past the second nothing of the upload is imported.
    text_max_chars: int = 100_000
    text_max_rows: int = 200_000

    token_ttl_hours: int = 24 * 14
    # Sign-in throttling: failed sign-ins allowed per account, and per client address (any accounts),
    # within a moving window; past either, 429 with Retry-After until the oldest failure leaves it.
    login_failures_per_account: int = 10
    login_failures_per_address: int = 30
    login_window_s: int = 300
    default_lease_seconds: int = 300
    max_page_size: int = 1000
    broker_timeout_s: float = 2.0
    # A running job with no heartbeat for this long lost its worker: it is retried or failed. Its
    # worker beats every quarter of it; with the sweep below, a lost job is back within 90 s.
    job_stale_seconds: float = 60.0
    # How often a running worker looks for such jobs (0: half of job_stale_seconds).
    job_sweep_seconds: float = 0.0
    # The workers' training yields the CPU to the API (the expert's calls keep their speed): OS niceness
    # added to worker processes, and the threads torch and BLAS may use (0: one less than the cores,
    # at least one, since the API shares the machine).
    worker_nice: int = 10
    worker_threads: int = 0

    @model_validator(mode="after")
    def _derive_and_check(self) -> Settings:
        var = self.var_dir.resolve()
        if not self.database_url:
            self.database_url = f"sqlite:///{var / 'loupe.db'}"
        if not self.broker_url:
            self.broker_url = f"sqla+sqlite:///{var / 'broker.db'}"
        if self.media_dir is None:
            self.media_dir = var / "media"
        if self.job_sweep_seconds <= 0:
            self.job_sweep_seconds = self.job_stale_seconds / 2
        if self.environment == "production":
            _check_secret(self.secret_key)
        return self

    @property
    def media_path(self) -> Path:
        assert self.media_dir is not None
        return Path(self.media_dir)

    def ensure_dirs(self) -> None:
        self.var_dir.mkdir(parents=True, exist_ok=True)
        self.media_path.mkdir(parents=True, exist_ok=True)


@lru_cache
def get_settings() -> Settings:
    return Settings()

