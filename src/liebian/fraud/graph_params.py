"""The graph scan's thresholds (one place, read by graph.py and graph_patterns.py)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class GraphParams:
    max_share: int = 200  # identifiers shared by more persons are infrastructure, not evidence
    ipua_min_events: int = 2  # events a person needs on one IP+UA before it links them
    crowded_device: int = 5  # persons on one device before it counts as crowded
    farm_min_invitees: int = 5  # invitees of one inviter inside one identifier component
    farm_device_ratio: float = 3.0  # invitees per distinct device that make a farm
    burst_minutes: int = 120  # a farm's sign-ups fall inside this span …
    burst_share: float = 0.8  # … for at least this share of its invitees
    dud_share: float = 0.8  # share of invitees that did nothing after a minimal first order
    star_min_invitees: int = 8  # a handful of churned friends is ordinary; a star has many
    star_churn_share: float = 0.8
    churn_min_age_days: float = 2.0  # referrals younger than this are not judged for churn
    chain_gap_minutes: int = 90  # each link of a chain invites the next within this …
    chain_min_edges: int = 6  # … for at least this many referrals in a thin path
    cluster_min_invitees: int = 5  # invitees on one address+UA for a cross-inviter cluster …
    cluster_min_direct: int = 4  # … or on one device / payment account …
    cluster_min_inviters: int = 3  # … brought by at least this many different inviters …
    cluster_burst_hours: float = 24.0  # … signing up within this span (central burst_share)
    anomaly_min_invitees: int = 3
    anomaly_seed: int = 7
    flag_threshold: float = 50.0  # score from which a person/referral is reported as flagged
