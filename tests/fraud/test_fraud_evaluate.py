"""Acceptance: on a small demo brand (the demo generator, imported through the real importer),
`liebian fraud evaluate` reaches precision ≥ 0.9 and recall ≥ 0.9 over the injected fraud, and the
honest look-alikes (an office on one IP, a family on one handset) are not flagged."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from liebian.cli import app as cli_app
from liebian.demo.generator import DemoSpec, generate
from liebian.engine import warehouse
from liebian.fraud import graph
from liebian.identity.keys import stored_value
from liebian.ingest.service import import_file


def test_evaluate_on_a_small_demo_brand(data_dir, sqlite_store) -> None:
    demo = generate(DemoSpec(persons=2000, seed=11), data_dir / "demo")
    for kind in ("identities", "events", "orders"):
        for name, path in demo.files.items():
            if name.startswith(kind):
                import_file(path, kind)
    truth = json.loads(demo.ground_truth_path.read_text(encoding="utf-8"))
    runner = CliRunner()

    out = runner.invoke(cli_app, ["fraud", "evaluate", "--format", "json"])
    assert out.exit_code == 0, out.output
    result = json.loads(out.stdout)
    assert result["unmapped"] == 0
    assert result["overall"]["precision"] >= 0.9 and result["overall"]["recall"] >= 0.9
    assert set(result["patterns"]) == {"device_farm", "star_churn", "circular", "virtual_phone"}
    for name, m in result["patterns"].items():
        assert m["recall"] >= 0.9, (name, m)

    # the same figures, computed independently from the scan's table and the truth file
    with warehouse.connect(read_only=True) as con:
        ids = con.execute("SELECT id_type, id_value, person_id FROM identity_map").df()
        refs = graph.referral_risk(con)
        persons = graph.person_risk(con, min_score=50)
    person_of = {(t, v): int(p) for t, v, p in ids.itertuples(index=False)}
    truth_keys = {
        (person_of[(r["id_type"], stored_value(r["id_type"], r["id"]))], r["campaign_id"])
        for r in truth["fraud"]["invitees"]
    }
    flagged = {
        (int(p), c)
        for p, c, s in zip(refs.invitee_person_id, refs.campaign_id, refs.score, strict=True)
        if s >= 50
    }
    tp = len(truth_keys & flagged)
    assert result["overall"]["tp"] == tp
    assert result["overall"]["precision"] == round(tp / len(flagged), 4)
    assert result["overall"]["recall"] == round(tp / len(truth_keys), 4)

    # honest look-alikes stay below the flag threshold
    look = truth["lookalikes"]
    honest = [m for o in look["office_shared_ip"] for m in [o["inviter"], *o["members"]]]
    honest += [m for f in look["family_shared_device"] for m in f["members"]]
    honest_ids = {person_of[(m["id_type"], stored_value(m["id_type"], m["id"]))] for m in honest}
    assert honest_ids and not honest_ids & set(persons.person_id.astype("int64"))

    table = runner.invoke(cli_app, ["fraud", "evaluate", "--no-rescan", "--lang", "en"])
    assert table.exit_code == 0 and "overall" in table.stdout and "precision" in table.stdout
