"""Options with expected effects, for an alert or a report finding.

Each option is a change to a campaign (raise the reward, shorten the claim window, cap invites per
inviter, pause). Its expected effect is the growth simulation (`predict.simulate`) run twice with the
same seed — the campaign's current parameters and the option's change — over HORIZON_DAYS: the effect
is the mean difference of acquired users and of their cost, the range the 10th–90th percentile of the
per-run difference (paired runs: the same random stream, so the range is the option's, not noise's).
Where a recorded A/B readout (`predict.results.experiment_readouts`) tested a comparable change, its
measured relative lift replaces the assumed one, and the evidence says so. Growth findings also get
"move budget to the best channel" (`decisions/channels.py`: per-channel referred users per yuan of
reward cost from the warehouse, a bootstrap over days for the range) in place of pausing, when at
least two channels have the results to compare.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from liebian.campaigns import service as campaigns
from liebian.campaigns.common import CampaignError
from liebian.db.session import session_scope
from liebian.decisions import channels
from liebian.lazy import lazy_import
from liebian.monitor import service as monitor
from liebian.predict import results as predict_results
from liebian.predict import service as predict
from liebian.predict.common import PredictError
from liebian.predict.simulate import GrowthParams, simulate

if TYPE_CHECKING:
    import numpy as np
else:  # deferred for start-up time: imported on first use (liebian/lazy.py)
    np = lazy_import("numpy")

HORIZON_DAYS = 28  # the effect is counted over four weeks of referral cycles
RUNS = 400
SEED = 20261206
REWARD_STEP_FEN = 500  # "raise the invitee reward by ¥5"
ASSUMED_REWARD_LIFT = 0.10  # relative participation lift per ¥5 when no A/B readout measured one
WINDOW_FACTOR = 0.8  # a claim window 20% shorter: invitees act sooner (cycle 20% shorter)
INVITE_CAP = 10  # per-inviter cap proposed against farming
DEFAULT_K = 2.0  # new users per participant when the campaign has no referrals yet
DEFAULT_COST_FEN = 500

# finding (alert metric or report rule) → the options offered for it
GROWTH = ("raise_invitee_reward", "shorten_window", "pause_campaign")
OPTIONS_FOR: dict[str, tuple[str, ...]] = {
    "participation_rate": GROWTH,
    "fission_rate": GROWTH,
    "k_factor<1": GROWTH,
    "funnel_drop": GROWTH,
    "target_behind": GROWTH,
    "fraud_rate": ("cap_per_inviter", "pause_campaign"),
    "urgent_alerts": ("pause_campaign", "raise_invitee_reward"),
}
DEFAULT_OPTIONS = ("raise_invitee_reward", "pause_campaign")

TEXTS: dict[str, tuple[str, str]] = {
    "raise_invitee_reward": ("每档奖励提高 ¥5", "Raise every tier's reward by ¥5"),
    "shorten_window": ("领奖窗口缩短 20%", "Shorten the claim window by 20%"),
    "cap_per_inviter": (
        f"每位邀请人最多计 {INVITE_CAP} 位好友",
        f"Cap counted friends at {INVITE_CAP} per inviter",
    ),
    "pause_campaign": ("暂停活动", "Pause the campaign"),
    channels.OPTION: (
        f"把最差渠道 {channels.MOVE_SHARE:.0%} 的奖励预算移到最佳渠道",
        f"Move {channels.MOVE_SHARE:.0%} of the worst channel's reward budget to the best channel",
    ),
}


@dataclass(frozen=True)
class Baseline:
    """The campaign's current growth parameters and where each came from."""

    params: GrowthParams
    campaign_id: str | None
    sources: dict[str, str]


def _cycles(cycle_days: float) -> int:
    return max(1, min(200, round(HORIZON_DAYS / cycle_days)))


def _tier_cost(session: Session, campaign_id: str | None) -> tuple[int, str]:
    if campaign_id:
        try:
            tiers = campaigns.get_campaign(session, campaign_id)["rules"].get("tiers") or []
        except CampaignError:
            tiers = []
        if tiers:
            return int(tiers[0]["reward"]["value_fen"]), f"campaign {campaign_id} tier 1 reward"
    return DEFAULT_COST_FEN, "default"


