"""Settings: LIEBIAN_* environment variables, then an optional liebian.toml, then defaults.

One data directory holds all state by default: the SQLite operational store, the DuckDB
warehouse, the key file, import rejects and exports.
"""

from __future__ import annotations

import os
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

# files in the data directory that must not be readable by others (ensure_dirs tightens old ones)
PRIVATE_FILES = (
    "liebian.db",
    "liebian.db-wal",
    "liebian.db-shm",
    "warehouse.duckdb",
    "warehouse.duckdb.wal",
    "keys.json",
)
PRIVATE_UMASK = 0o077


def _toml_path() -> Path:
    return Path(os.environ.get("LIEBIAN_CONFIG", "liebian.toml"))


# ------------------------------------------------------------------ holiday calendar (liebian/calendar.py)


class AnnualWindow(BaseModel):
    """A window that comes back every year on the same days, e.g. 双11 = 11-10 … 11-12."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=40)
    start: str = Field(pattern=r"^\d{2}-\d{2}$", description="MM-DD, first day")
    end: str = Field(pattern=r"^\d{2}-\d{2}$", description="MM-DD, last day (same year)")
    kind: Literal["promotion", "season"] = "promotion"

    @model_validator(mode="after")
    def _days_exist(self) -> AnnualWindow:
        try:  # 2024 is a leap year: 02-29 is accepted (and skipped in other years)
            first, last = (date.fromisoformat(f"2024-{v}") for v in (self.start, self.end))
        except ValueError as exc:
            raise ValueError(f"{self.name}: not a day of the year ({exc})") from None
        if last < first:
            raise ValueError(f"{self.name}: end {self.end} is before start {self.start}")
        return self


class BrandDate(BaseModel):
    """The brand's own dates (anniversary, member day, store opening): a name and its days."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=40)
    start: date
    end: date

    @model_validator(mode="after")
    def _ordered(self) -> BrandDate:
        if self.end < self.start:
            raise ValueError(f"{self.name}: end {self.end} is before start {self.start}")
        if (self.end - self.start).days > 92:
            raise ValueError(f"{self.name}: longer than 93 days")
        return self


def _default_promotions() -> list[AnnualWindow]:
    return [
        AnnualWindow(name="618", start="06-16", end="06-18"),
        AnnualWindow(name="双11", start="11-10", end="11-12"),
        AnnualWindow(name="双12", start="12-12", end="12-12"),
    ]


