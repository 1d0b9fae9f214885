"""Accept-invite and report-conversion under load, beside a minimal FastAPI endpoint.

The server is the real app (`uvicorn liebian.web.asgi:app`, SQLite store in a temporary data dir,
all routers and inline risk checks loaded); the load comes from a second process on loopback: an
asyncio httpx generator keeping 50 requests in flight (closed loop). The minimal endpoint is a
FastAPI app with one JSON POST route, served by the same uvicorn settings, measured in the same run.

`python -m benchmarks referral [--scale small|full]`; the load generator alone:
`python -m benchmarks.bench_referral load URL PATH BODIES.jsonl CONNECTIONS`.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from fastapi import FastAPI

from benchmarks.common import Report

CONNECTIONS = 50
RATE = 20  # req/s of the open-loop latency phase
SCALES = {"": 600, "small": 600, "full": 3000}

minimal_app = FastAPI()


@minimal_app.post("/ping")
def ping(body: dict) -> dict:
    """The baseline: parse a JSON body, answer JSON (a sync route like the campaign routes)."""
    return {"ok": True, "n": len(body)}


# ---------------------------------------------------------------- the load generator (2nd process)


async def _load(url: str, path: str, bodies: list[dict], connections: int, rate: float = 0) -> dict:
    """Closed loop (rate 0: `connections` requests always in flight) or open loop at `rate` req/s."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    queue = iter(bodies)
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)

    headers = (
        {"Authorization": f"Bearer {os.environ['BENCH_API_KEY']}"} if "BENCH_API_KEY" in os.environ else {}
    )
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60, headers=headers) as client:

        async def one(body: dict) -> None:
            start = time.perf_counter()
            r = await client.post(path, json=body)
            latencies.append(time.perf_counter() - start)
            statuses[r.status_code] = statuses.get(r.status_code, 0) + 1

        async def worker() -> None:
            for body in queue:
                await one(body)

        began = time.perf_counter()
        if rate:
            tasks = []
            for i, body in enumerate(bodies):
                await asyncio.sleep(max(0.0, began + i / rate - time.perf_counter()))
                tasks.append(asyncio.create_task(one(body)))
            await asyncio.gather(*tasks)
        else:
            await asyncio.gather(*(worker() for _ in range(connections)))
        elapsed = time.perf_counter() - began
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000

    return {
        "requests": len(latencies),
        "elapsed_s": elapsed,
        "rps": len(latencies) / elapsed,
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
        "statuses": statuses,
    }


def _run_load(url: str, path: str, bodies: list[dict], workdir: Path, rate: float = 0) -> dict:
    file = workdir / f"bodies{time.monotonic_ns()}.jsonl"
    file.write_text("\n".join(json.dumps(b) for b in bodies), encoding="utf-8")
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.bench_referral",
            "load",
            url,
            path,
            str(file),
            str(CONNECTIONS),
            str(rate),
        ],
        capture_output=True,
        text=True,
    )
    if out.returncode:
        raise RuntimeError(f"the load generator failed: {out.stderr[-3000:]}")
    return json.loads(out.stdout)


# ---------------------------------------------------------------- servers


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _serve(app: str, env: dict) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            app,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            httpx.get(url + "/docs", timeout=1)
            return proc, url
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"{app} did not start")


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()


