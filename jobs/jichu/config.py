"""Typed configuration: profiles, agency extracts and the field-authority registry.

Everything under ``conf/`` is YAML validated by pydantic models that forbid unknown keys, so a
typo fails with a message naming the file and the key. Which agency is authoritative for which
field lives here, never in code.
"""

from __future__ import annotations

import hashlib
import os
import re
from functools import cache
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

ROOT = Path(__file__).resolve().parents[2]
"""The project checkout: conf/, dags/, sql/ and var/ live here."""

AGENCIES = {
    "gongan": "公安",
    "weijian": "卫健",
    "minzheng": "民政",
    "renshe": "人社",
    "jiaoyu": "教育",
    "shichang": "市场监管",
    "bianban": "编办",
    "shuiwu": "税务",
    "tongji": "统计",
    "diaocha": "调查总队",
    "caizheng": "财政",
    "haiguan": "海关",
    "ziran": "自然资源",
}

Agency = Literal[tuple(AGENCIES)]  # type: ignore[valid-type]
FieldType = Literal["string", "name", "date", "code", "ric", "division", "uscc", "orgcode", "regno", "org_name", "industry", "office"]
CodeListName = Literal["sex", "ethnicity", "marital_status", "education", "org_type", "registration_status"]
REGISTER = "register"
"""An `authority` that follows the entity's identifier: the agency that issued it (see Domain.registers)."""


class ConfigError(ValueError):
    """A configuration file is missing or invalid; the message names the file and the key."""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- profiles ---------------------------------------------------------------------------------


class SparkProfile(Strict):
    master: str = "local[2]"
    conf: dict[str, str] = Field(default_factory=dict)


class MailProfile(Strict):
    """E-mail of the reports after each reconciliation run. Host, port, TLS and sender are the Airflow
    connection's, never the profile's."""

    conn_id: str = Field("jichu_smtp", description="Airflow SMTP connection")
    to: dict[str, list[str]] = Field(
        default_factory=dict, description="agency code (or `province`, the data authority) -> addresses; empty: no e-mail"
    )


class PostgresProfile(Strict):
    """A PostgreSQL server that jichu runs itself on this machine (jichu.services): the local profile's."""

    home: str = Field(description="folder of the server's data and log")
    port: int = Field(description="TCP port on 127.0.0.1")
    databases: list[str] = Field(default_factory=lambda: ["metastore", "airflow"], description="created on first start")


class Profile(Strict):
    """Where things run. `local` embeds everything; `cluster` points the same code elsewhere."""

    name: str
    spark: SparkProfile = SparkProfile()
    warehouse: str = Field(description="Delta tables; a path under var/ or a URI")
    metastore_url: str = Field(description="JDBC URL of the Hive metastore database")
    metastore_driver: str = "org.postgresql.Driver"
    metastore_user: str = ""
    metastore_password: str = ""
    airflow_db_url: str
    postgres: PostgresProfile | None = Field(
        None, description="the server jichu starts on this machine for the metastore and Airflow; none: "
        "they are elsewhere (metastore_url, airflow_db_url)"
    )
    landing: str = Field(description="agency deliveries: <landing>/<agency>/<batch>/")
    outbox: str = Field(description="reconciliation reports: <outbox>/<agency>/<batch>/")
    mail: MailProfile = MailProfile()
    schedule: str | None = Field(
        None, description="when the first DAG of the chain runs (an Airflow schedule such as @monthly); null: "
        "only when triggered (jichu run, jichu demo). The other DAGs run on the assets they consume."
    )
    id_salt: str = Field(description="salt for entity ids, so ids do not reveal ID numbers")


# --- agency extracts --------------------------------------------------------------------------


class FileSpec(Strict):
    name: str = Field(description="file name inside the delivery folder")
    format: Literal["csv", "jsonl", "xlsx"] = "csv"
    encoding: str = "utf-8"
    delimiter: str = ","


