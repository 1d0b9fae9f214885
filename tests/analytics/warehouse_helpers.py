"""An in-memory DuckDB warehouse of given events, orders and referral edges, for the analytics tests
that check the analyses against their own plain-Python counts."""

from __future__ import annotations

import duckdb
import ibis
import pandas as pd


def backend(events: list, orders: list, edges: list) -> ibis.BaseBackend:
    ev = pd.DataFrame(
        [{"event_id": f"e{i}", "ts": t, "person_id": p, "event": n, "channel": c, "campaign_id": k,
          "referrer_person_id": None} for i, (p, t, n, c, k) in enumerate(events)],
        columns=["event_id", "ts", "person_id", "event", "channel", "campaign_id", "referrer_person_id"],
    )  # fmt: skip
    od = pd.DataFrame(
        [{"order_id": f"o{i}", "ts": t, "person_id": p, "amount_fen": a, "status": s, "channel": c, "campaign_id": k}
         for i, (p, t, a, s, c, k) in enumerate(orders)],
        columns=["order_id", "ts", "person_id", "amount_fen", "status", "channel", "campaign_id"],
    )  # fmt: skip
    ed = pd.DataFrame(
        [{"inviter_person_id": a, "invitee_person_id": b, "campaign_id": k, "channel": c, "ts": t, "event_id": f"x{i}"}
         for i, (a, b, t, c, k) in enumerate(edges) if a != b],
        columns=["inviter_person_id", "invitee_person_id", "campaign_id", "channel", "ts", "event_id"],
    )  # fmt: skip
    raw = duckdb.connect()
    for name, df, ddl in (
        ("events", ev, "event_id VARCHAR, ts TIMESTAMP, person_id BIGINT, event VARCHAR, channel VARCHAR, "
                       "campaign_id VARCHAR, referrer_person_id BIGINT"),
        ("orders", od, "order_id VARCHAR, ts TIMESTAMP, person_id BIGINT, amount_fen BIGINT, status VARCHAR, "
                       "channel VARCHAR, campaign_id VARCHAR, currency VARCHAR DEFAULT 'CNY'"),
        ("referral_edges", ed, "inviter_person_id BIGINT, invitee_person_id BIGINT, campaign_id VARCHAR, "
                               "channel VARCHAR, ts TIMESTAMP, event_id VARCHAR"),
    ):  # fmt: skip
        raw.execute(f"CREATE TABLE {name} ({ddl})")
        if len(df):
            raw.register("incoming", df)
            raw.execute(f"INSERT INTO {name} BY NAME SELECT * FROM incoming")
            raw.unregister("incoming")
    return ibis.duckdb.from_connection(raw)
