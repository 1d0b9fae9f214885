"""Precision, recall and F1 of the last graph scan against a labelled ground-truth file.

Two shapes are read (identifiers are mapped to persons through the warehouse's identity map, so the
truth survives OneID merges):

- the harness's `liebian-fraud-truth/1` (fraud/scenarios.py, or a brand's own labelling):
  `referrals` [{inviter: {id_type, id}, invitee: {id_type, id}, campaign_id, pattern}],
  `persons` [{id_type, id, pattern}] and `decoys` [{id_type, id, kind, role}]; either list may be
  absent (a file of persons only, or of referrals only);
- the demo brand's `ground_truth.json` (`fraud.invitees`, `lookalikes`).

Referrals are keyed by (invitee person, campaign); persons by person. Per pattern, recall counts
that pattern's truth flagged for any reason, precision the flagged items whose strongest reason
belongs to the pattern that are fraud of any pattern (overlapping patterns are still fraud).
A decoy is flagged when its person scores at or above the threshold.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from liebian.errors import DomainError
from liebian.fraud import graph
from liebian.identity.keys import IdentifierError, stored_value
from liebian.lazy import lazy_import

if TYPE_CHECKING:
    import duckdb
    import pandas as pd
else:  # deferred for start-up time: imported on first use (liebian/lazy.py)
    pd = lazy_import("pandas")

THRESHOLD = 50.0
PATTERN_ALIASES = {"star_inviter": "star_churn", "circular_referral": "circular"}  # the demo's names → ours


class TruthError(DomainError):
    """A ground-truth file that cannot be read: names the entry and what is wrong with it."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__("invalid", message, 422, field=field)