class FieldMapping(Strict):
    column: str = Field(description="the agency's column name")
    also: list[str] = Field(default_factory=list, description="columns read, in order, where `column` is empty")
    pattern: str | None = Field(
        None, description="regular expression with one group: the part of the value that is the field (e.g. the "
        "county in a 12-digit statistical division code); a value that does not match is read whole"
    )
    required: bool = False
    formats: list[str] = Field(default_factory=list, description="Spark date patterns, tried in order")
    codes: dict[str, str] = Field(default_factory=dict, description="agency code -> national code")


class CountBounds(Strict):
    min: int = 0
    max: int | None = None


class Extract(Strict):
    """One agency extract: how its file looks and how its columns map to domain fields."""

    agency: Agency
    extract: str
    domain: str
    description: str = ""
    kind: Literal["snapshot", "events"] = Field(
        description="snapshot: each delivery lists every record the agency holds, so a record it stops listing is "
        "retracted and a row repeated from its previous delivery is carried as unchanged; events: each delivery "
        "holds new records only (births, registrations), which never retract"
    )
    schema_version: int = 1
    file: FileSpec
    fields: dict[str, FieldMapping]
    roles: dict[str, dict[str, FieldMapping]] = Field(
        default_factory=dict,
        description="rows that describe several entities (e.g. husband and wife): each role's own field mappings, "
        "merged over `fields`; each role becomes one record, its record_ref suffixed #<role>",
    )
    observed_at: FieldMapping | None = Field(
        None, description="the date the record's facts refer to (e.g. a registration date); default the batch date"
    )
    ignore_columns: list[str] = Field(default_factory=list, description="known columns not used")
    record_key: str | None = Field(
        None, description="the column that is the agency's own key of a record (出生医学证明编号, 学籍号, a credit "
        "code), shown in its reconciliation reports as 贵单位记录编号; none: the extract has no such key. A "
        "snapshot needs one: it is the record's identity across deliveries (a row whose key is empty is "
        "known by its values instead)"
    )
    rows: CountBounds = CountBounds()

    @model_validator(mode="after")
    def _snapshot_has_a_key(self) -> Extract:
        if self.kind == "snapshot" and not self.record_key:
            raise ValueError("a snapshot extract needs record_key: the column that identifies a record across deliveries")
        return self

    @property
    def key(self) -> str:
        return f"{self.agency}__{self.extract}"

    def mappings(self) -> dict[str | None, dict[str, FieldMapping]]:
        """Field mappings per role (one entry, role None, for an extract with one entity per row)."""
        if not self.roles:
            return {None: dict(self.fields)}
        return {role: {**self.fields, **own} for role, own in self.roles.items()}


# --- domains and the field-authority registry -------------------------------------------------


class FieldRule(Strict):
    """One field of a domain's entity: its type and its single source of record."""

    label: str = Field(description="the field's name in agencies' reports (字段), in Chinese")
    type: FieldType = "string"
    code_list: CodeListName | None = Field(None, description="national code list of a `code` field (conf/codes/)")
    authority: Agency | Literal["register"] = Field(
        description="the source of record; `register`: the agency that issued the entity's identifier (registers)"
    )
    fallback: list[Agency] = Field(
        default_factory=list, description="agencies used, in order, only where the authority has no value"
    )
    severity: Literal["critical", "major", "minor"] = "major"
    completeness: float = Field(0.0, ge=0, le=1, description="minimum share of entities with a value")
    doubt: bool = Field(
        True,
        description="two or more other agencies agreeing against the authority put its value in doubt "
        "(SUSPECTED_SOURCE_ERROR); false where the others copy the authority's value and keep it after it "
        "changes (addresses, registered names): their agreement is a shared stale copy, not evidence",
    )


class Registers(Strict):
    """Where the source of record follows the entity's identifier: the agency that issued it, told by the
    identifier's first character (GB 32100: 9 market regulation, 1 establishment office, 5 civil affairs)."""

    field: str = Field(description="the identifier field, e.g. uscc")
    agencies: dict[str, Agency] = Field(min_length=1, description="first character -> issuing agency")


