"""``broker directory import/list/show`` end to end, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from sqlalchemy import event, func, select

from broker.directory import import_directory
from broker.directory.parse import VCSE_COLUMNS
from broker.errors import InputError
from broker.store.engine import session_factory
from broker.store.models import Consortium, ConsortiumMember, Vcse

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "directory"
VCSES = FIXTURES / "vcses.csv"
CONSORTIA = FIXTURES / "consortia.csv"


def fixture_rows() -> list[dict[str, str]]:
    with open(VCSES, encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh))


def write_vcses(path: Path, rows: list[dict[str, str]], *, columns=VCSE_COLUMNS, encoding="utf-8") -> Path:
    with open(path, "w", encoding=encoding, newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


def row(**values: str) -> dict[str, str]:
    base = {"id": "t-1", "name": "Test Kitchen", "local_authority": "Birmingham", "postcode": "B8 1QE",
            "capabilities": "We cook meals for lunch clubs.", "digest_opt_in": "no"}
    return {**base, **values}


def import_fixture(run):
    return run("directory", "import", str(VCSES), "--consortia", str(CONSORTIA))


# ---------------------------------------------------------------------------------------------- import

def test_import_fixture_directory(run, session):
    result = import_fixture(run)
    assert result.exit_code == 0, result.output
    assert f"{VCSES}: 48 rows: 48 new, 0 updated, 0 unchanged, 0 errors" in result.stdout
    assert f"{CONSORTIA}: 5 rows: 5 new, 0 updated, 0 unchanged, 0 errors" in result.stdout
    assert result.stderr == ""
    assert session.scalar(select(func.count()).select_from(Vcse)) == 48
    assert session.scalar(select(func.count()).select_from(ConsortiumMember)) == 16
    kitchen = session.get(Vcse, "wm-0001")
    assert (kitchen.cluster, kitchen.cluster_derived, kitchen.postcode) == ("Ward End", True, "B8 1QE")
    assert kitchen.cpv_codes == ["55520000", "55524000"]  # check digit stripped
    assert kitchen.annual_turnover_pence == 18_500_000 and kitchen.max_contract_value_pence == 7_500_000
    assert kitchen.service_areas == ["Birmingham", "Solihull"]
    assert kitchen.keywords[:2] == ["catering", "school meals"]
    named = session.get(Vcse, "wm-0014")
    assert (named.cluster, named.cluster_derived) == ("Birmingham", False)
    own_area = session.get(Vcse, "wm-0002")
    assert own_area.service_areas == ["Birmingham"]  # blank = its own authority
    assert session.get(Vcse, "wm-0048").cluster is None  # Redditch: no cluster configured
    assert session.get(Vcse, "wm-0020").digest_opt_in is False


def test_reimport_unchanged_writes_nothing(run, engine):
    assert import_fixture(run).exit_code == 0
    statements: list[str] = []

    def capture(conn, cursor, statement, *args):
        statements.append(statement.split()[0].upper())

    event.listen(engine, "before_cursor_execute", capture)
    try:
        with session_factory(engine).begin() as session:
            report = import_directory(session, VCSES, CONSORTIA)
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    assert (report.vcses.new, report.vcses.updated, report.vcses.unchanged) == (0, 0, 48)
    assert (report.consortia.new, report.consortia.updated, report.consortia.unchanged) == (0, 0, 5)
    assert statements and not {"INSERT", "UPDATE", "DELETE"} & set(statements)
    again = import_fixture(run)
    assert "0 new, 0 updated, 48 unchanged, 0 errors" in again.stdout


def test_changed_row_is_updated_and_derived_consortium_follows(run, session, tmp_path):
    assert import_fixture(run).exit_code == 0
    rows = fixture_rows()
    larder = next(r for r in rows if r["id"] == "wm-0021")
    larder["capabilities"] = "Community larder and hot lunches; now also a weekend breakfast club for families."
    changed = write_vcses(tmp_path / "vcses.csv", rows)
    result = run("directory", "import", str(changed), "--consortia", str(CONSORTIA))
    assert result.exit_code == 0, result.output
    assert "48 rows: 0 new, 1 updated, 47 unchanged, 0 errors" in result.stdout
    # cons-01 derives its capabilities from its members, so it changes too; the others do not.
    assert "5 rows: 0 new, 1 updated, 4 unchanged, 0 errors" in result.stdout
    session.expire_all()
    assert "weekend breakfast club" in session.get(Vcse, "wm-0021").capabilities
    assert "weekend breakfast club" in session.get(Consortium, "cons-01").capabilities


def test_bad_rows_are_reported_with_row_and_field_and_good_rows_kept(run, session, tmp_path):
    rows = [
        row(id="ok-1"),
        row(id="bad-pc", postcode="B99 ZZZ"),
        row(id="bad many", local_authority="Atlantis", digest_opt_in="maybe", cpv_codes="12345678"),
        row(id="ok-2", name="Second", annual_turnover_gbp="£1,250.50", cluster="perry barr"),
        row(id="ok-1", name="Duplicate"),
        row(id="bad-money", max_contract_value_gbp="lots", min_contract_value_gbp="10",
            contact_email="two@example.org; three@example.org"),
        row(id="bad-cluster", cluster="Atlantis Quarter", capabilities=""),
    ]
    path = write_vcses(tmp_path / "vcses.csv", rows)
    result = run("directory", "import", str(path))
    assert result.exit_code == 1
    err = result.stderr
    for expected in (f"{path}, row 3, field postcode: 'B99 ZZZ' is not a full UK postcode",
                     f"{path}, row 4, field id:", f"{path}, row 4, field local_authority:",
                     f"{path}, row 4, field digest_opt_in: 'maybe' is not yes or no",
                     f"{path}, row 4, field cpv_codes: not CPV 2008 code(s): 12345678",
                     f"{path}, row 6, field id: ok-1 is already used by row 2",
                     f"{path}, row 7, field max_contract_value_gbp:", f"{path}, row 7, field contact_email:",
                     f"{path}, row 8, field cluster:", f"{path}, row 8, field capabilities: required"):
        assert expected in err, expected
    # Rows whose only problems are in optional fields are kept without those fields (and said so).
    assert f"Warning: {path}, row 3, field postcode: 'B99 ZZZ' is not a full UK postcode; left out" in err
    assert "7 rows: 4 new, 0 updated, 0 unchanged, 3 errors" in result.stdout
    assert sorted(session.scalars(select(Vcse.id))) == ["bad-money", "bad-pc", "ok-1", "ok-2"]
    assert session.get(Vcse, "bad-pc").postcode is None
    assert session.get(Vcse, "bad-money").max_contract_value_pence is None
    second = session.get(Vcse, "ok-2")
    assert (second.annual_turnover_pence, second.cluster, second.cluster_derived) == (125050, "Perry Barr", False)


def test_utf8_bom_is_accepted(run, session, tmp_path):
    path = write_vcses(tmp_path / "vcses.csv", [row(name="Café Cymru £")], encoding="utf-8-sig")
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")
    result = run("directory", "import", str(path))
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    assert session.get(Vcse, "t-1").name == "Café Cymru £"


def test_cp1252_file_is_read_with_a_warning(run, session, tmp_path):
    path = write_vcses(tmp_path / "vcses.csv", [row(name="Café Société", max_contract_value_gbp="£5,000")],
                       encoding="cp1252")
    result = run("directory", "import", str(path))
    assert result.exit_code == 0, result.output
    assert f"Warning: {path}: not UTF-8; read as Windows-1252" in result.stderr
    vcse = session.get(Vcse, "t-1")
    assert (vcse.name, vcse.max_contract_value_pence) == ("Café Société", 500_000)


def test_unknown_columns_warn_and_are_ignored(run, session, tmp_path):
    path = write_vcses(tmp_path / "vcses.csv", [{**row(), "notes": "call back", "Website": "x"}],
                       columns=(*VCSE_COLUMNS, "notes", "Website"))
    result = run("directory", "import", str(path))
    assert result.exit_code == 0, result.output
    assert f"Warning: {path}, row 1: unknown column(s) notes, Website ignored" in result.stderr
    assert session.get(Vcse, "t-1") is not None


def test_missing_required_column_fails_the_file(run, session, tmp_path):
    path = write_vcses(tmp_path / "vcses.csv", [row()], columns=[c for c in VCSE_COLUMNS if c != "digest_opt_in"])
    result = run("directory", "import", str(path))
    assert result.exit_code == 1
    assert f"Error: {path}, row 1: missing required column(s) digest_opt_in" in result.stderr
    assert session.scalar(select(func.count()).select_from(Vcse)) == 0


def test_too_many_cells_is_a_row_error(run, session, tmp_path):
    path = tmp_path / "vcses.csv"
    path.write_text("id,name,local_authority,capabilities,digest_opt_in\n"
                    "a,A,Sandwell,We help,yes\n"
                    "b,B,Sandwell,We help, a lot,yes\n", encoding="utf-8")
    result = run("directory", "import", str(path))
    assert result.exit_code == 1
    assert f"{path}, row 3: the row has 6 cells but the header has 5 columns" in result.stderr
    assert "column(s) legal_form" in result.stderr  # optional columns missing: warned, treated as blank
    assert [v for v in session.scalars(select(Vcse.id))] == ["a"]


# ---------------------------------------------------------------------------------------------- consortia

def test_consortium_derivations(run, session):
    assert import_fixture(run).exit_code == 0
    food = session.get(Consortium, "cons-01")
    members = [session.get(Vcse, m) for m in ("wm-0001", "wm-0021", "wm-0033")]
    assert food.capabilities_derived and food.capabilities == "\n".join(m.capabilities for m in members)
    assert food.max_value_derived and food.max_contract_value_pence == sum(m.max_contract_value_pence
                                                                           for m in members)
    abuse = session.get(Consortium, "cons-02")
    assert not abuse.capabilities_derived and not abuse.max_value_derived
    assert abuse.max_contract_value_pence == 100_000_000
    green = session.get(Consortium, "cons-03")
    assert green.capabilities_derived and not green.max_value_derived
    evidence = session.get(Consortium, "cons-05")  # wm-0012 states no maximum: capacity unknown
    assert evidence.max_contract_value_pence is None and not evidence.max_value_derived
    order = session.scalars(select(ConsortiumMember.vcse_id).where(ConsortiumMember.consortium_id == "cons-04")
                            .order_by(ConsortiumMember.position))
    assert list(order) == ["wm-0009", "wm-0034", "wm-0041", "wm-0004"]


def test_consortium_errors(run, session, tmp_path):
    vcses = write_vcses(tmp_path / "vcses.csv", [row(id="a"), row(id="b"), row(id="broken", digest_opt_in="nope")])
    consortia = tmp_path / "consortia.csv"
    consortia.write_text(
        "id,name,lead_id,member_ids,capabilities,max_contract_value_gbp\n"
        "ok,Good,a,a;b,,\n"
        "ghost,Ghost,a,a;zz,,\n"
        "lead,Lead,c,a;b,,\n"
        "ok,Again,a,a;b,,\n"
        "brk,Broken member,a,a;broken,,\n"
        "a,Clash,a,a;b,,\n"
        "solo,Solo,a,a,,\n", encoding="utf-8")
    result = run("directory", "import", str(vcses), "--consortia", str(consortia))
    assert result.exit_code == 1
    err = result.stderr
    assert f"{consortia}, row 3, field member_ids: not in the directory: zz" in err
    assert f"{consortia}, row 4, field lead_id: c is not one of the member_ids" in err
    assert f"{consortia}, row 5, field id: ok is already used by row 2" in err
    assert f"row 6, field member_ids: not in the directory: broken (row 4 of {vcses} has errors)" in err
    assert f"{consortia}, row 7, field id: a is already a VCSE id" in err
    assert f"{consortia}, row 8, field member_ids: a consortium needs at least two members" in err
    assert "7 rows: 1 new, 0 updated, 0 unchanged, 6 errors" in result.stdout
    assert list(session.scalars(select(Consortium.id))) == ["ok"]


def test_core_import_raises_for_unreadable_file(session, tmp_path):
    with pytest.raises(InputError, match="cannot read the file"):
        import_directory(session, tmp_path / "missing.csv")
    binary = tmp_path / "binary.csv"
    binary.write_bytes(b"id,name\n\x81\x8d\x8f\n")
    with pytest.raises(InputError, match="not UTF-8 or Windows-1252"):
        import_directory(session, binary)


# ---------------------------------------------------------------------------------------------- list / show

def test_list_json_shape_and_filters(run):
    assert import_fixture(run).exit_code == 0
    data = json.loads(run("directory", "list", "--json").stdout)
    assert set(data) == {"cluster", "total_vcses", "total_consortia", "vcses", "consortia"}
    assert (data["total_vcses"], data["total_consortia"], len(data["vcses"])) == (48, 5, 48)
    assert set(data["vcses"][0]) == {"id", "name", "legal_form", "cluster", "local_authority",
                                     "annual_turnover_pence", "max_contract_value_pence", "digest_opt_in"}
    assert [v["id"] for v in data["vcses"]] == sorted(v["id"] for v in data["vcses"])
    ward_end = json.loads(run("directory", "list", "--cluster", "ward end", "--json").stdout)
    assert ward_end["cluster"] == "Ward End"
    assert {v["cluster"] for v in ward_end["vcses"]} == {"Ward End"} and ward_end["total_vcses"] == 5
    assert {c["id"] for c in ward_end["consortia"]} == {"cons-01", "cons-02", "cons-04"}
    limited = json.loads(run("directory", "list", "--limit", "3", "--json").stdout)
    assert len(limited["vcses"]) == 3 and limited["total_vcses"] == 48
    table = run("directory", "list", "--limit", "2").stdout
    assert "VCSEs: 2 of 48" in table and "wm-0001" in table and "£75,000" in table


def test_show_json_for_vcse_and_consortium(run):
    assert import_fixture(run).exit_code == 0
    vcse = json.loads(run("directory", "show", "wm-0001", "--json").stdout)
    assert vcse["kind"] == "vcse" and vcse["consortia"] == ["cons-01"]
    assert vcse["max_contract_value_pence"] == 7_500_000 and vcse["contact_email"].endswith("@example.org")
    assert not [k for k in vcse if k.endswith("_gbp")]
    cons = json.loads(run("directory", "show", "cons-04", "--json").stdout)
    assert cons["kind"] == "consortium" and cons["lead_id"] == "wm-0009"
    assert [m["id"] for m in cons["members"]] == cons["member_ids"] == ["wm-0009", "wm-0034", "wm-0041", "wm-0004"]
    assert cons["max_contract_value_pence"] == sum(m["max_contract_value_pence"] for m in cons["members"])
    human = run("directory", "show", "cons-05").stdout
    assert "capabilities (derived):" in human and "members:" in human and "wm-0012" in human
    missing = run("directory", "show", "nope")
    assert missing.exit_code == 1 and "no VCSE or consortium with id 'nope'" in missing.stderr

