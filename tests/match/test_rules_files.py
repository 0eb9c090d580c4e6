"""Rule files: loading, the exact bytes and hashes, and every malformed file we could think of."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest

from broker.errors import BrokerError
from broker.match.conditions import OPS
from broker.match.rulefiles import (
    EFFECTS,
    RuleError,
    check_rules,
    check_texts,
    load_rules,
    load_rules_from_texts,
)
from broker.match.rules import RESERVED_FIELDS
from broker.match.vocabulary import FACT_KINDS, VOCABULARY

ROOT = Path(__file__).resolve().parents[2]
RULES_DIR = ROOT / "rules"


def rule(rid: str = "r1", *, applies_to: str = "opportunity", when: str = "{field: status, eq: open}",
         effect: str = "{reject: true}", reason: str = '"Status is {status}"', extra: str = "") -> str:
    """One rule as YAML text (6 lines, plus ``extra``), for files built from pieces."""
    return (f"  - id: {rid}\n"
            f"    description: A test rule\n"
            f"    applies_to: {applies_to}\n"
            f"    when: {when}\n"
            f"    effect: {effect}\n"
            f"    reason: {reason}\n{extra}")


def one_rule_file(**kw: str) -> str:
    return "rules:\n" + rule(**kw)


def problems_of(text: str | bytes, name: str = "a.yaml") -> list[tuple[int, str | None, str]]:
    return [(p.line, p.rule_id, p.message) for p in check_texts([(name, text)])]


# (case, file text, expected line, expected rule id, words the message must contain)
MALFORMED = [
    ("yaml syntax", "rules:\n  - id: r1\n    description: [unclosed\n    applies_to: pair\n", 4, None,
     "not valid YAML"),
    ("tab indentation", "rules:\n\t- id: r1\n", 2, None, "not valid YAML"),
    ("unknown field", one_rule_file(when="{field: statuss, eq: open}"), 5, "r1", "unknown field 'statuss'"),
    ("field of another kind", one_rule_file(when="{field: capability_score, gt: 50}"), 5, "r1",
     "unknown field 'capability_score' for opportunity facts"),
    ("string for int", one_rule_file(when='{field: days_to_deadline, lt: "5"}'), 5, "r1",
     "days_to_deadline expects a whole number, not '5'"),
    ("float for int", one_rule_file(when="{field: days_to_deadline, lt: 4.5}"), 5, "r1", "no decimals"),
    ("bool for int", one_rule_file(when="{field: days_to_deadline, lt: true}"), 5, "r1",
     "expects a whole number, not True"),
    ("int beyond 2**53", one_rule_file(when="{field: value_min_gbp, gt: 90071992547409930}"), 5, "r1",
     "beyond"),
    ("null value", one_rule_file(when="{field: days_to_deadline, eq: ~}"), 5, "r1", "not None"),
    ("date value", one_rule_file(when="{field: notice_type, eq: 2024-01-01}"), 5, None, "dates are not values"),
    ("enum value not allowed", one_rule_file(when="{field: status, eq: live}"), 5, "r1",
     "status expects one of 'planned', 'open', 'closed', 'cancelled', 'awarded', not 'live'"),
    ("unquoted yes", one_rule_file(when="{field: vcse_suitable, eq: yes}"), 5, "r1", 'quote it, e.g. "yes"'),
    ("string for bool", one_rule_file(when='{field: is_framework, eq: "true"}'), 5, "r1",
     "is_framework expects true/false"),
    ("order op on text", one_rule_file(when="{field: status, lt: open}"), 5, "r1", "'lt' compares numbers"),
    ("order op on bool", one_rule_file(when="{field: is_framework, ge: true}"), 5, "r1",
     "'ge' compares numbers"),
    ("unknown op", one_rule_file(when="{field: status, like: open}"), 5, "r1", "unknown operator 'like'"),
    ("two ops", one_rule_file(when="{field: days_to_deadline, gt: 1, lt: 5}"), 5, "r1", "exactly one OP"),
    ("no field", one_rule_file(when="{eq: open}"), 5, "r1", "exactly one OP"),
    ("empty in", one_rule_file(when="{field: status, in: []}"), 5, "r1", "non-empty list"),
    ("in not a list", one_rule_file(when="{field: status, in: open}"), 5, "r1", "non-empty list"),
    ("in with a bad value", one_rule_file(when="{field: status, in: [open, live]}"), 5, "r1", "not 'live'"),
    ("in with a repeat", one_rule_file(when="{field: status, in: [open, open]}"), 5, "r1", "twice"),
    ("empty all", one_rule_file(when="{all: []}"), 5, "r1", "'all' takes a non-empty list"),
    ("any not a list", one_rule_file(when="{any: {field: status, eq: open}}"), 5, "r1", "'any' takes"),
    ("group with extra key", one_rule_file(when="{not: {field: status, eq: open}, field: status}"), 5, "r1",
     "must be the only key"),
    ("condition not a mapping", one_rule_file(when="status == open"), 5, "r1", "a condition is a mapping"),
    ("nested too deep", one_rule_file(when="{not: " * 20 + "{field: status, eq: open}" + "}" * 20), 5, "r1",
     "nested more than"),
    ("two effects", one_rule_file(effect="{reject: true, score: 5}"), 6, "r1", "exactly one of"),
    ("unknown effect", one_rule_file(effect="{exclude: true}"), 6, "r1", "exactly one of"),
    ("effect not a mapping", one_rule_file(effect="reject"), 6, "r1", "exactly one of"),
    ("reject false", one_rule_file(effect="{reject: false}"), 6, "r1", "write `reject: true`"),
    ("score zero", one_rule_file(effect="{score: 0}"), 6, "r1", "non-zero"),
    ("score float", one_rule_file(effect="{score: 2.5}"), 6, "r1", "not 2.5"),
    ("score too big", one_rule_file(effect="{score: 5000}"), 6, "r1", "between -1000 and 1000"),
    ("score per text field", one_rule_file(effect="{score: {per: status, weight: 1, max: 5}}"), 6, "r1",
     "not a whole-number field"),
    ("score weight zero", one_rule_file(effect="{score: {per: days_to_deadline, weight: 0, max: 5}}"), 6,
     "r1", "weight must be"),
    ("score max missing", one_rule_file(effect="{score: {per: days_to_deadline, weight: 2}}"), 6, "r1",
     "{per: FIELD, weight: N, max: M}"),
    ("flag label", one_rule_file(effect="{flag: Framework!}"), 6, "r1", "flag label"),
    ("needs_consortium false", one_rule_file(effect="{needs_consortium: no}"), 6, "r1",
     "write `needs_consortium: true`"),
    ("reason placeholder unknown", one_rule_file(reason='"Deadline in {days} days"'), 7, "r1",
     "'days' is not a field of opportunity facts"),
    ("reason placeholder of another kind", one_rule_file(reason='"{capability_score}"'), 7, "r1",
     "not a field of opportunity facts"),
    ("reason attribute access", one_rule_file(reason='"{status.__class__}"'), 7, "r1", "not a field"),
    ("reason index", one_rule_file(reason='"{status[0]}"'), 7, "r1", "not a field of opportunity facts"),
    ("reason format spec", one_rule_file(reason='"{days_to_deadline:>99999}"'), 7, "r1", "no format specs"),
    ("reason conversion", one_rule_file(reason='"{status!r}"'), 7, "r1", "no format specs"),
    ("reason positional", one_rule_file(reason='"{}"'), 7, "r1", "placeholder"),
    ("reason unbalanced", one_rule_file(reason='"Deadline } soon"'), 7, "r1", "unbalanced braces"),
    ("reason empty", one_rule_file(reason='""'), 7, "r1", "reason must be a sentence"),
    ("reason not text", one_rule_file(reason="[a, b]"), 7, "r1", "reason must be a sentence"),
    ("id uppercase", one_rule_file(rid="Deadline_Rule"), 2, "Deadline_Rule", "lowercase letters"),
    ("id not text", one_rule_file(rid="12"), 2, None, "id 12 must be"),
    ("applies_to unknown", one_rule_file(applies_to="vcse"), 4, "r1", "applies_to must be one of"),
    ("unknown rule key", one_rule_file(extra="    priority: 3\n"), 8, "r1", "unknown key 'priority'"),
    ("missing keys", "rules:\n  - id: r1\n    description: d\n", 2, "r1", "missing applies_to, when"),
    ("rule not a mapping", "rules:\n  - just words\n", 2, None, "each rule is a mapping"),
    ("top-level parameters", "parameters:\n  min_days: 5\n" + one_rule_file(), 1, None,
     "only `rules:` is allowed"),
    ("no rules key", "rule:\n" + rule(), 1, None, "one key, `rules:`"),
    ("empty rules", "rules: []\n", 1, None, "non-empty list"),
    ("empty file", "", 1, None, "one key, `rules:`"),
    ("a list at top level", "- id: r1\n", 1, None, "one key, `rules:`"),
    ("duplicate key", one_rule_file(extra="    reason: again\n"), 8, None, "key 'reason' appears twice"),
    ("python object tag", "rules: !!python/object/apply:os.system ['touch /tmp/broker-pwned']\n", 1, None,
     "tag"),
    ("python object mapping", "rules:\n  - !!python/object:builtins.dict {id: r1}\n", 2, None, "tag"),
    ("custom tag", one_rule_file(when="!cond {field: status, eq: open}"), 5, None, "tag '!cond'"),
    ("anchor", "rules:\n  - &base\n    id: r1\n", 2, None, "anchors"),
    ("alias", "x: &a 1\nrules:\n  - *a\n", 1, None, "anchors"),
    ("merge key", "rules:\n  - <<: {id: r1}\n", 2, None, "merge keys"),
    ("two documents", one_rule_file() + "---\nrules: []\n", 8, None, "not valid YAML"),
]


@pytest.mark.parametrize(("case", "text", "line", "rule_id", "words"), MALFORMED, ids=[c[0] for c in MALFORMED])
def test_malformed_file_names_file_line_rule(case: str, text: str, line: int, rule_id: str | None,
                                             words: str) -> None:
    problems = problems_of(text)
    assert problems, f"{case}: no problem found"
    assert any(p[0] == line and p[1] == rule_id and words in p[2] for p in problems), problems
    with pytest.raises(RuleError) as info:
        load_rules_from_texts([("a.yaml", text)])
    assert isinstance(info.value, BrokerError)
    assert info.value.file == "a.yaml"
    assert str(info.value).startswith("a.yaml:")


def test_python_tags_never_run_code(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    text = f"rules: !!python/object/apply:os.system ['touch {marker}']\n"
    assert problems_of(text)
    assert not marker.exists()


def test_not_utf8() -> None:
    assert problems_of(one_rule_file().encode("utf-8") + b"# \xff\xfe\n") == [(1, None, "not UTF-8 text")]


def test_duplicate_id_across_files_names_both() -> None:
    problems = check_texts([("b.yaml", one_rule_file(rid="same")), ("a.yaml", one_rule_file(rid="same"))])
    # a.yaml sorts first, so the copy in b.yaml is the duplicate
    assert [(p.file, p.line, p.rule_id) for p in problems] == [("b.yaml", 2, "same")]
    assert "already used at a.yaml:2" in problems[0].message


def test_check_collects_every_problem_in_order() -> None:
    bad_a = "rules:\n" + rule("a1", when="{field: nope, eq: 1}") + rule("a2", effect="{score: 0}",
                                                                         reason='"{nope}"')
    bad_b = "rules:\n  - id: b1\n"
    problems = check_texts([("b.yaml", bad_b), ("a.yaml", bad_a)])
    assert [(p.file, p.line, p.rule_id) for p in problems] == [
        ("a.yaml", 5, "a1"), ("a.yaml", 12, "a2"), ("a.yaml", 13, "a2"), ("b.yaml", 2, "b1")]
    with pytest.raises(RuleError) as info:
        load_rules_from_texts([("b.yaml", bad_b), ("a.yaml", bad_a)])
    assert (info.value.file, info.value.line, info.value.rule_id) == ("a.yaml", 5, "a1")
    assert len(info.value.problems) == 4
    assert "and 3 more" in str(info.value)


def test_stored_names_must_be_plain() -> None:
    for name in ("../etc/x.yaml", "sub/a.yaml", "a.txt", ".hidden.yaml"):
        problems = check_texts([(name, one_rule_file())])
        assert problems and "plain" in problems[0].message, name
    assert "twice" in check_texts([("a.yaml", one_rule_file()), ("a.yaml", one_rule_file())])[0].message
    assert "no rule files" in check_texts([])[0].message


def test_directory_problems(tmp_path: Path) -> None:
    assert "no such rules directory" in check_rules(tmp_path / "missing")[0].message
    (tmp_path / "notes.txt").write_text("rules: []")
    assert "no rule files" in check_rules(tmp_path)[0].message
    with pytest.raises(RuleError):
        load_rules(tmp_path)


def test_load_directory_order_bytes_and_hashes(tmp_path: Path) -> None:
    texts = {"b.yml": one_rule_file(rid="b1"), "a.yaml": one_rule_file(rid="a1") + rule("a2"),
             "c.yaml": "# comment first\n" + one_rule_file(rid="c1", applies_to="party",
                                                           when="{field: employees, ge: 10}",
                                                           reason='"{employees} staff"')}
    for name, text in texts.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    (tmp_path / "README.md").write_text("ignored")
    (tmp_path / "sub.yaml").mkdir()  # a directory, not a file: ignored
    rs = load_rules(tmp_path)
    assert [f.name for f in rs.files] == ["a.yaml", "b.yml", "c.yaml"]
    assert [r.id for r in rs.rules] == ["a1", "a2", "b1", "c1"]
    assert [r.index for r in rs.rules] == [0, 1, 2, 3]
    assert [r.id for r in rs.for_kind("party")] == ["c1"]
    assert rs.get("c1").line == 3 and rs.get("c1").file == "c.yaml"
    for f in rs.files:
        assert f.data == texts[f.name].encode("utf-8")
        assert f.sha256 == hashlib.sha256(f.data).hexdigest()
    combined = "".join(f"{f.name}\n{f.sha256}\n" for f in rs.files).encode()
    assert rs.sha256 == hashlib.sha256(combined).hexdigest()
    # the audit's replay from stored bytes gives the same rule set, whatever order the texts come in
    again = load_rules_from_texts([(f.name, f.data) for f in reversed(rs.files)])
    assert again.sha256 == rs.sha256
    assert [(r.id, r.when, r.effect, r.reason, r.index) for r in again.rules] == \
        [(r.id, r.when, r.effect, r.reason, r.index) for r in rs.rules]
    # one changed byte changes the hash
    edited = [(f.name, f.data.replace(b"A test rule", b"A test rulE")) for f in rs.files]
    assert load_rules_from_texts(edited).sha256 != rs.sha256


def test_effects_and_inputs() -> None:
    text = "rules:\n" + rule("w", applies_to="pair", when="{field: keyword_hits, gt: 0}",
                             effect="{score: {per: keyword_hits, weight: 5, max: 20}}",
                             reason='"{keyword_hits} keywords, {status}"')
    r = load_rules_from_texts([("a.yaml", text)]).get("w")
    assert r.inputs == ("keyword_hits", "status")
    assert [r.effect.points_for({"keyword_hits": n}) for n in (1, 3, 4, 9)] == [5, 15, 20, 20]
    assert r.effect.to_dict() == {"score": {"per": "keyword_hits", "weight": 5, "max": 20}}


def test_default_rules_are_clean() -> None:
    assert check_rules(RULES_DIR) == []
    rs = load_rules(RULES_DIR)
    assert {r.applies_to for r in rs.rules} == set(FACT_KINDS)
    assert {r.effect.kind for r in rs.rules} == set(EFFECTS)


def test_vocabulary_leaves_room_for_engine_fields() -> None:
    for kind, fields in VOCABULARY.items():
        names = [f.name for f in fields]
        assert len(names) == len(set(names)), kind
        assert not set(names) & set(RESERVED_FIELDS), kind


def test_readme_documents_every_field_op_and_effect() -> None:
    readme = (RULES_DIR / "README.md").read_text(encoding="utf-8")
    for fields in VOCABULARY.values():
        for f in fields:
            assert f"`{f.name}`" in readme, f.name
            for v in f.values:
                assert f"`{v}`" in readme, (f.name, v)
    for word in (*OPS, "all", "any", "not", *EFFECTS, "per", "weight", "max", *FACT_KINDS):
        assert f"`{word}" in readme, word
    assert "broker rules check rules/" in readme


def test_readme_field_tables_are_generated_from_the_vocabulary() -> None:
    result = subprocess.run([sys.executable, str(RULES_DIR / "vocabulary_table.py"), "--check"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