def load_truth(source: dict[str, Any] | Path | str) -> dict[str, Any]:
    """The truth document from a path or an already parsed object."""
    if isinstance(source, dict):
        return source
    try:
        doc = json.loads(Path(source).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise TruthError(f"{source}: not a readable JSON file ({exc})", "ground_truth") from exc
    if not isinstance(doc, dict):
        raise TruthError(f"{source}: expected a JSON object", "ground_truth")
    return doc


def _ident(entry: Any, where: str) -> tuple[str, str]:
    if not isinstance(entry, dict) or "id_type" not in entry or "id" not in entry:
        raise TruthError(f"{where}: needs id_type and id", where)
    try:
        return str(entry["id_type"]), stored_value(str(entry["id_type"]), str(entry["id"]))
    except IdentifierError as exc:
        raise TruthError(f"{where}: {exc}", where) from exc


def _pattern(entry: dict[str, Any], where: str) -> str:
    raw = entry.get("pattern")
    if not isinstance(raw, str) or not raw:
        raise TruthError(f"{where}: needs a pattern", where)
    return PATTERN_ALIASES.get(raw, raw)


def normalise(doc: dict[str, Any]) -> dict[str, list[tuple[Any, ...]]]:
    """Referrals (type, value, campaign, pattern), persons (type, value, pattern) and decoys
    (type, value, kind, role) with stored identifier values, from either truth shape."""
    if isinstance(doc.get("fraud"), dict):  # the demo brand's file
        return _normalise_demo(doc)
    referrals, persons, decoys = doc.get("referrals", []), doc.get("persons", []), doc.get("decoys", [])
    if not any(isinstance(x, list) and x for x in (referrals, persons)):
        raise TruthError("ground truth: no referrals or persons list", "referrals")
    out: dict[str, list[tuple[Any, ...]]] = {"referrals": [], "persons": [], "decoys": []}
    for i, r in enumerate(referrals):
        where = f"referrals[{i}]"
        if not isinstance(r, dict):
            raise TruthError(f"{where}: expected an object", where)
        out["referrals"].append(
            (*_ident(r.get("invitee"), f"{where}.invitee"), r.get("campaign_id"), _pattern(r, where))
        )
    for i, p in enumerate(persons):
        out["persons"].append((*_ident(p, f"persons[{i}]"), _pattern(p, f"persons[{i}]")))
    for i, d in enumerate(decoys):
        out["decoys"].append(
            (*_ident(d, f"decoys[{i}]"), str(d.get("kind", "")), str(d.get("role", "member")))
        )
    return out


def _normalise_demo(doc: dict[str, Any]) -> dict[str, list[tuple[Any, ...]]]:
    rows = doc["fraud"].get("invitees")
    if not isinstance(rows, list):
        raise TruthError("ground truth: no fraud.invitees list", "fraud.invitees")
    out: dict[str, list[tuple[Any, ...]]] = {"referrals": [], "persons": [], "decoys": []}
    for i, r in enumerate(rows):
        where = f"fraud.invitees[{i}]"
        out["referrals"].append((*_ident(r, where), r.get("campaign_id"), _pattern(r, where)))
    look = doc.get("lookalikes", {})
    for group in look.get("office_shared_ip", []):
        out["decoys"].append((*_ident(group["inviter"], "lookalikes"), "office", "inviter"))
        out["decoys"].extend((*_ident(m, "lookalikes"), "office", "member") for m in group["members"])
    for group in look.get("family_shared_device", []):
        out["decoys"].extend((*_ident(m, "lookalikes"), "family", "member") for m in group["members"])
    return out


def _to_persons(
    con: duckdb.DuckDBPyConnection, rows: list[tuple[Any, ...]], columns: list[str]
) -> pd.DataFrame:
    """The rows with a person_id column (NULL when the identifier is not in the warehouse)."""
    frame = pd.DataFrame(rows, columns=columns)
    con.register("fr_truth_df", frame)
    mapped = con.execute(
        "SELECT t.*, m.person_id FROM fr_truth_df t LEFT JOIN identity_map m ON m.id_type = t.t AND m.id_value = t.v"
    ).df()
    con.unregister("fr_truth_df")
    return mapped


def _prf(tp_recall: int, truth: int, tp_precision: int, claimed: int) -> dict[str, Any]:
    p = tp_precision / claimed if claimed else 0.0
    r = tp_recall / truth if truth else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return {"truth": truth, "claimed": claimed, "tp": tp_recall, "fp": claimed - tp_precision,
            "fn": truth - tp_recall, "precision": round(p, 4), "recall": round(r, 4), "f1": round(f, 4)}  # fmt: skip


def _score(truth: dict[Any, str], flagged: dict[Any, str]) -> dict[str, Any]:
    """Per pattern and overall, for one unit (referral keys or person ids)."""
    out: dict[str, Any] = {}
    for pat in sorted(set(truth.values())):
        keys = {k for k, v in truth.items() if v == pat}
        claimed = {k for k, v in flagged.items() if v == pat}
        out[pat] = _prf(len(keys & flagged.keys()), len(keys), len(claimed & truth.keys()), len(claimed))
    tp = len(truth.keys() & flagged.keys())
    out["overall"] = _prf(tp, len(truth), tp, len(flagged))
    return out


def evaluate(
    con: duckdb.DuckDBPyConnection, ground_truth: dict[str, Any] | Path | str, threshold: float = THRESHOLD
) -> dict[str, Any]:
    """Score the last scan's tables against the truth; see the module's docstring."""
    norm = normalise(load_truth(ground_truth))
    refs = _to_persons(con, norm["referrals"], ["t", "v", "campaign_id", "pattern"])
    persons = _to_persons(con, norm["persons"], ["t", "v", "pattern"])
    decoys = _to_persons(con, norm["decoys"], ["t", "v", "kind", "role"])
    referral_risk = graph.referral_risk(con, min_score=threshold)
    person_risk = graph.person_risk(con, min_score=threshold)
    flagged_refs = {(int(p), c): pat for p, c, pat in zip(referral_risk.invitee_person_id, referral_risk.campaign_id,
                                                          referral_risk.pattern, strict=True)}  # fmt: skip
    flagged_persons = {int(p): pat for p, pat in zip(person_risk.person_id, person_risk.pattern, strict=True)}
    mapped_refs = refs.dropna(subset=["person_id"])
    mapped_persons = persons.dropna(subset=["person_id"])
    result: dict[str, Any] = {
        "threshold": threshold,
        "unmapped": int(refs.person_id.isna().sum() + persons.person_id.isna().sum()),
        "referrals": {},
        "persons": {},
    }
    if len(refs):
        truth = {(int(p), c): pat for p, c, pat in zip(mapped_refs.person_id, mapped_refs.campaign_id,
                                                       mapped_refs.pattern, strict=True)}  # fmt: skip
        result["referrals"] = _score(truth, flagged_refs)
        result["referrals"]["overall"]["fn"] += int(refs.person_id.isna().sum())
    if len(persons):
        result["persons"] = _score(dict(zip(mapped_persons.person_id.astype("int64"), mapped_persons.pattern,
                                            strict=True)), flagged_persons)  # fmt: skip
    fraud_persons = set(mapped_persons.person_id.astype("int64"))
    hit = decoys.dropna(subset=["person_id"])
    # a decoy merged into a fraudulent person (it is one) is not an honest look-alike any more
    hit = hit[hit.person_id.astype("int64").isin(flagged_persons.keys() - fraud_persons)]
    if result["referrals"]:  # the headline unit: the referral, as the review queue decides it
        result["patterns"] = {k: v for k, v in result["referrals"].items() if k != "overall"}
        result["overall"] = result["referrals"]["overall"]
        result["truth_referrals"], result["flagged_referrals"] = len(refs), len(flagged_refs)
    result["decoys"] = {
        "total": len(decoys),
        "flagged": len(hit),
        "flagged_inviters": int((hit.role == "inviter").sum()),
        "by_kind": {str(k): int(v) for k, v in hit.groupby("kind").size().items()},
    }
    return result
