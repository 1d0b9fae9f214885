"""The HTTP collector (`POST /api/v1/events/batch`) under load: events per second, batch latency.

The server is the real app (`uvicorn liebian.web.asgi:app`, one worker, SQLite store and DuckDB
warehouse in a temporary data directory, authentication on with an operator key); the load comes
from a second process on loopback (asyncio + httpx) that keeps `connections` batches in flight.
Each batch holds `size` new events (unique ids) of users drawn from a pool, one in ten of them new
to OneID, so every batch registers identities too. A final batch is sent again to show that
duplicates are answered without loading anything.

Scales: "small" (smoke), "" / "full". The load generator alone:
`python -m benchmarks.bench_collector load URL KEY BATCHES SIZE CONNECTIONS OFFSET`.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import Report, cpu_seconds, peak_rss_of_mib, serve, stop

# (batch size, connections, batches): the batch sizes a front end and a server-side forwarder send
SCALES = {
    "small": [(100, 1, 10), (1000, 2, 4)],
    "": [(100, 1, 60), (100, 4, 60), (1000, 1, 12), (1000, 4, 16)],
}
SCALES["full"] = SCALES[""]
PATH = "/api/v1/events/batch"
EVENTS = ["page_view", "exposure", "join_campaign", "invite_share", "app_open"]
CHANNELS = ["小程序", "wecom", "抖音", "app"]


def batch(first: int, size: int, rng: random.Random) -> dict:
    """`size` events with ids first … first + size - 1; users mostly known, one in ten new."""
    items = []
    for i in range(first, first + size):
        user = f"u{rng.randrange(20_000)}" if rng.random() < 0.9 else f"n{i}"
        items.append(
            {
                "event_id": f"c{i}",
                "ts": f"2026-11-{1 + i % 28:02d} {i % 24:02d}:{i % 60:02d}:00",
                "user_id": user,
                "id_type": "openid",
                "event": EVENTS[i % len(EVENTS)],
                "channel": CHANNELS[i % len(CHANNELS)],
                "campaign_id": "c1" if i % 3 else None,
                "ip": f"10.0.{i % 250}.{i % 200}",
            }
        )
    return {"items": items}


# ---------------------------------------------------------------- the load generator (2nd process)


async def _load(url: str, key: str, batches: int, size: int, connections: int, offset: int) -> dict:
    import httpx

    rng = random.Random(offset)
    bodies = [json.dumps(batch(offset + b * size, size, rng)).encode() for b in range(batches)]
    latencies: list[float] = []
    accepted = duplicate = rejected = 0
    statuses: dict[int, int] = {}
    queue = iter(bodies)
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=300, limits=limits) as client:

        async def worker() -> None:
            nonlocal accepted, duplicate, rejected
            for body in queue:
                start = time.perf_counter()
                r = await client.post(PATH, content=body)
                latencies.append(time.perf_counter() - start)
                statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
                if r.status_code == 200:
                    out = r.json()
                    accepted += out["accepted"]
                    duplicate += out["duplicate"]
                    rejected += out["rejected"]

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(connections)))
        elapsed = time.perf_counter() - began
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000

    return {
        "batches": len(latencies),
        "events": batches * size,
        "elapsed_s": elapsed,
        "events_per_s": accepted / elapsed,
        "p50_ms": pct(0.5),
        "p99_ms": pct(0.99),
        "accepted": accepted,
        "duplicate": duplicate,
        "rejected": rejected,
        "statuses": statuses,
    }


def _run_load(url: str, key: str, batches: int, size: int, connections: int, offset: int) -> dict:
    root = Path(__file__).resolve().parent.parent
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")]))
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench_collector", "load", url, key, str(batches), str(size),
         str(connections), str(offset)],
        capture_output=True, text=True, env=env, cwd=root,
    )  # fmt: skip
    if out.returncode:
        raise RuntimeError(f"the load generator failed: {out.stderr[-3000:]}")
    return json.loads(out.stdout)


def run(scale: str = "") -> Report:
    if scale not in SCALES:
        raise SystemExit(f"unknown scale {scale!r}; use one of {', '.join(s for s in SCALES if s)}")
    load_before = os.getloadavg()[0]
    workdir = Path(tempfile.mkdtemp(prefix="bench-collector-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIEBIAN_")}
    env["LIEBIAN_DATA_DIR"] = str(workdir / "data")
    env["LIEBIAN_SCHEDULER_ENABLED"] = "0"  # no background jobs competing for the warehouse
    created = subprocess.run(
        [sys.executable, "-m", "liebian.cli", "auth", "create-key", "--name", "bench", "--role", "admin",
         "--format", "json"],
        env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    key = json.loads(created.stdout)["key"]
    report = Report(
        title="HTTP collector: event batches over loopback (one uvicorn worker)",
        scale=scale,
        columns=["batch size", "connections", "batches", "events/s", "p50 ms per batch", "p99 ms per batch",
                 "server CPU ms per 1k events", "accepted", "duplicate", "statuses"],
    )  # fmt: skip
    server, url = serve("liebian.web.asgi:app", env)
    offset = 0
    try:
        _run_load(url, key, 3, 100, 1, 10**9)  # warm-up: imports, first connection, schema
        for size, connections, batches in SCALES[scale]:
            cpu = cpu_seconds(server.pid)
            m = _run_load(url, key, batches, size, connections, offset)
            cpu = cpu_seconds(server.pid) - cpu
            offset += batches * size
            report.add(
                size, connections, m["batches"], m["events_per_s"], m["p50_ms"], m["p99_ms"],
                cpu * 1000 / max(1, m["events"]) * 1000, m["accepted"], m["duplicate"],
                ", ".join(f"{k}: {v}" for k, v in sorted(m["statuses"].items())),
            )  # fmt: skip
        size, connections, batches = SCALES[scale][-1]
        again = _run_load(url, key, 1, size, 1, offset - size * batches)  # the last run's first batch
        report.add(
            size, 1, 1, again["events"] / again["elapsed_s"], again["p50_ms"], again["p99_ms"], "",
            again["accepted"], again["duplicate"], "re-sent batch: every event a duplicate",
        )  # fmt: skip
        peak = peak_rss_of_mib(server.pid)
    finally:
        stop(server)
    report.notes.append(
        "events/s counts accepted events over the wall time of the run; p50/p99 are per batch (each batch "
        "is validated, normalised, deduplicated, its new users registered with OneID and committed to the "
        "warehouse before the answer: durable on reply). The warehouse takes one writer at a time, so "
        "several connections overlap HTTP and JSON work with one batch's load, not two loads. "
        f"Server peak RSS {peak:,.0f} MiB. Load average of the shared 2-core machine: {load_before:.1f} "
        f"before, {os.getloadavg()[0]:.1f} after."
    )
    return report


if __name__ == "__main__" and len(sys.argv) > 1 and sys.argv[1] == "load":
    _url, _key, _batches, _size, _conns, _offset = sys.argv[2:8]
    print(json.dumps(asyncio.run(_load(_url, _key, int(_batches), int(_size), int(_conns), int(_offset)))))
