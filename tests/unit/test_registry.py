"""Field types come from registries that domain packages fill; the core names no domain's type, code list
or agency; conf orders the base databases by `depends_on`."""

import ast
import shutil
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from jichu.config import ROOT, AGENCIES, ConfigError, domain_names, entity_types, load_entity
from jichu.core import registry
from jichu.core.standardize import clean_text


def _literals(path: Path) -> set[str]:
    """The string constants of a module that are not docstrings or comments."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = {
        id(node.body[0].value) for node in ast.walk(tree)
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef))
        and node.body and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)
    }
    return {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)
            and id(n) not in docstrings}


def test_no_core_module_names_a_domains_field_type_code_list_or_agency():
    core_types = {"string", "date", "code", "number"}
    domain_types = set(registry.field_types()) - core_types
    code_lists = {p.stem for p in (ROOT / "conf" / "codes").glob("*.yaml")}
    assert {"ric", "uscc", "division"} <= domain_types and "org_type" in code_lists
    named = {}
    for path in sorted((ROOT / "jobs" / "jichu" / "core").glob("*.py")):
        found = _literals(path) & (domain_types | code_lists | set(AGENCIES) | set(domain_names()))
        if found:
            named[path.name] = sorted(found)
    assert named == {}


def test_every_field_type_a_domain_uses_is_registered_with_its_standardiser(spark):
    for entity in entity_types():
        for field, rule in entity.fields.items():
            kind = registry.field_type(rule.type)
            assert kind.name == rule.type and callable(kind.standardise), field
    assert registry.field_type("ric").candidate and registry.field_type("date").spark_type == "date"
    with pytest.raises(KeyError, match="unknown field type 'passport'.*registered: code, date"):
        registry.field_type("passport")


def _conf_copy(tmp_path: Path) -> Path:
    conf = tmp_path / "conf"
    shutil.copytree(ROOT / "conf", conf)
    return conf


def test_an_unknown_field_type_or_code_list_names_the_file_and_key(tmp_path, monkeypatch):
    conf = _conf_copy(tmp_path)
    path = conf / "domains" / "population.yaml"
    text = path.read_text(encoding="utf-8")
    monkeypatch.setenv("JICHU_CONF", str(conf))
    path.write_text(text.replace("    type: ric\n", "    type: passport\n", 1), encoding="utf-8")
    with pytest.raises(ConfigError) as e:
        load_entity("population", "person")
    assert str(path) in str(e.value) and "entities.person.fields.id_number.type" in str(e.value) and "ric" in str(e.value)
    path.write_text(text.replace("code_list: sex", "code_list: gender"), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"fields.sex.code_list.*gender"):
        load_entity("population", "person")
    path.write_text(text.replace("        code_list: sex\n", ""), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"fields.sex': a field of type 'code' names code_list"):
        load_entity("population", "person")


def test_base_databases_come_after_what_they_depend_on_and_a_cycle_is_refused(tmp_path, monkeypatch):
    assert domain_names() == ["population", "legal_entities"]
    conf = _conf_copy(tmp_path)
    monkeypatch.setenv("JICHU_CONF", str(conf))
    path = conf / "domains" / "population.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("depends_on: []", "depends_on: [legal_entities]"),
                    encoding="utf-8")
    with pytest.raises(ConfigError, match="cycle among legal_entities, population"):
        domain_names()
    conf = _conf_copy(tmp_path / "other")  # loaded domains are cached per conf folder
    monkeypatch.setenv("JICHU_CONF", str(conf))
    path = conf / "domains" / "population.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("depends_on: []", "depends_on: [macro]"), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"key 'depends_on': 'macro'"):
        load_entity("population", "person")


@pytest.mark.parametrize("delivered, expected", [
    ("张\u200b伟", "张伟"),            # zero-width space
    ("\ufeff420106", "420106"),       # a stray byte-order mark
    ("王\u200d芳\u00ad", "王芳"),       # zero-width joiner, soft hyphen
    ("\u2060 李 娜 \u200e", "李 娜"),   # word joiner and a direction mark around spaces
    ("\u200b", None),                  # nothing visible: no value
])
def test_text_cleaning_removes_what_no_one_can_see(spark, delivered, expected):
    assert spark.range(1).select(clean_text(F.lit(delivered))).first()[0] == expected