class ReferenceLinkage(Strict):
    """Where `match` finds nothing: the linkage engine, with a spec (conf/linkage) whose columns are
    made on each side by Spark SQL expressions. A record links when exactly one published entity
    scores as a match."""

    spec: str = Field(description="linkage spec, conf/linkage/<spec>.yaml")
    this: dict[str, str] = Field(description="spec column -> Spark SQL over this domain's wide record")
    published: dict[str, str] = Field(description="spec column -> Spark SQL over the published table")


class Reference(Strict):
    """A column of another base database that an entity points to through one of its fields, e.g. the
    person (population) whose ID number a legal representative carries. References resolve in order,
    so one may match on a reference before it."""

    domain: str = Field(description="the base database whose published table is read")
    match: dict[str, str] = Field(min_length=1, description="this domain's column -> the published column it equals")
    column: str = Field(description="the published column taken (entity_id: the entity itself)")
    linkage: ReferenceLinkage | None = Field(None, description="the engine, for what `match` does not find")
    completeness: float = Field(0.0, ge=0, le=1, description="minimum share of entities the reference resolves for")


class EntityRule(Strict):
    """A check across one entity's golden record (多元校核 beyond equal values): where `when` holds, the
    value of `field` is a discrepancy for the agency it came from, with `evidence` as the golden value
    that contradicts it (e.g. a tax status of 正常 against a register's 注销)."""

    code: str = Field(pattern=r"^[A-Z][A-Z0-9_]+$", description="the rule code discrepancies carry")
    field: str = Field(description="the questioned value: its agency receives the discrepancy")
    evidence: str = Field(description="the golden field that contradicts it")
    when: str = Field(
        description="Spark SQL over the entity's wide record: one column per field, <field>_source for its "
        "agency, and batch_date, the date of the batch being verified"
    )
    severity: Literal["critical", "major", "minor"] = "major"
    description: str = ""


class Domain(Strict):
    domain: str
    label: str = Field(description="the base database's name in agencies' reports, in Chinese")
    entity: str = Field(description="name of the published entity table, e.g. person")
    id_prefix: str = Field(min_length=1, max_length=2)
    keys: list[str] = Field(min_length=1, description="deterministic resolution keys, in order")
    linkage: str | None = Field(None, description="linkage spec (conf/linkage/<name>.yaml) for records without a key")
    registers: Registers | None = None
    fields: dict[str, FieldRule]
    references: dict[str, Reference] = Field(
        default_factory=dict, description="columns the published record takes from other base databases"
    )
    rules: list[EntityRule] = Field(default_factory=list, description="checks across an entity's fields")
    rows: CountBounds = CountBounds()

    @model_validator(mode="after")
    def _keys_are_fields(self) -> Domain:
        missing = [k for k in self.keys if k not in self.fields]
        if missing:
            raise ValueError(f"keys {missing} are not declared under fields")
        no_list = [n for n, r in self.fields.items() if (r.type == "code") != (r.code_list is not None)]
        if no_list:
            raise ValueError(f"fields {no_list}: a `code` field names its code_list, and only a code field has one")
        unknown = sorted({f for r in self.rules for f in (r.field, r.evidence)} - set(self.fields) - set(self.references))
        if unknown:
            raise ValueError(f"rules name fields {unknown} that are not declared under fields or references")
        if self.rules and any(r.field not in self.fields for r in self.rules):
            raise ValueError("a rule's `field` is a field of the domain: its agency receives the discrepancy")
        clash = sorted(set(self.references) & set(self.fields))
        if clash:
            raise ValueError(f"references {clash} have the names of fields")
        before = set(self.fields)
        for name, ref in self.references.items():
            bad_match = sorted(set(ref.match) - before)
            if bad_match:
                raise ValueError(f"reference {name} matches on {bad_match}: neither fields nor references before it")
            before.add(name)
        by_register = [n for n, r in self.fields.items() if r.authority == REGISTER]
        if by_register and (self.registers is None or self.registers.field not in self.fields):
            raise ValueError(f"fields {by_register} have authority `register`: declare `registers` with one of the fields")
        return self

    @property
    def published_table(self) -> str:
        return f"published.{self.domain}__{self.entity}"


