"""Acceptance on the evaluation harness: labelled scenarios written as a brand's files, imported with
`liebian import`, scanned and scored with `liebian fraud evaluate --ground-truth FILE`. Over five
seeds and two sizes every pattern reaches precision and recall ≥ 0.95 and no decoy (office,
KOC, family, campus) is flagged. The figures are re-derived from the scan's tables."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from liebian.cli import app as cli_app
from liebian.engine import warehouse
from liebian.fraud import graph, scenarios
from liebian.identity.keys import stored_value

PATTERNS = {"device_farm", "star_churn", "circular", "chain", "cross_cluster", "self"}
runner = CliRunner()


def import_brand(paths: dict) -> None:
    for name, kind in (("identities", "identities"), ("events", "events"), ("orders", "orders"),
                       ("identities_late", "identities")):  # fmt: skip
        out = runner.invoke(cli_app, ["import", kind, str(paths[name]), "--format", "json", "--no-progress"])
        assert out.exit_code == 0, out.output


@pytest.mark.parametrize("size", [300, 600])
@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_every_pattern_is_found_and_no_decoy_flagged(data_dir, sqlite_store, tmp_path, size, seed) -> None:
    paths = scenarios.write_scenario(tmp_path / "brand", size, seed)
    import_brand(paths)
    out = runner.invoke(
        cli_app, ["fraud", "evaluate", "--ground-truth", str(paths["ground_truth"]), "--format", "json"]
    )
    assert out.exit_code == 0, out.output
    result = json.loads(out.stdout)
    assert result["unmapped"] == 0
    for unit in ("referrals", "persons"):
        assert set(result[unit]) == PATTERNS | {"overall"}
        for pattern, m in result[unit].items():
            assert m["precision"] >= 0.95 and m["recall"] >= 0.95, (unit, pattern, m)
    assert result["decoys"]["total"] > 100 and result["decoys"]["flagged"] == 0, result["decoys"]

    # independently: the truth's referrals against the scan's table
    truth = json.loads(paths["ground_truth"].read_text(encoding="utf-8"))
    with warehouse.connect(read_only=True) as con:
        ids = con.execute("SELECT id_type, id_value, person_id FROM identity_map").fetchall()
        refs = graph.referral_risk(con, min_score=50)
        persons = graph.person_risk(con, min_score=50)
    person_of = {(t, v): int(p) for t, v, p in ids}

    def pid(entry: dict) -> int:
        return person_of[(entry["id_type"], stored_value(entry["id_type"], entry["id"]))]

    truth_keys = {(pid(r["invitee"]), r["campaign_id"]) for r in truth["referrals"]}
    flagged = {(int(p), c) for p, c in zip(refs.invitee_person_id, refs.campaign_id, strict=True)}
    overall = result["referrals"]["overall"]
    assert overall["tp"] == len(truth_keys & flagged) and overall["claimed"] == len(flagged)
    decoys = {pid(d) for d in truth["decoys"]}
    assert not decoys & set(persons.person_id.astype("int64"))
    inviters = {pid(d) for d in truth["decoys"] if d["role"] == "inviter"}
    assert inviters and not inviters & set(persons.person_id.astype("int64"))


def test_evaluate_reads_a_persons_only_file_and_prints_both_languages(
    data_dir, sqlite_store, tmp_path
) -> None:
    paths = scenarios.write_scenario(tmp_path / "brand", 300, 9)
    import_brand(paths)
    truth = json.loads(paths["ground_truth"].read_text(encoding="utf-8"))
    persons_only = tmp_path / "persons.json"
    persons_only.write_text(json.dumps({"persons": truth["persons"]}), encoding="utf-8")
    out = runner.invoke(
        cli_app, ["fraud", "evaluate", "--ground-truth", str(persons_only), "--format", "json"]
    )
    result = json.loads(out.stdout)
    assert result["referrals"] == {} and set(result["persons"]) == PATTERNS | {"overall"}
    assert result["persons"]["overall"]["truth"] == len(truth["persons"])

    zh = runner.invoke(
        cli_app, ["fraud", "evaluate", "--ground-truth", str(paths["ground_truth"]), "--no-rescan"]
    )
    en = runner.invoke(cli_app, ["fraud", "evaluate", "--ground-truth", str(paths["ground_truth"]), "--no-rescan",
                                 "--lang", "en"])  # fmt: skip
    assert zh.exit_code == en.exit_code == 0
    assert "邀请链" in zh.stdout and "精确率" in zh.stdout and "诱饵" in zh.stdout
    assert "referral chain" in en.stdout and "precision" in en.stdout and "decoys" in en.stdout


@pytest.mark.parametrize(
    ("doc", "reason"),
    [
        (
            {"referrals": [{"invitee": {"id_type": "phone", "id": "12"}, "pattern": "chain"}]},
            "referrals[0].invitee",
        ),
        ({"persons": [{"id_type": "openid", "id": "x"}]}, "persons[0]: needs a pattern"),
        ({"nothing": []}, "no referrals or persons"),
    ],
)
def test_a_bad_truth_file_is_refused_naming_the_entry(data_dir, sqlite_store, tmp_path, doc, reason) -> None:
    path = tmp_path / "truth.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    out = runner.invoke(
        cli_app, ["fraud", "evaluate", "--ground-truth", str(path), "--no-rescan", "--lang", "en"]
    )
    assert out.exit_code == 2 and reason in out.output
