"""``broker target``, ``broker report``, ``broker outcome record|import``: output, JSON shapes, bad input."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import select

from broker.store.models import QuarantineItem, TargetEntry

EXPECTED = Path(__file__).parent / "expected"


def _json(result) -> dict:
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_target_json_matches_the_expected_document(scenario, run):
    doc = _json(run("target", "--as-of", "2025-09-30", "--json"))
    expected = json.loads((EXPECTED / "target_2025-09-30.json").read_text())
    assert doc == expected


def test_target_json_as_of_an_earlier_day(scenario, run):
    doc = _json(run("target", "--as-of", "2025-05-01", "--json"))
    # Introduced on 11 April, but nobody had confirmed interest yet: pipeline, not the headline.
    assert (doc["counted_pence"], doc["counted_opportunities"]) == (0, 0)
    assert doc["pipeline"] == {"stage": "introduced", "value_pence": 16_500_000, "opportunities": 2}
    assert doc["progress_over_time"] == []


def test_target_text_output(scenario, run):
    result = run("target", "--as-of", "2025-09-30")
    assert result.exit_code == 0, result.output
    out = result.output
    assert "£280,000 of £1,000,000 (28.00%) from 3 opportunities" in out
    assert "pipeline (introduced, not counted unless interested): £280,000 from 5 opportunities" in out
    assert "value unknown: 0 (count £0); frameworks excluded: 0" in out
    assert "St Matthews Quarter" in out and "Wolverhampton" in out
    assert "reached on 2027-01-14, within the window 2025-04-01 to 2028-03-31" in out


def test_target_with_a_configuration_file(scenario, run, tmp_path):
    cfg = tmp_path / "target.toml"
    cfg.write_text('target_gbp = 200000\ncounting_stage = "won"\n')
    doc = _json(run("target", "--as-of", "2025-09-30", "--json", "--config", str(cfg)))
    assert (doc["target_pence"], doc["counting_stage"], doc["counted_pence"]) == (20_000_000, "won", 13_000_000)
    assert doc["share_percent"] == 65.0
    assert doc["config"]["counting_stage"] == "won"


def test_target_reports_bad_dates_and_configuration(scenario, run, tmp_path):
    result = run("target", "--as-of", "31/09/2025")  # dd/mm/yyyy is taken; September has 30 days
    assert result.exit_code == 1 and "--as-of: not a YYYY-MM-DD date" in result.output
    bad = tmp_path / "bad.toml"
    bad.write_text("counting_stage = 3\n")
    result = run("target", "--config", str(bad))
    assert result.exit_code == 1 and "bad.toml: counting_stage 3 is not one of" in result.output


def test_target_reconcile_records_changes_first(scenario, rows, run):
    rows.amend("o-xss", status="cancelled")
    scenario.commit()
    before = _json(run("target", "--as-of", "2025-10-01", "--json"))
    after = _json(run("target", "--as-of", "2025-10-01", "--reconcile", "--json"))
    # The award stands only while the notice does: a cancellation zeroes it, from the day it was noticed.
    assert before["counted_pence"] - after["counted_pence"] == 5_000_000
    # o-cancel never got past introduced: it is in the pipeline, not among the counted (cancelled) ones.
    assert after["cancelled"]["opportunity_ids"] == ["o-xss"]


def test_report_writes_html(scenario, run, tmp_path):
    out = tmp_path / "report.html"
    result = run("report", "--html", str(out), "--as-of", "2025-09-30")
    assert result.exit_code == 0, result.output
    assert f"Wrote {out}: £280,000 of £1,000,000 (28.00%) as of 2025-09-30." in result.output
    assert "£280,000" in out.read_text(encoding="utf-8")


def test_report_to_an_unwritable_path(scenario, run, tmp_path):
    result = run("report", "--html", str(tmp_path / "missing" / "r.html"), "--as-of", "2025-09-30")
    assert result.exit_code == 1 and "cannot write" in result.output


def test_outcome_record(scenario, run):
    result = run("outcome", "record", "o-care", "v-ward", "--stage", "won", "--value", "£175,000.50",
                 "--note", "=1+1", "--date", "2025-09-10")
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "Recorded won (awarded £175,001) for v-ward on o-care as of 2025-09-10."
    entry = scenario.scalars(select(TargetEntry).order_by(TargetEntry.id.desc()).limit(1)).one()
    assert (entry.stage, entry.amount_pence, entry.note, entry.cause) == ("won", 17_500_050, "=1+1", "officer")
    again = run("outcome", "record", "o-care", "v-ward", "--stage", "won", "--value", "175000.50",
                "--note", "=1+1", "--date", "2025-09-11", "--json")
    assert _json(again) == {"opportunity_id": "o-care", "party_id": "v-ward", "stage": "won",
                            "value_pence": 17_500_050, "as_of": "2025-09-11", "entries": 0}
    doc = _json(run("target", "--as-of", "2025-09-30", "--json"))
    assert doc["counted_pence"] == 28_000_000 - 15_000_000 + 17_500_050


def test_outcome_record_errors(scenario, run):
    result = run("outcome", "record", "nope", "v-ward", "--stage", "bid")
    assert result.exit_code == 1 and "no opportunity 'nope'. Try `broker opportunities list`." in result.output
    result = run("outcome", "record", "o-care", "nobody", "--stage", "bid")
    assert result.exit_code == 1 and "'nobody'" in result.output
    result = run("outcome", "record", "o-care", "v-ward", "--stage", "bid", "--value", "100")
    assert result.exit_code == 1 and "only with a won outcome" in result.output
    result = run("outcome", "record", "o-care", "v-ward", "--stage", "won", "--value", "lots")
    assert result.exit_code == 1 and "field --value: not an amount" in result.output
    result = run("outcome", "record", "o-care", "v-ward", "--stage", "shortlisted")
    assert result.exit_code == 2 and "Invalid value for '--stage'" in result.output
    result = run("outcome", "record", "o-care", "v-ward", "--stage", "bid", "--date", "tomorrow")
    assert result.exit_code == 1 and "--date: not a YYYY-MM-DD date" in result.output


def _csv(tmp_path: Path, text: str, name: str = "outcomes.csv", *, bom: bool = False) -> Path:
    path = tmp_path / name
    path.write_bytes(("\ufeff" if bom else "").encode() + text.encode("utf-8"))
    return path


GOOD = ("opportunity_id,party_id,stage,value_gbp,note,date\n"
        "o-care,c-1,won,\"160,000\",\"=HYPERLINK(\"\"http://x\"\")\",2025-09-05\n"
        "o-unknown,v-wolves,interested,,,05/09/2025\n"
        "o-xss,v-wolves,lost,,,\n")


def test_outcome_import(scenario, run, tmp_path):
    path = _csv(tmp_path, GOOD, bom=True)
    doc = _json(run("outcome", "import", str(path), "--as-of", "2025-09-20", "--json"))
    assert {k: doc[k] for k in ("rows", "recorded_rows", "entries", "unchanged_rows", "errors")} == {
        "rows": 3, "recorded_rows": 3, "entries": 3, "unchanged_rows": 0, "errors": []}
    won = scenario.scalars(select(TargetEntry).where(TargetEntry.stage == "won", TargetEntry.party_id == "c-1")).one()
    assert (won.amount_pence, won.note, won.as_of) == (16_000_000, '=HYPERLINK("http://x")', "2025-09-05")
    assert won.cause.startswith("import:") and won.cause.endswith(":row 2")
    lost = scenario.scalars(select(TargetEntry).where(TargetEntry.stage == "lost")).one()
    assert lost.as_of == "2025-09-20"  # a blank date is the import's business date
    # The same sheet again records nothing.
    again = run("outcome", "import", str(path), "--as-of", "2025-09-21")
    assert again.exit_code == 0
    assert "3 rows: 0 recorded (0 ledger entries), 3 already recorded, 0 rejected." in again.output


def test_outcome_import_names_bad_rows_and_fields_and_keeps_the_good(scenario, run, tmp_path):
    path = _csv(tmp_path, "opportunity_id,party_id,stage,value_gbp,note,date,colour\n"
                          "o-care,v-ward,bid,,,,red\n"
                          ",v-ward,bid,,,,\n"
                          "o-care,v-ward,shortlisted,,,,\n"
                          "o-care,v-ward,won,=2*50000,,,\n"
                          "o-care,v-ward,bid,100,,,\n"
                          "o-care,v-ward,bid,,,31/02/2025,\n"
                          "o-care,v-ward,bid,,,2030-01-01,\n"
                          "o-care,nobody,bid,,,,\n"
                          "missing-opp,v-ward,bid,,,,\n"
                          "o-care,v-ward,bid,,bad\x00note,,\n")
    result = run("outcome", "import", str(path), "--as-of", "2025-09-20")
    assert result.exit_code == 1
    out = result.output
    assert f"Warning: {path}: column 'colour' is not an outcomes column and was ignored" in out
    for row, column, reason in [(3, "opportunity_id", "required, but blank"), (4, "stage", "unknown stage"),
                                (5, "value_gbp", "not an amount"), (6, "value_gbp", "a value is recorded only with a won outcome"),
                                (7, "date", "not a date"), (8, "date", "2030-01-01 is after the business date 2025-09-20"),
                                (9, "party_id", "no VCSE, consortium or match 'nobody' for opportunity 'o-care'"),
                                (10, "opportunity_id", "no opportunity 'missing-opp'"),
                                (11, "note", "contains a NUL character")]:
        assert f"Error: {path}, row {row}, field {column}: {reason}" in out, (row, out)
    assert "10 rows: 1 recorded (1 ledger entry), 0 already recorded, 9 rejected." in out
    assert "import the file again" in out
    reasons = list(scenario.scalars(select(QuarantineItem.locator).order_by(QuarantineItem.id)))
    assert reasons == [f"row {n}" for n in range(3, 12)]
    assert scenario.scalars(select(TargetEntry).where(TargetEntry.stage == "bid", TargetEntry.party_id == "v-ward")
                            ).one().as_of == "2025-09-20"


def test_outcome_import_json_errors(scenario, run, tmp_path):
    path = _csv(tmp_path, "opportunity_id,party_id,stage\no-care,v-ward,maybe\n")
    result = run("outcome", "import", str(path), "--as-of", "2025-09-20", "--json")
    assert result.exit_code == 1
    doc = json.loads(result.output)
    assert doc["errors"] == [{"row": "row 2", "field": "stage",
                              "reason": "unknown stage 'maybe'; one of matched, introduced, interested, bid, won, "
                                        "lost, withdrawn"}]


def test_outcome_import_bad_files(scenario, run, tmp_path):
    result = run("outcome", "import", str(_csv(tmp_path, "opportunity,party,stage\n")), "--as-of", "2025-09-20")
    assert result.exit_code == 1 and "row 1: missing column(s) opportunity_id, party_id" in result.output
    latin = tmp_path / "latin.csv"
    latin.write_bytes("opportunity_id,party_id,stage,note\no-care,v-ward,bid,caf\xe9\n".encode("latin-1"))
    result = run("outcome", "import", str(latin), "--as-of", "2025-09-20")
    assert result.exit_code == 1 and "not UTF-8" in result.output
    result = run("outcome", "import", str(tmp_path / "absent.csv"), "--as-of", "2025-09-20")
    assert result.exit_code == 1 and "cannot read the file" in result.output


def test_commands_need_an_initialised_database(tmp_path):
    from click.testing import CliRunner

    from broker.cli import cli

    result = CliRunner().invoke(cli, ["--db", f"sqlite:///{tmp_path / 'empty.db'}", "target"])
    assert result.exit_code == 1 and "Run `broker init` first." in result.output


def test_target_explain_lists_every_counted_pound_with_its_evidence(scenario, run):
    doc = _json(run("target", "--as-of", "2025-09-30", "--explain", "--json"))
    rows = doc["evidence"]
    # The counted value sits on one row per opportunity, so the column sums to the headline.
    assert sum(r["counted_pence"] or 0 for r in rows) == doc["counted_pence"] == 28_000_000
    assert sorted({r["opportunity_id"] for r in rows}) == sorted(o["id"] for o in doc["opportunities"])
    care = [r for r in rows if r["opportunity_id"] == "o-care"]
    assert [(r["party_id"], r["stage"], r["stage_date"]) for r in care] == [("c-1", "bid", "2025-06-01")]
    assert care[0]["evidence"].startswith("officer entry #") and 'HYPERLINK' in care[0]["evidence"]
    assert care[0]["value_basis"] == "lower_bound" and "counts at lower bound £150,000" in care[0]["value_reason"]
    won = next(r for r in rows if r["opportunity_id"] == "o-fw")
    assert (won["stage"], won["value_basis"], won["counted_pence"]) == ("won", "award", 8_000_000)
    text = run("target", "--as-of", "2025-09-30", "--explain")
    assert text.exit_code == 0 and "Every counted pound (£280,000, stage interested or beyond)" in text.output
    assert "c-1 (consortium, St Matthews Quarter): officer entry #" in text.output


def test_target_csv_sums_to_the_headline_and_defuses_formulas(scenario, run, tmp_path):
    import csv
    import io

    result = run("target", "--as-of", "2025-09-30", "--csv")
    assert result.exit_code == 0
    rows = list(csv.DictReader(io.StringIO(result.output)))
    assert sum(int(r["counted_pence"]) for r in rows if r["counted_pence"]) == 28_000_000
    assert all(not cell.startswith(("=", "+", "-", "@")) for r in rows for cell in r.values())
    # Counted at introduced, the pipeline's evidence is the digest delivery (none is logged in this scenario).
    cfg = tmp_path / "introduced.toml"
    cfg.write_text('counting_stage = "introduced"\n')
    rows = list(csv.DictReader(io.StringIO(run("target", "--as-of", "2025-09-30", "--csv", "--config",
                                               str(cfg)).output)))
    intro = [r for r in rows if r["stage"] == "introduced"]
    assert intro and all(r["evidence"].endswith("(no delivery in the log)") for r in intro)
