"""All settings in one place.

Runtime settings (where state lives, which backends, secrets) come from environment
variables prefixed `SAFETYNET_` and from an optional TOML file (`$SAFETYNET_CONFIG`,
else `$SAFETYNET_HOME/config.toml`). Environment variables win over the file.

Policy settings (indicator thresholds, risk tiers, programme rules, label and cohort
definitions, outreach capacity) live in `policy.toml` beside this module; a deployment
can point `SAFETYNET_POLICY_FILE` at its own copy. `load_policy` returns it typed and
validated (`safetynet.policy.Policy`).
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from safetynet.policy import Policy, cached_policy

DEFAULT_POLICY_FILE = Path(__file__).with_name("policy.toml")


def _config_file() -> Path:
    explicit = os.environ.get("SAFETYNET_CONFIG")
    if explicit:
        return Path(explicit)
    return Path(os.environ.get("SAFETYNET_HOME", ".safetynet")) / "config.toml"


def _cpus() -> int:
    """CPUs this process may run on (its affinity mask, not the host's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


class Settings(BaseSettings):
    """Runtime settings. Every path defaults to a place under `home`."""

    model_config = SettingsConfigDict(env_prefix="SAFETYNET_", extra="ignore")

    home: Path = Field(default=Path(".safetynet"), description="Directory for all local state.")
    mode: Literal["demo", "production"] = Field(
        default="demo", description="In production a pseudonymization secret must be configured."
    )
    pseudonym_secret: str | None = Field(
        default=None, description="HMAC-SHA-256 key for pseudonyms (required in production)."
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL for keys, audit log, feedback and score history "
        "(default: SQLite under home). PostgreSQL: postgresql+psycopg://user@host/db",
    )
    mlflow_tracking_uri: str | None = Field(
        default=None, description="MLflow tracking URI (default: SQLite under home)."
    )
    online_store: Literal["sqlite", "redis"] = "sqlite"
    redis_url: str = "redis://127.0.0.1:6379/0"
    model_name: str = "safetynet-hardship"
    model_alias: str = Field(
        default="champion",
        description="Registry alias of the model in use: served by `serve`, scored by `monitor`.",
    )
    policy_file: Path = DEFAULT_POLICY_FILE
    log_level: str = "INFO"
    # --- serving (serving/) ---
    serve_host: str = Field(default="127.0.0.1", description="Address `safetynet serve` binds.")
    serve_port: int = Field(default=3000, description="Port `safetynet serve` listens on.")
    serve_workers: int = Field(
        default_factory=lambda: min(2, _cpus()), ge=1,
        description="BentoML worker processes (default: 2, or 1 on a single core).",
    )
    serve_accepts_per_turn: int = Field(
        default=1, ge=0,
        description="Connections a worker accepts per event-loop turn when serve_workers > 1, "
        "so a burst of new connections spreads over the workers; all that wait while "
        "connections churn (32+ closed a second); 0 = always all (asyncio's default).",
    )
    serve_batch_limit: int = Field(
        default=1000, ge=1, description="Most households or records in one /score request."
    )
    serve_reasons: int = Field(default=5, ge=0, description="Reasons returned per household.")
    serve_model_poll_seconds: float = Field(
        default=30.0, ge=0, description="Seconds between checks of the alias (0 = never)."
    )
    serve_access_log: bool = Field(default=False, description="BentoML's access log lines.")
    serve_key_cache_seconds: float = Field(
        default=5.0, ge=0, description="How long a checked API key is trusted before re-reading it."
    )
    # --- caseworker web page (serving/caseworker/) ---
    caseworker_session_secret: str | None = Field(
        default=None,
        description="Key that signs caseworker session cookies (default: derived from the "
        "pseudonymization secret, so set one of the two in production).",
    )
    caseworker_session_hours: float = Field(
        default=8.0, gt=0, description="How long a caseworker stays logged in."
    )
    caseworker_cookie_secure: bool = Field(
        default=True,
        description="Send the session cookie over HTTPS only (browsers also accept it on "
        "http://127.0.0.1 and localhost).",
    )
    # --- ingest (features/ingest.py) ---
    ingest_memory_limit: str = Field(
        default="6GB",
        description="DuckDB memory limit during ingest; larger work spills to a temporary "
        "directory under home (the 1M-household benchmark budget is 12 GB in all).",
    )
    # --- feature build (features/build.py) ---
    features_bucket_households: int = Field(
        default=200_000, ge=1,
        description="Households per hash bucket of `features build`: the same query runs "
        "once per bucket, so memory follows the bucket size, not the city's.",
    )
    features_memory_limit: str = Field(
        default="8GB",
        description="DuckDB memory limit of `features build`; larger work spills to a "
        "temporary directory under home (empty: DuckDB's default, 80% of RAM).",
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        from pydantic_settings import TomlConfigSettingsSource

        toml = TomlConfigSettingsSource(settings_cls, toml_file=_config_file())
        return (init_settings, env_settings, toml)

    # --- derived locations: the one place that knows the layout of `home` -------------
    @property
    def store_dir(self) -> Path:
        """Offline feature store: committed deliveries as Parquet."""
        return self.home / "store"

    @property
    def data_dir(self) -> Path:
        """Where the demo writes the simulated city."""
        return self.home / "city"

    @property
    def log_dir(self) -> Path:
        return self.home / "logs"

    @property
    def reports_dir(self) -> Path:
        return self.home / "reports"

    @property
    def online_sqlite_path(self) -> Path:
        return self.home / "online.sqlite"

    @property
    def identity_path(self) -> Path:
        """Names and addresses, read only by the serving layer (by role)."""
        return self.home / "identity.sqlite"

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.home / 'safetynet.db').resolve()}"

    @property
    def tracking_uri(self) -> str:
        return self.mlflow_tracking_uri or f"sqlite:///{(self.home / 'mlflow.db').resolve()}"

    @property
    def artifact_root(self) -> Path:
        return self.home / "mlartifacts"

    def secret(self) -> bytes:
        """The pseudonymization key; in demo mode one is generated and kept under home."""
        if self.pseudonym_secret:
            return self.pseudonym_secret.encode()
        if self.mode == "production":
            raise RuntimeError(
                "SAFETYNET_PSEUDONYM_SECRET is not set: production mode needs a "
                "pseudonymization secret (HMAC-SHA-256 key)."
            )
        path = self.home / "demo_secret.key"
        if not path.exists():
            self.home.mkdir(parents=True, exist_ok=True)
            path.write_text(os.urandom(32).hex())
            path.chmod(0o600)
        return path.read_text().strip().encode()


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Settings for this process (cached; call `get_settings.cache_clear()` after changing env)."""
    return Settings()


def load_policy(path: Path | None = None) -> Policy:
    """The validated policy of `path` (default: the `policy_file` setting), read once per file
    version; raises `safetynet.policy.PolicyError` (one line naming file, section, key)."""
    return cached_policy(path or get_settings().policy_file)