class CalendarSettings(BaseModel):
    """Settings `calendar` (liebian.toml `[calendar]`, or LIEBIAN_CALENDAR as JSON). 春节 is counted
    from 初一: the default 10 days before cover the 春运 travel week, the 21 after 元宵 (初一 + 14)
    and the week of recovery after it."""

    model_config = ConfigDict(extra="forbid")

    spring_festival_before_days: int = Field(default=10, ge=0, le=40)
    spring_festival_after_days: int = Field(default=21, ge=0, le=45)
    national_day_before_days: int = Field(default=1, ge=0, le=14)
    national_day_after_days: int = Field(default=1, ge=0, le=14)
    promotions: list[AnnualWindow] = Field(default_factory=_default_promotions, max_length=50)
    brand_dates: list[BrandDate] = Field(default_factory=list, max_length=500)
    other_holidays: bool = Field(
        default=True,
        description="the other public holidays and the adjusted working days (调休) explain deviations too",
    )


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LIEBIAN_", extra="ignore")

    data_dir: Path = Field(default=Path("liebian-data"), description="where all state lives")
    database_url: str | None = Field(default=None, description="SQLAlchemy URL; default SQLite in data_dir")
    # connections per process to a PostgreSQL store: by default derived from the server's
    # max_connections and the number of workers (db.session.plan_pool, docs/deploy.md); when set,
    # checked against them at start
    db_pool_size: int | None = Field(
        default=None, ge=1, description="pooled PostgreSQL connections per process (default: derived)"
    )
    db_max_overflow: int | None = Field(
        default=None, ge=0, description="extra connections a process may open at peaks (default: derived)"
    )
    db_pool_timeout: float = Field(
        default=10.0, gt=0, description="seconds a request waits for a pooled connection before a 503"
    )
    db_reserved_connections: int = Field(
        default=10, ge=0, description="PostgreSQL connections left to the CLI, cron jobs and psql"
    )
    workers: int = Field(
        default=1, ge=1, description="server worker processes (set by `liebian serve --workers`)"
    )
    warehouse_path: Path | None = Field(default=None, description="DuckDB file; default in data_dir")
    engine: Literal["duckdb", "spark"] = "duckdb"
    spark_master: str = "local[2]"
    # the Parquet event store both engines read (engine/eventstore.py): a path or a file://,
    # s3a:// or hdfs:// URL; unset = off (Spark then reads `analyze export-parquet` files)
    event_store: str | None = Field(
        default=None, description="Parquet event store path or URL; off when unset"
    )
    timezone: str = Field(default="Asia/Shanghai", description="zone for naive input times and display")
    import_memory_mb: int = Field(
        default=1024,
        ge=64,
        description="DuckDB memory of one file import; a larger batch spills to temporary files",
    )
    # extra channel aliases, e.g. {"天猫": "tmall"}; canonical names not listed in
    # ingest.normalize.CHANNELS must be added to extra_channels to be accepted
    channel_aliases: dict[str, str] = Field(default_factory=dict)
    extra_channels: list[str] = Field(default_factory=list)
    # Exchange rates to CNY (liebian/fx.py, docs/formats.md "Currencies"): {"USD": {"2026-11-10": "7.1234"}}
    # (CNY per one unit of the currency, per day) and/or a CSV file `date,currency,cny_per_unit`.
    fx_rates: dict[str, dict[str, str]] = Field(default_factory=dict)
    fx_rates_file: Path | None = Field(default=None, description="CSV of rates: date,currency,cny_per_unit")
    fx_max_staleness_days: int = Field(
        default=7, ge=0, description="a rate older than this many days before the order is not used"
    )
    hmac_key: str | None = Field(default=None, description="hex key for identifier HMACs")
    encryption_key: str | None = Field(default=None, description="hex AES-256 key for PII ciphertext")
    host: str = "127.0.0.1"
    port: int = 8000
    base_url: str | None = None
    quality_error_target: float = 0.003
    scheduler_enabled: bool = Field(default=True, description="run scheduled jobs inside the server")
    console_warmup: bool | None = Field(
        default=None,
        description="compute the console's heaviest pages ahead of visitors (default: as scheduler_enabled)",
    )
    # anti-fraud: phone prefixes of virtual operators (虚拟运营商), held for review by the inline check
    fraud_virtual_prefixes: list[str] = Field(default_factory=lambda: ["162", "165", "167", "170", "171"])
    # campaigns/invites: a visitor known only by IP + user agent counts once within this window
    # (a person or a device counts once per campaign and inviter)
    visit_window_hours: float = Field(
        default=24, gt=0, description="hours within which the same IP + user agent is one visitor"
    )
    # security (auth/, privacy/): request body cap, per-client rate limit of public and anonymous
    # calls, the session cookie's Secure flag (default: on when base_url is https), retention in days
    max_request_bytes: int = Field(default=16 * 1024 * 1024, description="largest accepted request body")
    # hostile input (ingest/, web/app.py): the range of times accepted at every edge, JSON nesting,
    # and the limits of one uploaded import file
    input_time_min: datetime = Field(
        default=datetime(2000, 1, 1), description="earliest time accepted at the edges (naive UTC)"
    )
    input_future_days: float = Field(
        default=1.0, ge=0, description="how far past now a time given at the edges may lie, in days"
    )
    max_json_depth: int = Field(default=64, ge=2, description="deepest nesting of a JSON request body")
    max_query_value_chars: int = Field(
        default=4096, ge=16, description="longest value of one query parameter (characters)"
    )
    max_import_uncompressed_bytes: int = Field(
        default=256 * 1024 * 1024,
        ge=1,
        description="largest uncompressed content of an XLSX workbook (zip bombs)",
    )
    max_import_rows: int = Field(default=20_000_000, ge=1, description="most rows of one import file")
    max_concurrent_imports: int = Field(
        default=2, ge=1, description="uploads imported at once per process; more are refused (429)"
    )
    rate_limit_per_minute: int = Field(
        default=600, description="public/anonymous requests per client and route"
    )
    cookie_secure: bool | None = None
    allow_private_urls: bool = Field(
        default=False,
        description="let webhook and notification URLs point at loopback, private and link-local "
        "addresses (receivers on the internal network; local test receivers)",
    )
    login_ip_failures: int = Field(
        default=10, ge=1, description="failed logins from one IP before it is throttled"
    )
    login_ip_window_minutes: int = Field(
        default=15, ge=1, description="window of the per-IP login throttle and how long it lasts"
    )
    auth_cache_seconds: float = Field(
        default=5.0,
        ge=0,
        description="how long a worker trusts an API key it verified (revocations in other processes "
        "take effect within this time; 0 = check the store on every request)",
    )
    bootstrap_admin: bool = Field(
        default=True, description="create 'admin' with a one-time password on a store without users"
    )
    # privacy/pii.py: phones, resident ID numbers, e-mails and bank cards found in properties,
    # message text and rejects at ingest: "hash" = masked form + identifier HMAC, "drop" = type only
    pii_policy: Literal["hash", "drop"] = Field(
        default="hash", description="what replaces a personal identifier found at ingest: hash or drop"
    )
    participant_token_ttl_seconds: int = Field(
        default=30 * 86400,
        ge=60,
        le=366 * 86400,
        description="lifetime of the participant token the public key needs for my/* and progress",
    )
    participant_token_id_types: list[str] = Field(
        default_factory=lambda: [
            "unionid",
            "openid",
            "external_userid",
            "app_user",
            "douyin_openid",
            "xhs_id",
        ],
        description="identifier types for which the public key's invite/accept answers carry a participant "
        "token (opaque ids a visitor cannot guess; not phones)",
    )
    retention_days: dict[str, int] = Field(
        default_factory=lambda: {"events": 730, "messages": 365, "rejects": 90},
        description="days raw warehouse rows are kept (0 = forever)",
    )
    # campaigns/: a conversion reported with the public key waits this long for a trusted order
    conversion_confirm_hours: float = Field(
        default=72, gt=0, description="hours a public-key conversion waits for a trusted order, then rejected"
    )
    # WeCom (企业微信) self-built app: corp id, the 客户联系 secret, and the callback token / EncodingAESKey.
    # Secrets are SecretStr so that they never show in reprs or logs.
    wecom_corp_id: str | None = None
    wecom_secret: SecretStr | None = None
    wecom_token: SecretStr | None = None
    wecom_encoding_aes_key: SecretStr | None = None
    wecom_api_base: str = "https://qyapi.weixin.qq.com"
    wecom_replay_window_seconds: int = Field(default=300, ge=1, description="callback timestamp tolerance")
    # automation/: one cap across ALL channels and journeys (N contacts per person per window of days),
    # and quiet hours in the display zone ("21-9": no contact from 21:00 to 09:00)
    automation_cap_contacts: int = Field(default=1, ge=1, description="contacts per person per cap window")
    automation_cap_window_days: int = Field(default=1, ge=1, description="cap window in days (display zone)")
    automation_quiet_hours: str = Field(
        default="21-9", description="START-END hours, display zone; '' = none"
    )
    # rewards/points.py: earned points (积分) lapse this many days after they were earned (FIFO use)
    points_expire_days: int = Field(default=365, ge=1, description="days before earned points expire")
    # reports/: SMTP for e-mailed reports
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 25
    smtp_from: str = "liebian@localhost"
    smtp_user: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = False
    # liebian/calendar.py: public holidays, adjusted working days, 春节 / 国庆 windows, promotions, brand dates
    calendar: CalendarSettings = Field(default_factory=CalendarSettings)
    # complaints/: the response clock. A complaint is due `complaint_deadline_hours` after it is
    # received (per category: `complaint_category_hours`, e.g. {"food_safety": 4}); a data-subject
    # request is due `subject_request_deadline_days` after (15: the limit of the 2019 App 认定方法,
    # inside GB/T 35273-2020 §8.7's 30 days; docs/complaints.md). The owner is reminded once
    # `complaint_remind_fraction` of the window has passed; an overdue case escalates, and again
    # every `complaint_escalate_every_hours` while it stays open.
    complaint_deadline_hours: float = Field(
        default=24, gt=0, le=8760, description="hours to resolve a complaint"
    )
    complaint_category_hours: dict[str, Annotated[float, Field(gt=0, le=8760)]] = Field(default_factory=dict)
    subject_request_deadline_days: int = Field(
        default=15, ge=1, le=30, description="days to answer a data-subject request (PIPL rights)"
    )
    complaint_remind_fraction: float = Field(
        default=0.8, gt=0, lt=1, description="share of the window before a reminder"
    )
    complaint_escalate_every_hours: float = Field(
        default=24, gt=0, description="hours between escalations of an overdue case"
    )
    # community/: weekly-active share per group against a target (plans: 10 % now → 35 %), staff
    # user ids (as imported) whose messages are staff content, not UGC
    community_weekly_active_target: float = Field(default=0.10, ge=0, le=1, description="default target")
    community_weekly_active_goal: float = Field(default=0.35, ge=0, le=1, description="the plans' goal")
    community_staff_ids: list[str] = Field(default_factory=list)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (
            init_settings,
            env_settings,
            TomlConfigSettingsSource(settings_cls, toml_file=_toml_path()),
        )

    @property
    def sqlalchemy_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'liebian.db').resolve()}"

    @property
    def warehouse_file(self) -> Path:
        return self.warehouse_path or self.data_dir / "warehouse.duckdb"

    @property
    def public_url(self) -> str:
        return self.base_url or f"http://{self.host}:{self.port}"

    def ensure_dirs(self) -> None:
        """Create the data directory owner-only and make what this process creates owner-only.

        The store, the warehouse, the key file, exports and rejects hold personal data: the umask
        makes every file this process creates 0600 (directories 0700), whatever creates it (SQLite,
        DuckDB, the export writers), and files left readable by an older version are tightened.
        """
        os.umask(PRIVATE_UMASK)
        created = not self.data_dir.exists()
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        if created:
            self.data_dir.chmod(0o700)  # mkdir's mode is filtered by the umask of the parent's creator
        for name in PRIVATE_FILES:
            path = self.data_dir / name
            try:
                if path.stat().st_mode & 0o077:
                    path.chmod(0o600)
            except OSError:  # absent (the usual case), or not ours to change
                continue


@lru_cache
def get_settings() -> Settings:
    settings = Settings()
    settings.ensure_dirs()
    return settings


def reset_settings_cache() -> None:
    """Forget cached settings (tests and the CLI's --data-dir change the environment)."""
    get_settings.cache_clear()