class CodeList(Strict):
    """A national code list: code -> label, plus other spellings agencies use for a code."""

    standard: str = Field(description="e.g. GB/T 2261.1-2003")
    codes: dict[str, str]
    aliases: dict[str, str] = Field(default_factory=dict, description="other spelling -> code")

    def lookup(self) -> dict[str, str]:
        """Every accepted spelling (code, label, alias) -> code."""
        return {**{label: code for code, label in self.codes.items()}, **self.aliases, **{c: c for c in self.codes}}


# --- loading ----------------------------------------------------------------------------------

_ENV = re.compile(r"\$\{(\w+)(?::-([^}]*))?\}")


def derived_port(var: Path) -> int:
    """A private port for the local PostgreSQL of a state folder: stable for the folder, different for
    another one (two checkouts, or a test run beside a demo, never share a server)."""
    return 20000 + int(hashlib.sha256(str(var).encode()).hexdigest()[:8], 16) % 20000


def _expand_env(text: str, source: Path) -> str:
    # Defaults the environment may override: the state folder, and the local server's port derived from it.
    known = {"JICHU_VAR": str(var_dir()), "JICHU_PG_PORT": str(derived_port(var_dir())), **os.environ}

    def sub(m: re.Match) -> str:
        value = known.get(m.group(1), m.group(2))
        if value is None:
            raise ConfigError(f"{source}: environment variable {m.group(1)} is not set")
        return value

    return _ENV.sub(sub, text)


def load_yaml_model(path: Path, model: type[BaseModel], *, expand_env: bool = False):
    """Parse one YAML file into `model`; errors name the file and the offending key."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    if expand_env:
        text = _expand_env(text, path)
    try:
        data = yaml.safe_load(text) or {}
        return model.model_validate(data)
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from None
    except ValidationError as e:
        problems = "; ".join(
            f"key '{'.'.join(str(p) for p in err['loc']) or '(top level)'}': {err['msg']}" for err in e.errors()
        )
        raise ConfigError(f"{path}: {problems}") from None


def conf_dir() -> Path:
    return Path(os.environ.get("JICHU_CONF", ROOT / "conf"))


def var_dir() -> Path:
    """Run-time state (tables, metastore, Airflow database, reports). JICHU_VAR overrides."""
    return Path(os.environ.get("JICHU_VAR", ROOT / "var")).resolve()


def jars_dir() -> Path:
    """Fetched JVM jars; always in the checkout, shared by every JICHU_VAR."""
    return ROOT / "var" / "jars"


def profile_name() -> str:
    return os.environ.get("JICHU_PROFILE", "local")


def load_profile(name: str | None = None) -> Profile:
    name = name or profile_name()
    return load_yaml_model(conf_dir() / "profiles" / f"{name}.yaml", Profile, expand_env=True)


@cache
def _load_domain(conf: Path, name: str) -> Domain:
    return load_yaml_model(conf / "domains" / f"{name}.yaml", Domain)


def load_domain(name: str) -> Domain:
    return _load_domain(conf_dir(), name)


@cache
def _load_code_list(conf: Path, name: str) -> CodeList:
    return load_yaml_model(conf / "codes" / f"{name}.yaml", CodeList)


def load_code_list(name: str) -> CodeList:
    return _load_code_list(conf_dir(), name)


@cache
def _load_extracts(conf: Path) -> tuple[Extract, ...]:
    return tuple(load_yaml_model(p, Extract) for p in sorted((conf / "extracts").glob("*.yaml")))


def load_extracts(domain: str | None = None) -> list[Extract]:
    """All extract adapters, optionally of one domain; each checked against its domain's fields."""
    result = []
    for ex in _load_extracts(conf_dir()):
        if domain and ex.domain != domain:
            continue
        dom = load_domain(ex.domain)
        unknown = sorted({f for m in ex.mappings().values() for f in m} - set(dom.fields))
        if unknown:
            raise ConfigError(
                f"{conf_dir() / 'extracts' / (ex.key + '.yaml')}: key 'fields': {unknown} are not fields of "
                f"domain '{ex.domain}' (conf/domains/{ex.domain}.yaml)"
            )
        result.append(ex)
    return result
