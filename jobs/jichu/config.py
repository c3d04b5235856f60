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
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

ROOT = Path(__file__).resolve().parents[2]
"""The project checkout: conf/, dags/, sql/ and var/ live here."""

AGENCIES: dict[str, str] = yaml.safe_load(
    (Path(os.environ.get("JICHU_CONF", ROOT / "conf")) / "agencies.yaml").read_text(encoding="utf-8"))
"""conf/agencies.yaml: agency code -> the agency's name in reports."""

Agency = Literal[tuple(AGENCIES)]  # type: ignore[valid-type]


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

    @model_validator(mode="after")
    def _json_is_unicode(self) -> "FileSpec":
        # JSON text is UTF-8 (RFC 8259), and Spark's line reader reads nothing else.
        if self.format == "jsonl" and self.encoding.lower().replace("_", "-") not in ("utf-8", "utf8"):
            raise ValueError(f"a JSON-lines file is UTF-8, not {self.encoding}")
        return self


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
    unit: str | None = Field(None, description="the unit a `number` column is delivered in where its values carry "
                             "none (conf/units.yaml); none: the field's own unit")
    crs: str | None = Field(None, description="the coordinate reference system a `geometry` column is drawn in "
                            "(e.g. EPSG:4326); none: EPSG:4490 (CGCS2000), the one geometries are kept in")


class CountBounds(Strict):
    min: int = 0
    max: int | None = None