def baseline(
    session: Session,
    campaign_id: str | None,
    *,
    reached: int = 0,
    participation: float | None = None,
    k: float | None = None,
    cycle_days: float | None = None,
) -> Baseline:
    """Parameters from the warehouse calibration of the campaign, else from the given numbers."""
    sources: dict[str, str] = {}
    if campaign_id:
        try:
            cal = predict.calibrate_growth(campaign_id)
            reached, participation = cal["reached"], cal["participation"]
            k = cal["k_per_participant"] or None
            cycle_days = cal["cycle_days"] or None
            sources.update(reached="calibration", participation="calibration")
            if k:
                sources["k_per_participant"] = "calibration"
        except PredictError:
            pass
    sources.setdefault("participation", "finding" if participation is not None else "default")
    sources.setdefault("k_per_participant", "finding" if k else "default")
    sources["cycle_days"] = "calibration" if cycle_days else "default"
    cost, sources["cost_per_user_fen"] = _tier_cost(session, campaign_id)
    cycle = max(1.0, cycle_days or 7.0)  # at least a day: the horizon holds at most 28 cycles
    params = GrowthParams(
        seed_users=max(1, int(reached)),
        k_per_participant=k or DEFAULT_K,
        participation=min(1.0, max(0.0, participation if participation is not None else 0.3)),
        cycle_days=cycle,
        cost_per_user_fen=cost,
        cycles=_cycles(cycle),
    )
    return Baseline(params, campaign_id, sources)


def measured_reward_lift() -> tuple[float, str]:
    """The newest final A/B readout of a reward change (name mentions reward/奖励), else the assumption."""
    for entry in predict_results.experiment_readouts():
        name = str(entry["params"].get("name", "")).lower()
        m = entry["metrics"]
        if (
            ("reward" in name or "奖励" in name)
            and m.get("status") == "final"
            and m.get("relative_lift") is not None
        ):
            return float(m["relative_lift"]), f"experiment {entry['id']} ({entry['params']['name']})"
    return ASSUMED_REWARD_LIFT, "assumption"


def changed_params(option: str, p: GrowthParams, reward_lift: float) -> GrowthParams | None:
    """The simulation parameters after the option (None: the campaign stops, nobody is acquired)."""
    if option == "raise_invitee_reward":
        return replace(p, participation=min(1.0, p.participation * (1 + reward_lift)),
                       cost_per_user_fen=p.cost_per_user_fen + REWARD_STEP_FEN)  # fmt: skip
    if option == "shorten_window":
        cycle = p.cycle_days * WINDOW_FACTOR
        return replace(p, cycle_days=cycle, cycles=_cycles(cycle))
    if option == "cap_per_inviter":
        return replace(p, k_per_participant=min(p.k_per_participant, float(INVITE_CAP)))
    if option == "pause_campaign":
        return None
    raise ValueError(option)


def acquired(p: GrowthParams, runs: int = RUNS, seed: int = SEED) -> np.ndarray:
    """Users acquired over the horizon in each simulated run."""
    return simulate(p, runs, seed)[:, 1:].sum(axis=1)


def effect(base: GrowthParams, changed: GrowthParams | None) -> dict[str, Any]:
    """Mean and 10–90 % range of the paired difference in acquired users and in their cost (None,
    with the reason, when the projection outgrows what the simulation holds)."""
    try:
        before = acquired(base)
        after = acquired(changed) if changed is not None else np.zeros_like(before)
    except PredictError as exc:
        return {"horizon_days": HORIZON_DAYS, "baseline_users": None, "users": None, "users_range": [None, None],
                "cost_fen": None, "cost_range_fen": [None, None], "runs": RUNS, "seed": SEED, "error": str(exc)}  # fmt: skip
    d_users = after - before
    cost_after = changed.cost_per_user_fen if changed is not None else 0
    d_cost = after * cost_after - before * base.cost_per_user_fen
    return {
        "horizon_days": HORIZON_DAYS,
        "baseline_users": float(before.mean()),
        "users": float(d_users.mean()),
        "users_range": [float(np.percentile(d_users, 10)), float(np.percentile(d_users, 90))],
        "cost_fen": float(d_cost.mean()),
        "cost_range_fen": [float(np.percentile(d_cost, 10)), float(np.percentile(d_cost, 90))],
        "runs": RUNS,
        "seed": SEED,
    }


def _channel_option(
    code: str, base: Baseline, evidence: dict[str, Any], move: dict[str, Any]
) -> dict[str, Any]:
    zh, en = TEXTS[code]
    ev = {**evidence, "params_from": base.sources, "from_channel": move["from_channel"], "to_channel": move["to_channel"],
          "moved_fen": move["moved_fen"], "window_days": move["window_days"], "channels": move["channels"]}  # fmt: skip
    return {"option": code, "title_zh": zh, "title_en": en, "campaign_id": base.campaign_id,
            "proposable": bool(base.campaign_id), "params": asdict(base.params) | {"start": None},
            "changed_params": None, "expected": move["expected"], "evidence": ev}  # fmt: skip