def run(scale: str) -> Report:
    n = SCALES.get(scale, SCALES[""])
    load_before = os.getloadavg()[0]
    workdir = Path(tempfile.mkdtemp(prefix="bench-referral-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIEBIAN_")}
    env["LIEBIAN_DATA_DIR"] = str(workdir / "data")
    env["PYTHONPATH"] = os.pathsep.join(
        [str(Path(__file__).resolve().parent.parent), env.get("PYTHONPATH", "")]
    )

    report = Report(
        title="Referral loop: accept-invite and report-conversion (HTTP, 50 connections)",
        scale=scale,
        columns=["endpoint", "requests", "req/s", "vs minimal", "p50 ms", "p99 ms", "statuses"],
    )
    minimal, murl = _serve("benchmarks.bench_referral:minimal_app", env)
    try:
        _run_load(murl, "/ping", [{"i": i} for i in range(200)], workdir)  # warm-up
        base = _run_load(murl, "/ping", [{"i": i} for i in range(n * 2)], workdir)
    finally:
        _stop(minimal)

    # an operator key for the whole run (the endpoints are authenticated; a service key is not
    # rate-limited the way the public front-end key is)
    created = subprocess.run(
        [sys.executable, "-m", "liebian.cli", "auth", "create-key", "--name", "bench", "--role", "admin",
         "--format", "json"],
        env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    env["BENCH_API_KEY"] = os.environ["BENCH_API_KEY"] = json.loads(created.stdout)["key"]
    server, url = _serve("liebian.web.asgi:app", env)
    try:
        with httpx.Client(
            base_url=url, timeout=60, headers={"Authorization": f"Bearer {env['BENCH_API_KEY']}"}
        ) as c:
            rules = {
                "type": "double_sided",
                "title": "压测活动",
                "rules_text": "每邀请一位新朋友完成首单，双方各得奖励。",
                "per_inviter_cap": 1_000_000,
                "hold_days": 7,
                "qualifying_event": {"kind": "first_order"},
                "inviter_reward": {"code": "INV", "value_fen": 1000},
                "friend_reward": {"code": "NEW", "value_fen": 500},
                "risk_policy": {"hold_at": 1_000_000, "block_at": 1_000_000},
            }
            assert c.post("/api/v1/campaigns", json={"id": "bench", "rules": rules}).status_code == 201
            assert c.post("/api/v1/campaigns/bench/launch").status_code == 200
            # many inviters, as in a real campaign (one inviter per 5 friends)
            codes = [
                c.post(
                    "/api/v1/campaigns/bench/invites", json={"id_type": "unionid", "id": f"inviter{i}"}
                ).json()["code"]
                for i in range(max(1, (n + 100) // 5))
            ]
        warm = [{"code": codes[i % len(codes)], "id_type": "unionid", "id": f"warm{i}"} for i in range(100)]
        _run_load(url, "/api/v1/invites/accept", warm, workdir)
        accepts = [
            {"code": codes[i % len(codes)], "id_type": "unionid", "id": f"friend{i}"} for i in range(n)
        ]
        acc = _run_load(url, "/api/v1/invites/accept", accepts, workdir)
        orders = [
            {"id_type": "unionid", "id": f"friend{i}", "order_id": f"order{i}", "amount_fen": 9900}
            for i in range(n)
        ]
        conv = _run_load(url, "/api/v1/campaigns/bench/conversions", orders, workdir)
        # Latency when the server is not saturated: open loop at RATE req/s, up to 50 in flight.
        k = RATE * 10
        extra = [{"code": codes[i % len(codes)], "id_type": "unionid", "id": f"late{i}"} for i in range(k)]
        acc_open = _run_load(url, "/api/v1/invites/accept", extra, workdir, rate=RATE)
        late_orders = [
            {"id_type": "unionid", "id": f"late{i}", "order_id": f"late{i}", "amount_fen": 9900}
            for i in range(k)
        ]
        conv_open = _run_load(url, "/api/v1/campaigns/bench/conversions", late_orders, workdir, rate=RATE)
    finally:
        _stop(server)
    load_after = os.getloadavg()[0]

    for name, m in (
        ("minimal FastAPI POST", base),
        ("accept invite", acc),
        ("report conversion", conv),
        (f"accept invite, open loop {RATE}/s", acc_open),
        (f"report conversion, open loop {RATE}/s", conv_open),
    ):
        report.add(
            name,
            m["requests"],
            m["rps"],
            "—" if "open loop" in name else f"{m['rps'] / base['rps']:.0%}",
            m["p50_ms"],
            m["p99_ms"],
            ", ".join(f"{k}: {v}" for k, v in sorted(m["statuses"].items())),
        )
    ok_acc = acc["rps"] >= 0.5 * base["rps"] and acc["p99_ms"] <= 50
    ok_conv = conv["rps"] >= 0.5 * base["rps"] and conv["p99_ms"] <= 50
    report.notes.append(
        "Target (≥ 50% of the minimal endpoint's throughput, p99 ≤ 50 ms): "
        f"accept {'met' if ok_acc else 'NOT met'}, conversion {'met' if ok_conv else 'NOT met'}. "
        "One uvicorn worker each, SQLite store; each conversion here grants two rewards (double-sided) "
        "through the hash-chained ledger; warehouse events are queued and flushed in the background. "
        "Closed loop: latency ≈ 50 / throughput; the open-loop rows show the latency of one request "
        f"when the server is not saturated. Load average of the (shared, 2-core) machine: "
        f"{load_before:.1f} before, {load_after:.1f} after the run."
    )
    return report


if __name__ == "__main__" and len(sys.argv) > 1 and sys.argv[1] == "load":
    _url, _path, _file, _conns, _rate = sys.argv[2:7]
    _bodies = [json.loads(line) for line in Path(_file).read_text(encoding="utf-8").splitlines() if line]
    print(json.dumps(asyncio.run(_load(_url, _path, _bodies, int(_conns), float(_rate)))))