class Extract(Strict):
    """One agency extract: how its file looks and how its columns map to domain fields."""

    agency: Agency
    extract: str
    domain: str
    entity: str = Field(description="the entity type of the domain its rows are records of")
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
    valid_from: FieldMapping | None = Field(
        None, description="the date from which the record's values are valid, as the source states it (a division "
        "code's 启用 year); a bare year reads as its first day. Golden history intervals then come from the source"
    )
    valid_to: FieldMapping | None = Field(
        None, description="the date the record's values stop being valid (exclusive: a code's 停用 year), as the "
        "source states it; empty: still valid"
    )
    vintage: FieldMapping | None = Field(
        None, description="the release status of the record's values: `codes` map the agency's labels (初值, 快报, "
        "1, P) to conf/codes/release_status.yaml (preliminary, revised, final); verify compares like with like"
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
    """One field of a domain's entity: its type, its single source of record and its personal-data class."""

    label: str = Field(description="the field's name in agencies' reports (字段), in Chinese")
    type: str = Field("string", description="a field type of jichu.core.registry: the core's (string, date, code) "
                      "or a domain package's (jobs/jichu/domains/<domain>/)")
    code_list: str | None = Field(None, description="national code list of a `code` field: conf/codes/<code_list>.yaml")
    unit: str | None = Field(None, description="the unit a `number` field is kept in (conf/units.yaml)")
    tolerance: float = Field(0.0, ge=0, description="a `number` field: two values that differ by no more than this, "
                             "in its unit, are one value")
    authority: str = Field(
        description="the source of record: an agency, or the name of one of the domain's `authorities` (a source of "
        "record looked up per entity, e.g. the register that issued its credit code)"
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
    pii: str | None = Field(
        None, description="the field's personal-data class, a key of core.masking.MASKS (id_number, name, "
        "personal_date, affiliation): analysts' tables hold it masked by that class's function; none: not personal data"
    )

    @field_validator("pii")
    @classmethod
    def _pii_is_a_class(cls, value: str | None) -> str | None:
        from jichu.core.masking import MASKS  # the registry lives beside the masking functions

        if value is not None and value not in MASKS:
            raise ValueError(f"unknown personal-data class {value!r}; known: {', '.join(sorted(MASKS))}")
        return value


class AuthorityLookup(Strict):
    """A source of record looked up per entity: the key that `key` makes of the entity's `field` names the
    agency, in `agencies` or in a `table`. An agency is the source of record for an entity where the key,
    as that agency itself states the field, names it: the register that issued a credit code (GB 32100's
    first character: 9 市场监管, 1 编办, 5 民政), or an indicator's agency in the indicator catalogue."""

    field: str = Field(description="the entity's field that holds the key, e.g. uscc")
    key: str | None = Field(None, description="Spark SQL over the field (by its name) that gives the key, e.g. "
                            "substring(uscc, 1, 1); none: the field's value itself")
    agencies: dict[str, Agency] = Field(default_factory=dict, description="key -> agency")
    table: str | None = Field(None, description="instead of `agencies`: a table with the columns key_column and "
                              "agency_column (e.g. a published catalogue); until it exists, no agency is the source")
    key_column: str = "key"
    agency_column: str = "agency"

    @model_validator(mode="after")
    def _one_source(self) -> AuthorityLookup:
        if bool(self.agencies) == bool(self.table):
            raise ValueError("give either `agencies` or `table`")
        return self

    @property
    def key_sql(self) -> str:
        return self.key or f"`{self.field}`"


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
    entity: str = Field(description="the entity type of that base database whose published table is read")
    match: dict[str, str] = Field(min_length=1, description="this domain's column -> the published column it equals")
    column: str = Field(description="the published column taken (entity_id: the entity itself)")
    linkage: ReferenceLinkage | None = Field(None, description="the engine, for what `match` does not find")
    completeness: float = Field(0.0, ge=0, le=1, description="minimum share of entities the reference resolves for")


class Rule(Strict):
    """A check beyond equal values (多元校核): the value of `field` that it questions is a discrepancy for the
    agency it came from, with evidence that contradicts it. Either `when`, over one entity's golden record
    (a tax status of 正常 against a register's 注销, with `evidence` the golden field), or `check`, a rule
    that a domain package registers (jichu.core.registry.register_rule) over the domain's whole published
    set and the references it names (components that do not sum to their total, a point outside its county)."""

    code: str = Field(pattern=r"^[A-Z][A-Z0-9_]+$", description="the rule code discrepancies carry")
    field: str = Field(description="the questioned value: its agency receives the discrepancy")
    evidence: str | None = Field(None, description="the golden field that contradicts it; a `check` may give its "
                                 "own evidence instead")
    when: str | None = Field(
        None, description="Spark SQL over the entity's wide record: one column per field, <field>_source for its "
        "agency, and batch_date, the date of the batch being verified"
    )
    check: str | None = Field(None, description="the name of a registered rule over the domain's published set")
    severity: Literal["critical", "major", "minor"] = "major"
    description: str = ""

    @model_validator(mode="after")
    def _when_or_check(self) -> Rule:
        if (self.when is None) == (self.check is None):
            raise ValueError("give either `when` or `check`")
        if self.when is not None and self.evidence is None:
            raise ValueError("a `when` rule names its `evidence` field")
        return self


class EntityType(Strict):
    """One entity type of a base database (persons; divisions, boundaries and addresses; indicators and
    figures): its keys, fields, sources of record and rules, and its own tables. It is what every stage
    after landing processes; `domain` and `entity` are its base database's and its own name, set by
    `Domain` from the conf file."""

    domain: str
    entity: str = Field(pattern=r"^[a-z][a-z0-9_]*$", description="the entity type's name, e.g. person")
    label: str = Field("", description="the entity type's name in Chinese, e.g. 人员")
    id_prefix: str = Field(min_length=1, max_length=2)
    keys: list[str | list[str]] = Field(
        min_length=1, description="deterministic resolution keys, in order; a list of fields is one composite key "
        "(indicator, area and period)"
    )
    linkage: str | None = Field(None, description="linkage spec (conf/linkage/<name>.yaml) for records without a key")
    authorities: dict[str, AuthorityLookup] = Field(
        default_factory=dict, description="sources of record looked up per entity, by name: a field's `authority` "
        "may name one"
    )
    fields: dict[str, FieldRule]
    references: dict[str, Reference] = Field(
        default_factory=dict, description="columns the published record takes from other base databases"
    )
    rules: list[Rule] = Field(default_factory=list, description="checks across an entity's fields or the whole set")
    rows: CountBounds = CountBounds()

    @model_validator(mode="after")
    def _keys_are_fields(self) -> EntityType:
        missing = [c for _, columns in self.key_sets for c in columns if c not in self.fields]
        if missing:
            raise ValueError(f"keys {missing} are not declared under fields")
        unknown = sorted({f for r in self.rules for f in (r.field, r.evidence) if f} - set(self.fields) - set(self.references))
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
        unknown = sorted(n for n, r in self.fields.items() if r.authority not in AGENCIES and r.authority not in self.authorities)
        if unknown:
            raise ValueError(f"fields {unknown}: `authority` is neither an agency nor one of `authorities`")
        clash = sorted(set(self.authorities) & set(AGENCIES))
        if clash:
            raise ValueError(f"authorities {clash} have the names of agencies")
        no_field = sorted(n for n, a in self.authorities.items() if a.field not in self.fields)
        if no_field:
            raise ValueError(f"authorities {no_field}: `field` is not a field of the domain")
        return self

    @property
    def key_names(self) -> list[str]:
        """The deterministic keys' names, as the key registry holds them in key_field."""
        return [name for name, _ in self.key_sets]

    @property
    def key_sets(self) -> list[tuple[str, list[str]]]:
        """Each deterministic key as (name, fields): a composite key is named by its fields joined with +."""
        return [(k, [k]) if isinstance(k, str) else ("+".join(k), list(k)) for k in self.keys]

    def table(self, layer: str, part: str = "") -> str:
        """The name of one of the entity type's tables: <layer>.<domain>__<entity>[_<part>], e.g.
        resolved.population__person_links."""
        return f"{layer}.{self.domain}__{self.entity}" + (f"_{part}" if part else "")

    @property
    def published_table(self) -> str:
        return self.table("published")


class Domain(Strict):
    """A base database: conf/domains/<domain>.yaml."""

    domain: str
    label: str = Field(description="the base database's name in agencies' reports, in Chinese")
    depends_on: list[str] = Field(
        default_factory=list, description="base databases whose published tables this one reads: its DAG runs "
        "when they publish (their Assets), and every list of domains is in this order"
    )
    entities: dict[str, EntityType] = Field(
        min_length=1, description="entity type name -> its keys, fields and rules; processed in this order"
    )

    @model_validator(mode="before")
    @classmethod
    def _name_the_entities(cls, data):
        """Each entity type knows its base database's name and its own."""
        if isinstance(data, dict) and isinstance(data.get("entities"), dict):
            data = {**data, "entities": {
                name: {**body, "domain": data.get("domain"), "entity": name} if isinstance(body, dict) else body
                for name, body in data["entities"].items()}}
        return data

    @model_validator(mode="after")
    def _prefixes_differ(self) -> Domain:
        prefixes = [e.id_prefix for e in self.entities.values()]
        if len(set(prefixes)) != len(prefixes):
            raise ValueError(f"entity types share an id_prefix ({', '.join(prefixes)}): entity ids must tell them apart")
        return self

    @property
    def published_tables(self) -> list[str]:
        return [e.published_table for e in self.entities.values()]



class Unit(Strict):
    dimension: str
    factor: float = Field(gt=0, description="how many of the dimension's base unit one unit is")


class Units(Strict):
    units: dict[str, Unit]


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
    path = conf / "domains" / f"{name}.yaml"
    domain = load_yaml_model(path, Domain)
    _check_against_registry(domain, path, conf)
    return domain


def _check_against_registry(domain: Domain, path: Path, conf: Path) -> None:
    """What pydantic cannot know: that each field's type is registered (the core's or a domain
    package's), that a type which reads a code list has one in conf/codes, and that depends_on names
    base databases."""
    from jichu.core.registry import field_types

    types = field_types()
    for entity in domain.entities.values():
        for name, rule in entity.fields.items():
            where = f"{path}: key 'entities.{entity.entity}.fields.{name}"
            if rule.type not in types:
                raise ConfigError(f"{where}.type': unknown field type {rule.type!r}; "
                                  f"registered: {', '.join(sorted(types))}")
            if types[rule.type].needs_code_list != (rule.code_list is not None):
                raise ConfigError(f"{where}': a field of type {rule.type!r} "
                                  f"{'names' if types[rule.type].needs_code_list else 'has no'} code_list")
            if rule.unit is not None and rule.unit not in _load_units(conf):
                raise ConfigError(f"{where}.unit': {rule.unit!r} is not in {conf / 'units.yaml'}")
            if rule.code_list is not None and not (conf / "codes" / f"{rule.code_list}.yaml").exists():
                raise ConfigError(f"{where}.code_list': no code list {conf / 'codes' / rule.code_list}.yaml")
    for other in domain.depends_on:
        if not (conf / "domains" / f"{other}.yaml").exists() or other == domain.domain:
            raise ConfigError(f"{path}: key 'depends_on': {other!r} is not another base database in {conf / 'domains'}")


def load_domain(name: str) -> Domain:
    return _load_domain(conf_dir(), name)


def load_entity(domain: str, entity: str) -> EntityType:
    """One entity type of a base database, e.g. load_entity("population", "person")."""
    types = load_domain(domain).entities
    if entity not in types:
        raise ConfigError(f"{conf_dir() / 'domains' / (domain + '.yaml')}: no entity type {entity!r}; "
                          f"declared: {', '.join(types)}")
    return types[entity]


def entity_types(domains: list[str] | None = None) -> list[EntityType]:
    """Every entity type of the given base databases (default all), in domain order then conf order."""
    return [e for d in (domains or domain_names()) for e in load_domain(d).entities.values()]


def domain_names() -> list[str]:
    """Every base database in conf/domains, each after the ones it depends on (then by name): the
    order the DAGs run in, reconciliation reads and the CLI lists."""
    remaining = {p.stem: set(load_domain(p.stem).depends_on) for p in sorted((conf_dir() / "domains").glob("*.yaml"))}
    ordered: list[str] = []
    while remaining:
        ready = sorted(n for n, needs in remaining.items() if needs <= set(ordered))
        if not ready:
            raise ConfigError(f"{conf_dir() / 'domains'}: depends_on makes a cycle among {', '.join(sorted(remaining))}")
        ordered += ready
        for n in ready:
            del remaining[n]
    return ordered


@cache
def _load_code_list(conf: Path, name: str) -> CodeList:
    return load_yaml_model(conf / "codes" / f"{name}.yaml", CodeList)


RELEASE_STATUS = "release_status"
"""The core's code list of a value's release status (an extract's `vintage`)."""


def load_code_list(name: str) -> CodeList:
    return _load_code_list(conf_dir(), name)


@cache
def _load_units(conf: Path) -> dict[str, Unit]:
    return load_yaml_model(conf / "units.yaml", Units).units


def load_units() -> dict[str, Unit]:
    """conf/units.yaml: every unit a number may be delivered or kept in."""
    return _load_units(conf_dir())


@cache
def _load_extracts(conf: Path) -> tuple[Extract, ...]:
    return tuple(load_yaml_model(p, Extract) for p in sorted((conf / "extracts").glob("*.yaml")))


def load_extracts(domain: str | None = None, entity: str | None = None) -> list[Extract]:
    """All extract adapters, optionally of one domain (and one of its entity types); each checked
    against its entity type's fields."""
    result = []
    for ex in _load_extracts(conf_dir()):
        if (domain and ex.domain != domain) or (entity and ex.entity != entity):
            continue
        where = conf_dir() / "extracts" / (ex.key + ".yaml")
        try:
            fields = load_entity(ex.domain, ex.entity).fields
        except ConfigError as e:
            raise ConfigError(f"{where}: key 'entity': {e}") from None
        unknown = sorted({f for m in ex.mappings().values() for f in m} - set(fields))
        if unknown:
            raise ConfigError(
                f"{where}: key 'fields': {unknown} are not fields of entity type '{ex.entity}' of domain "
                f"'{ex.domain}' (conf/domains/{ex.domain}.yaml)"
            )
        statuses = set(load_code_list(RELEASE_STATUS).codes)
        wrong = sorted(set(ex.vintage.codes.values()) - statuses) if ex.vintage else []
        if wrong:
            raise ConfigError(
                f"{conf_dir() / 'extracts' / (ex.key + '.yaml')}: key 'vintage.codes': {wrong} are not release "
                f"statuses ({', '.join(sorted(statuses))}, conf/codes/{RELEASE_STATUS}.yaml)"
            )
        result.append(ex)
    return result
