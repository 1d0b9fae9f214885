"""Orders in another currency become fen of CNY while a batch is normalised (file imports and the
collector alike: the pipeline calls `convert_orders` once, right after normalising).

The rules are `liebian.fx`'s, written as DuckDB SQL: the rate is the latest of the order's currency
dated on or before the order's day (in the configured zone) and at most `fx_max_staleness_days`
older (an ASOF join); the amount (hundredths of the currency's unit) times the rate as DECIMAL,
rounded half-up to a whole fen. A row without such a rate gets the error
`currency: no USD→CNY rate on or before 2026-11-11 (…)`, so it lands in the rejects with its
line; the batch goes on. The original amount, currency and rate go on beside the CNY amount
(`orig_amount`, `orig_currency`, `fx_rate` of the warehouse's orders; fx_rate NULL: it was CNY).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from liebian import fx
from liebian.config import Settings, get_settings
from liebian.ingest.normalize import q
from liebian.lazy import lazy_import

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa
else:  # deferred for start-up time: imported on first use (liebian/lazy.py)
    duckdb = lazy_import("duckdb")
    pa = lazy_import("pyarrow")

# DECIMAL(38, 12): rates with up to 12 decimals; amounts up to 10^15 hundredths times a rate of
# up to 10^6 stay inside 38 digits.
RATE_TYPE = "DECIMAL(38, 12)"
# The normalised values a reject for a missing rate shows (the row's own JSON is built only for
# rows that failed normalising; no identifiers here, they may be phone numbers).
_REJECT_FIELDS = ("order_id", "ts", "amount_fen", "currency", "status", "channel", "campaign_id")


def _converting_sql(tz: str, staleness: int) -> str:
    no_rate = (
        f"'no ' || s.currency || '→{fx.BASE} rate on or before ' || strftime(s.__day, '%Y-%m-%d')"
        f" || ' (at most {staleness} days old)'"
    )
    reason = (
        f"CASE WHEN s.__covered THEN 'amount in {fx.BASE} too large: ' || s.amount_fen ELSE {no_rate} END"
    )
    field = "CASE WHEN s.__covered THEN 'amount' ELSE 'currency' END"
    raw = "to_json({" + ", ".join(f"{q(c)}: s.{c}" for c in _REJECT_FIELDS) + "})::VARCHAR"
    return f"""
    CREATE OR REPLACE TEMP TABLE staged_fx AS
    WITH s AS (
        SELECT *, CAST(timezone({q(tz)}, timezone('UTC', ts)) AS DATE) AS __day,
               regexp_full_match(currency, '[A-Z]{{3}}') AND currency <> {q(fx.BASE)} AND amount_fen IS NOT NULL
               AND ts IS NOT NULL
               AS __foreign
        FROM staged
    ),
    j AS (
        SELECT s.*, r.rate AS __rate,
               r.day IS NOT NULL AND r.day >= s.__day - INTERVAL {staleness} DAY AS __covered,
               try_cast(round(s.amount_fen::DECIMAL(38, 0) * r.rate, 0) AS BIGINT) AS __cny
        FROM s ASOF LEFT JOIN fx_rates_batch r ON r.currency = s.currency AND s.__day >= r.day
    ),
    k AS (SELECT *, __foreign AND (NOT __covered OR __cny IS NULL) AS __bad FROM j)
    SELECT s.* EXCLUDE (__day, __foreign, __rate, __covered, __cny, __bad) REPLACE (
               CASE WHEN NOT s.__foreign THEN s.amount_fen WHEN NOT s.__bad THEN s.__cny END AS amount_fen,
               CASE WHEN s.__foreign THEN {q(fx.BASE)} ELSE s.currency END AS currency,
               CASE WHEN s.__bad THEN list_append(s._errors, {{'field': {field}, 'reason': {reason}}})
                    ELSE s._errors END AS _errors,
               CASE WHEN s.__bad THEN coalesce(s._raw, {raw}) ELSE s._raw END AS _raw
           ),
           s.amount_fen AS orig_amount,
           s.currency AS orig_currency,
           CASE WHEN s.__foreign AND NOT s.__bad THEN s.__rate END AS fx_rate
    FROM k s
    """


def convert_orders(con: duckdb.DuckDBPyConnection, settings: Settings | None = None) -> bool:
    """Convert the non-CNY orders of the temp relation `staged` (see the module's doc); returns
    whether `staged` changed (a batch all in CNY is left as it is, without a copy)."""
    foreign = con.execute(
        f"SELECT count(*) FROM staged WHERE currency IS NOT NULL AND currency <> {q(fx.BASE)}"
    ).fetchall()[0][0]
    if not foreign:
        return False
    settings = settings or get_settings()
    rates = fx.usable_rates(settings)
    table = pa.table(
        {
            "currency": pa.array([r.currency for r in rates], pa.string()),
            "day": pa.array([r.day for r in rates], pa.date32()),
            "rate": pa.array([str(r.cny_per_unit) for r in rates], pa.string()),
        }
    )
    con.register("fx_rates_arrow", table)
    try:
        con.execute(
            "CREATE OR REPLACE TEMP TABLE fx_rates_batch AS"
            f" SELECT currency, day, CAST(rate AS {RATE_TYPE}) AS rate FROM fx_rates_arrow"
        )
    finally:
        con.unregister("fx_rates_arrow")
    con.execute(_converting_sql(settings.timezone, settings.fx_max_staleness_days))
    kind = con.execute(
        "SELECT table_type FROM information_schema.tables WHERE table_catalog = 'temp' AND table_name = 'staged'"
    ).fetchall()[0][0]
    con.execute(f"DROP {'VIEW' if kind == 'VIEW' else 'TABLE'} staged")
    con.execute("ALTER TABLE staged_fx RENAME TO staged")
    con.execute("DROP TABLE fx_rates_batch")
    return True


def warehouse_values(con: duckdb.DuckDBPyConnection, alias: str = "t") -> str:
    """The orig_amount, orig_currency, fx_rate values of the rows of `to_load` for the warehouse."""
    converted = con.execute(
        "SELECT count(*) FROM information_schema.columns"
        " WHERE table_catalog = 'temp' AND table_name = 'to_load' AND column_name = 'fx_rate'"
    ).fetchall()[0][0]
    if converted:
        return f"{alias}.orig_amount, {alias}.orig_currency, {alias}.fx_rate"
    return f"{alias}.amount_fen, {alias}.currency, NULL"