def build_options(finding: str, base: Baseline, evidence: dict[str, Any]) -> list[dict[str, Any]]:
    """Two or three options for one finding, each with its expected effect and the evidence."""
    lift, lift_source = measured_reward_lift()
    codes = OPTIONS_FOR.get(finding, DEFAULT_OPTIONS)
    move = channels.channel_option(base.campaign_id, HORIZON_DAYS) if codes == GROWTH else None
    if move is not None:  # a budget move between channels rather than a pause
        codes = (*codes[:2], channels.OPTION)
    out = []
    for code in codes:
        if code == channels.OPTION and move is not None:
            out.append(_channel_option(code, base, evidence, move))
            continue
        changed = changed_params(code, base.params, lift)
        zh, en = TEXTS[code]
        ev = {**evidence, "params_from": base.sources}
        if code == "raise_invitee_reward":
            ev["reward_lift"], ev["reward_lift_from"] = lift, lift_source
        out.append({
            "option": code, "title_zh": zh, "title_en": en, "campaign_id": base.campaign_id,
            "proposable": bool(base.campaign_id) and code in RULE_CHANGES,
            "params": asdict(base.params) | {"start": None},
            "changed_params": (asdict(changed) | {"start": None}) if changed else None,
            "expected": effect(base.params, changed), "evidence": ev,
        })  # fmt: skip
    return out


def for_alert(session: Session, alert_id: int) -> dict[str, Any]:
    """Options for one monitoring alert (threshold or anomaly)."""
    alert = monitor.get_alert(session, alert_id)
    cid = alert["scope"].get("campaign_id")
    rate = alert["observed"] if alert["metric"] == "participation_rate" else None
    base = baseline(session, cid, participation=rate)
    evidence = {"metric": alert["metric"], "observed": alert["observed"], "threshold": alert["threshold"],
                "expected_value": alert["expected"], "period": alert["period"], "scope": alert["scope"]}  # fmt: skip
    return {
        "alert_id": alert_id,
        "finding": alert["metric"],
        "options": build_options(alert["metric"], base, evidence),
    }


def for_report(session: Session, report: dict[str, Any]) -> list[dict[str, Any]]:
    """Options for each finding of a built report (reports.service.build_report's `recommendations`)."""
    k = report.get("kpis") or {}
    participants = k.get("participants") or 0
    referred = (k.get("new_users") or 0) * (k.get("referred_share_of_new") or 0)
    kpi_base = baseline(
        session, None, reached=int(k.get("reached") or 0), participation=k.get("participation_rate"),
        k=(referred / participants) if participants else None,
    )  # fmt: skip
    fraud_by_campaign = {r["campaign_id"]: r for r in report.get("fraud") or []}
    out = []
    for rec in report.get("recommendations") or []:
        rule = rec["rule"]
        base = kpi_base
        evidence: dict[str, Any] = {"rule": rule, "kpis": {n: k.get(n) for n in KPI_EVIDENCE}}
        if rule == "fraud_rate":
            worst = max(fraud_by_campaign.values(), key=lambda r: r["fraud_rate"], default=None)
            if worst:
                base = baseline(session, worst["campaign_id"], reached=kpi_base.params.seed_users,
                                participation=kpi_base.params.participation, k=kpi_base.params.k_per_participant)  # fmt: skip
                evidence["fraud_rate"] = worst["fraud_rate"]
        out.append({"finding": rule, "recommendation": rec["recommendation"],
                    "options": build_options(rule, base, evidence)})  # fmt: skip
    return out


def report_options(report: dict[str, Any]) -> list[dict[str, Any]]:
    """`for_report` in its own session (the report builder's hook)."""
    with session_scope() as s:
        return for_report(s, report)


def option_rows(findings: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One flat row per option (the report's spreadsheet sheet)."""
    return [
        {"finding": f["finding"], "option": o["option"], "title_zh": o["title_zh"], "title_en": o["title_en"],
         "campaign_id": o["campaign_id"], "horizon_days": o["expected"]["horizon_days"],
         "users": o["expected"]["users"], "users_p10": o["expected"]["users_range"][0],
         "users_p90": o["expected"]["users_range"][1], "cost_fen": o["expected"]["cost_fen"],
         "evidence": o["evidence"]}
        for f in findings for o in f["options"]
    ]  # fmt: skip


KPI_EVIDENCE = (
    "reached",
    "participants",
    "participation_rate",
    "k_factor",
    "new_users",
    "referred_share_of_new",
)


# ------------------------------------------------------------------ the rules change of an option


def _raise_reward(rules: dict[str, Any]) -> dict[str, Any]:
    for tier in rules.get("tiers") or []:
        tier["reward"]["value_fen"] = int(tier["reward"]["value_fen"]) + REWARD_STEP_FEN
    return rules


def _shorten_window(rules: dict[str, Any]) -> dict[str, Any]:
    rules["claim_window_days"] = max(1.0, round(float(rules.get("claim_window_days", 7)) * WINDOW_FACTOR, 2))
    return rules


def _cap(rules: dict[str, Any]) -> dict[str, Any]:
    rules["per_inviter_cap"] = min(INVITE_CAP, rules.get("per_inviter_cap") or INVITE_CAP)
    return rules


RULE_CHANGES: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "raise_invitee_reward": _raise_reward,
    "shorten_window": _shorten_window,
    "cap_per_inviter": _cap,
    # Rules hold no per-channel budget: the approved version records the move (from, to, amount in
    # the proposal's `expected`, the version's note) for review; the rules stay as they are.
    channels.OPTION: lambda rules: rules,
}
