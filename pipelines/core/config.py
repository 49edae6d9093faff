"""The config.yml schema: typed, immutable, strict about unknown keys, wrong types and bad names.

Loading never touches Spark. YAML is parsed with yaml-rs (YAML 1.2: `yes`/`on` stay strings,
duplicate keys are errors; ~20x faster than PyYAML on large configs); merge keys are applied here.
Every problem found is collected and reported together, each
naming the file, table, key, value and (where it can) the line in the YAML file.
"""
from __future__ import annotations

import difflib
import keyword
import re
import sys
import typing
from dataclasses import replace
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal, Mapping

import yaml
import yaml_rs
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ._gc import paused_gc
from .errors import ConfigError, Problem, redact
from .monitoring import MonitorConfig, MonitoringSettings, monitor_problems, with_defaults
from .cdc import CdcSpec, SnapshotCdcSpec
from .contracts import ColumnSpec, ContractMode, RowFilter
from .lakebase import LakebaseSettings
from .kafka_source import KafkaSettings
from . import delta_sink  # noqa: F401 - registers the built-in `delta` sink type (after `lakebase`)
from .registry import registry_for
from .sinks import SinkField
from .sources import FilesSource, TableSource  # noqa: F401 - re-exported: the built-in source types
from .sources import Scalar, SourceField
from . import kafka_source  # noqa: F401 - registers the built-in `kafka` source type (after the others)
from . import kafka_sink, python_sink  # noqa: F401 - register the built-in `kafka` and `python` sink types
from .table_properties import property_problem
from .variables import CREDENTIAL_KEYS, Overrides, substitute
from .vocabulary import OnError

Layer = Literal["bronze", "silver", "gold"]
LAYER_RANK: Mapping[str, int] = {"bronze": 0, "silver": 1, "gold": 2}

_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_\-]*$")


def _distinct_identifiers(value: tuple[str, ...]) -> tuple[str, ...]:
    value = tuple(_identifier(dep) for dep in value)
    if len(set(value)) != len(value):
        raise ValueError("lists a table more than once")
    return value


def _identifier(value: str) -> str:
    if not (value.isascii() and value.isidentifier()) or keyword.iskeyword(value):
        raise ValueError(
            "must be a Python identifier (letters, digits, underscore; not starting with a digit, "
            "not a keyword) because it names the transformation function and its arguments")
    return sys.intern(value)  # names repeat in every depends_on: one object each, faster lookups


Name = Annotated[str, Field(min_length=1, max_length=255), AfterValidator(_identifier)]  # a table's or flow's
Upstream = Annotated[tuple[str, ...], AfterValidator(_distinct_identifiers)]  # tables read, each named once


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FlowConfig(_Model):
    """One of several flows appending into its table (`flows:`, LDP's `append_flow`): its own `source`,
    or upstream tables (`depends_on`), optionally shaped by a function named after the flow in the
    table's layer folder; `once: true` is a backfill appended a single time."""

    name: Name
    source: SourceField | None = None
    depends_on: Upstream = ()
    once: bool = False

    @model_validator(mode="after")
    def _has_an_input(self) -> "FlowConfig":
        if self.source is None and not self.depends_on:
            raise ValueError(f"flow '{self.name}' reads nothing: give it a source or depends_on")
        return self


class TableConfig(_Model):
    """One table: where it sits, what it needs and how it is stored."""

    name: Name
    layer: Layer
    tags: tuple[str, ...] = ()
    depends_on: Upstream = ()
    source: SourceField | None = None  # one registered source type, chosen by its `type:`
    comment: str | None = None
    partition_cols: tuple[str, ...] = ()
    cluster_by: tuple[str, ...] = ()  # Delta liquid clustering
    cluster_by_auto: bool = False  # Databricks chooses the clustering columns (ignored locally)
    table_properties: dict[str, Scalar] = Field(default_factory=dict)
    format: str | None = None
    expectations: tuple[dict[str, Any], ...] = ()
    expectations_file: str | None = None
    on_error: OnError = OnError.QUARANTINE
    monitor: MonitorConfig | None = None
    sinks: tuple[SinkField, ...] = ()  # each one registered sink type, chosen by its `type:`
    cdc: CdcSpec | None = None  # AUTO CDC: the input is a change feed applied by key (SCD type 1 or 2)
    snapshot_cdc: SnapshotCdcSpec | None = None  # AUTO CDC FROM SNAPSHOT: the input is a snapshot (or several)
    columns: tuple[ColumnSpec, ...] = ()  # the schema contract: the transformation's output, before checks
    contract: ContractMode = ContractMode.ENFORCED  # how `columns` bind (with none declared: nothing)
    row_filter: RowFilter | None = None  # Databricks row filter: `catalog.schema.function ON (col, ...)`
    flows: tuple[FlowConfig, ...] = ()  # several flows appending into this table (its depends_on: theirs)

    @property
    def applies_changes(self) -> bool:
        """Whether the table is kept by AUTO CDC (a change feed or snapshots) rather than replaced."""
        return self.cdc is not None or self.snapshot_cdc is not None

    @property
    def connectors(self) -> tuple[Any, ...]:
        """Every source (the table's and its flows') and sink spec: what reaches outside the catalog."""
        return (*(source for source in (self.source, *(f.source for f in self.flows)) if source), *self.sinks)

    @property
    def has_expectations(self) -> bool:
        """Declared checks, or the implicit `malformed_record` check of a csv/json source with a schema."""
        return bool(self.expectations or self.expectations_file) or any(
            source.flags_malformed_records for source in (self.source, *(f.source for f in self.flows)) if source)

    def flow_config(self, flow: FlowConfig) -> "TableConfig":
        """The table as one of its flows reads and checks it: the flow's name and inputs, the table's
        checks (a flow's rows go to the table and its quarantine, under the table's own name)."""
        return self.model_copy(update={"name": flow.name, "source": flow.source, "depends_on": flow.depends_on,
                                       "flows": (), "sinks": (), "monitor": None})

    @model_validator(mode="before")
    @classmethod
    def _inputs_of_flows(cls, data: Any) -> Any:
        """A table with flows reads what its flows read: its depends_on is theirs, for the graph."""
        flows = data.get("flows") if isinstance(data, dict) else None
        if not isinstance(flows, list) or "depends_on" in data:
            return data
        upstream = [dep for flow in flows if isinstance(flow, dict) and isinstance(flow.get("depends_on"), list)
                    for dep in flow["depends_on"]]
        return {**data, "depends_on": list(dict.fromkeys(upstream))}

    @model_validator(mode="after")
    def _flows_alone(self) -> "TableConfig":
        if not self.flows:
            return self
        clashing = [key for key, given in (("source", self.source is not None), ("cdc", self.cdc is not None),
                                           ("snapshot_cdc", self.snapshot_cdc is not None)) if given]
        if clashing:
            raise ValueError(f"a table with flows: is written by its flows alone; {' and '.join(clashing)} "
                             "belong(s) on a flow (cdc: reads one feed: give it a depends_on on this table)")
        names = [f.name for f in self.flows]
        if twice := sorted({n for n in names if names.count(n) > 1}):
            raise ValueError(f"flows: names {', '.join(twice)} more than once (a flow's checkpoint goes by its name)")
        upstream = tuple(dict.fromkeys(dep for flow in self.flows for dep in flow.depends_on))
        if set(self.depends_on) != set(upstream):
            raise ValueError(f"a table with flows: reads what its flows read; drop its depends_on "
                             f"{list(self.depends_on)} (its flows' are {list(upstream)})")
        return self

    @field_validator("table_properties")
    @classmethod
    def _known_properties(cls, value: dict[str, Scalar]) -> dict[str, Scalar]:
        problems = [p for p in (property_problem(k, v) for k, v in value.items()) if p]
        if problems:
            raise ValueError("; ".join(problems))
        return value

    @model_validator(mode="after")
    def _cdc_has_a_feed(self) -> "TableConfig":
        if self.cdc is not None and self.snapshot_cdc is not None:
            raise ValueError("give cdc: (a change feed) or snapshot_cdc: (snapshots), not both: LDP applies "
                             "one AUTO CDC flavour per target")
        if self.cdc is not None and len(self.depends_on) + (self.source is not None) != 1:
            raise ValueError("a table with cdc: reads one change feed: give it one source or one depends_on")
        if self.snapshot_cdc is not None and len(self.depends_on) + (self.source is not None) != 1:
            raise ValueError("a table with snapshot_cdc: reads one snapshot input: give it one source or "
                             "one depends_on")
        return self

    @model_validator(mode="after")
    def _sinks_can_copy_cdc(self) -> "TableConfig":
        spec = self.cdc or self.snapshot_cdc
        problems = [f"sinks[{i}] ({sink.type}): {problem}" for i, sink in enumerate(self.sinks) if spec and (
            problem := sink.cdc_problem(spec.stored_as_scd_type, spec.removes_rows))]
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @field_validator("row_filter", mode="before")
    @classmethod
    def _parse_row_filter(cls, value: Any) -> Any:
        return RowFilter.parse(value) if isinstance(value, str) else value

    @field_validator("columns")
    @classmethod
    def _distinct_columns(cls, value: tuple[ColumnSpec, ...]) -> tuple[ColumnSpec, ...]:
        names = [c.name for c in value]
        if twice := sorted({n for n in names if names.count(n) > 1}):
            raise ValueError(f"declares column(s) {', '.join(twice)} more than once")
        return value

    @model_validator(mode="after")
    def _contract_has_columns(self) -> "TableConfig":
        if "contract" in self.model_fields_set and not self.columns and self.contract is not ContractMode.OFF:
            raise ValueError(f"contract: {self.contract} needs the table's columns: (name and type of each)")
        if self.contract is not ContractMode.ENFORCED and (masked := [c.name for c in self.columns if c.mask]):
            raise ValueError(f"column(s) {', '.join(masked)} declare a mask, which needs contract: enforced "
                             "(Databricks declares masks in the table's full schema)")
        declared = {c.name for c in self.columns}
        if self.row_filter and declared and (unknown := [c for c in self.row_filter.columns if c not in declared]):
            raise ValueError(f"row_filter passes column(s) {', '.join(unknown)} that columns: does not declare")
        return self

    @model_validator(mode="after")
    def _one_layout(self) -> "TableConfig":
        if self.partition_cols and (self.cluster_by or self.cluster_by_auto):
            raise ValueError("partition_cols and cluster_by exclude each other (Delta clusters a table "
                             "or partitions it, not both)")
        return self

    @field_validator("tags")
    @classmethod
    def _valid_tags(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for tag in value:
            if not _TAG.match(tag):
                raise ValueError(f"tag {tag!r} may only contain letters, digits, '_' and '-'")
        return value


class PipelineSettings(_Model):
    """Pipeline-wide defaults: where tables live and where their code is."""

    name: str = "ldp_pipeline"
    catalog: str | None = None
    schema_name: str = Field(default="default", alias="schema")
    transformations: str = "pipelines.transformations"
    format: str | None = None
    rules_source: Literal["config", "lakebase"] = "config"  # lakebase: each table's active published checks

    @field_validator("schema_name")
    @classmethod
    def _valid_schema(cls, value: str) -> str:
        return _identifier(value)


class Config(_Model):
    """A whole config.yml, plus the file it came from."""

    pipeline: PipelineSettings = Field(default_factory=PipelineSettings)
    tables: tuple[TableConfig, ...]
    monitoring: MonitoringSettings = Field(default_factory=MonitoringSettings)
    lakebase: LakebaseSettings = Field(default_factory=LakebaseSettings)
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    variables: dict[str, Scalar] = Field(default_factory=dict)  # each `${var...}`'s value, as this load resolved it
    path: Path = Path("config.yml")

    @cached_property
    def base_dir(self) -> Path:
        return self.path.resolve().parent

    def table(self, name: str) -> TableConfig:
        return self.by_name[name]

    def full_name(self, table: str, catalog: str) -> str:
        """The table's Unity Catalog name, `catalog.schema.table`, in `catalog`."""
        return f"{catalog}.{self.pipeline.schema_name}.{table}"

    @property
    def monitoring_schema(self) -> str:
        return self.monitoring.output_schema or f"{self.pipeline.schema_name}_monitoring"

    @cached_property
    def by_name(self) -> dict[str, TableConfig]:
        return {t.name: t for t in self.tables}

    def with_tables(self, tables: tuple[TableConfig, ...]) -> "Config":
        """A copy holding `tables` instead (e.g. with published checks), its lookups rebuilt."""
        copy = self.model_copy(update={"tables": tuple(tables)})
        copy.__dict__.pop("by_name", None)  # model_copy carries the cached lookup of the old tables
        return copy


# ---------------------------------------------------------------------------------------------
# Loading


def load_config(path: str | Path, overrides: Overrides = Overrides()) -> Config:
    """Read, parse and validate a config file, its `${var...}` taking `overrides` over its defaults;
    raise ConfigError listing every problem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(Problem("config file not found", file=str(path))) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(Problem(
            f"the config file is not UTF-8 text (byte {exc.object[exc.start]:#04x} at offset {exc.start})",
            file=str(path), hint="save it as UTF-8")) from None
    except OSError as exc:
        raise ConfigError(Problem(f"cannot read config file: {exc.strerror or exc}", file=str(path))) from None
    return parse_config(text, path, overrides)


def parse_config(text: str, path: Path, overrides: Overrides = Overrides()) -> Config:
    """Parse YAML text into a Config; `path` is used for messages and relative paths."""
    with paused_gc():
        return _parse(text, path, overrides)


def _parse(text: str, path: Path, overrides: Overrides) -> Config:
    try:
        raw = yaml_rs.loads(text, parse_datetime=False) if text.strip() else None
        if "<<" in text:
            raw = _merge_keys(raw)
    except yaml_rs.YAMLDecodeError as exc:
        raise ConfigError(_yaml_problem(str(exc), path)) from None
    if not isinstance(raw, dict):
        raise ConfigError(Problem("the top level must be a mapping with a 'tables:' list",
                                  file=str(path), value=_short(raw)))
    if "${" in text or overrides.values:
        try:
            raw = substitute(raw, str(path), overrides)
        except ConfigError as exc:
            raise ConfigError(with_lines(list(exc.problems), text)) from None
    raw = with_defaults(raw)
    try:
        config = Config.model_validate({**raw, "path": path})
    except ValidationError as exc:
        problems = [_problem_from_pydantic(err, raw, str(path)) for err in exc.errors()]
        raise ConfigError(with_lines(problems, text)) from None
    problems = _duplicate_names(config) + monitor_problems(config)
    if not config.tables:
        problems.append(Problem("lists no tables", file=str(path), key="tables"))
    if problems:
        raise ConfigError(with_lines(problems, text))
    return config


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """Composes the node tree only to find lines: every scalar's tag may stay unresolved (resolving them
    was ~40% of composing a 10,000-table config)."""

    def resolve(self, kind: Any, value: Any, implicit: Any) -> str:
        return "tag:yaml.org,2002:str"

_POSITION = re.compile(r"line (\d+), column (\d+)")


def _yaml_problem(message: str, path: Path) -> Problem:
    """yaml-rs reports 'YAML parse error at line L, column C', a code excerpt, then the reason."""
    position = _POSITION.search(message)
    reason = message.strip().splitlines()[-1].strip() if message.strip() else "unreadable"
    return Problem(f"invalid YAML: {reason}", file=str(path),
                   line=int(position.group(1)) if position else None,
                   column=int(position.group(2)) if position else None)


def _merge_keys(node: Any) -> Any:
    """Apply YAML merge keys (`<<: *defaults`), which YAML 1.2 parsers leave as plain keys."""
    if isinstance(node, list):
        return [_merge_keys(item) for item in node]
    if not isinstance(node, dict):
        return node
    merged: dict[Any, Any] = {}
    sources = node.get("<<")
    for source in (sources if isinstance(sources, list) else [sources] if sources else []):
        if isinstance(source, dict):
            merged.update({k: v for k, v in _merge_keys(source).items() if k not in merged})
    merged.update({k: _merge_keys(v) for k, v in node.items() if k != "<<"})
    return merged


def _duplicate_names(config: Config) -> list[Problem]:
    seen: dict[str, int] = {}
    problems = []
    for index, table in enumerate(config.tables):
        if table.name in seen:
            problems.append(Problem(
                f"duplicate table name (first defined as table #{seen[table.name] + 1})",
                file=str(config.path), table=table.name, key="name", value=table.name,
                hint="table names must be unique", index=index))
        else:
            seen[table.name] = index
    flows: dict[str, str] = {}
    for index, table in enumerate(config.tables):
        for flow in table.flows:  # a flow's name names its function's module, beside the tables'
            other = "table" if flow.name in seen else f"a flow of {flows[flow.name]}" if flow.name in flows else None
            if other:
                problems.append(Problem(
                    f"flow name is taken by {other}", file=str(config.path), table=table.name,
                    key="flows.name", value=flow.name, hint="a flow's name is its function's; give it its own",
                    index=index))
            flows.setdefault(flow.name, table.name)
    return problems


def _short(value: Any) -> Any:
    """A value fit to echo in an error: shortened, and any secret it carries masked (a URL's password)."""
    if isinstance(value, str):
        value = redact(value)
    text = repr(value)
    return value if len(text) <= 80 else text[:77] + "..."


def _problem_from_pydantic(err: Mapping[str, Any], raw: Mapping[str, Any], file: str) -> Problem:
    loc = tuple(err["loc"])
    table = None
    table_index = None
    key_path = list(loc)
    if len(loc) >= 2 and loc[0] == "tables" and isinstance(loc[1], int):
        tables = raw.get("tables") or []
        entry = tables[loc[1]] if loc[1] < len(tables) else None
        name = entry.get("name") if isinstance(entry, dict) else None
        table = name if isinstance(name, str) else f"#{loc[1] + 1}"
        table_index = loc[1]
        key_path = list(loc[2:])
    key = ".".join(str(p) for p in key_path if not isinstance(p, int)) or None  # no list indices
    kind = err["type"]
    value = err.get("input")
    hint = None
    if kind == "extra_forbidden":
        unknown = str(loc[-1])
        valid = _valid_keys(loc[:-1], raw)
        close = difflib.get_close_matches(unknown, valid, n=1)
        message = f"unknown key '{unknown}'"
        hint = (f"did you mean '{close[0]}'?" if close else "") + \
            (f" valid keys: {', '.join(sorted(valid))}" if valid else "")
        value = None
    elif kind == "missing":
        message = "required key is missing"
        value = None
    elif kind == "literal_error":
        message = f"invalid value; expected {err['ctx']['expected']}"
    elif kind == "union_tag_invalid":
        message = f"unknown {err['ctx']['kind']} type; expected {err['ctx']['expected_tags']}"
        key, value = f"{key}.type", err["ctx"]["tag"]  # located at the `type:` line, naming the value
    elif kind == "union_tag_not_found":
        message = err["msg"]
        value = None
    elif kind in _TYPE_NAMES:
        message = f"must be {_TYPE_NAMES[kind]}"
    else:
        message = err["msg"].removeprefix("Value error, ")
    if isinstance(value, dict) or key_path and key_path[-1] in CREDENTIAL_KEYS:
        value = None  # a rule across a block's keys names them, not the block; a credential is never echoed
    return Problem(message, file=file, table=table, key=key,
                   value=_short(value) if value is not None else None,
                   hint=hint.strip() if hint else None, index=table_index)


_TYPE_NAMES = {"tuple_type": "a list", "list_type": "a list", "dict_type": "a mapping",
               "string_type": "a string", "model_type": "a mapping", "bool_type": "true or false",
               "bool_parsing": "true or false",
               "int_type": "an integer", "model_attributes_type": "a mapping"}


def _valid_keys(loc: tuple[Any, ...], raw: Any) -> list[str]:
    """The keys allowed at `loc` (a pydantic location) in the `raw` input, for 'did you mean' hints;
    a source's or a sink's keys are its type's (the `type:` written there)."""
    model: Any = Config
    node = raw
    for part in loc:
        node = _at(node, part)
        if not isinstance(part, int) and model is not None:
            field = _field_by_key(model, part)
            model = _model_in(field.annotation) if field else None
        if not isinstance(node, dict):  # a list of typed blocks (sinks): its entry says the type
            continue
        registry = registry_for(model)
        if registry is not None:
            model = registry.get(node.get("type"))
    return sorted(_fields(model)) if model else []


def _at(node: Any, part: Any) -> Any:
    """`node[part]` of the raw input, or None where the input has no such entry."""
    if isinstance(node, dict):
        return node.get(part)
    if isinstance(node, list) and isinstance(part, int) and part < len(node):
        return node[part]
    return None


def _fields(model: Any) -> list[str]:
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        return []
    internal = ("path",) if model is Config else ()  # the config file's own path, set by the loader
    return [f.alias or name for name, f in model.model_fields.items() if name not in internal]


def _field_by_key(model: Any, key: str):
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        return None
    for name, field in model.model_fields.items():
        if key in (name, field.alias):
            return field
    return None


def _model_in(annotation: Any) -> Any:
    """First BaseModel class found inside an annotation like tuple[TableConfig, ...]."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


# ---------------------------------------------------------------------------------------------
# Line numbers: computed only when there are problems, so the happy path stays fast.


def with_lines(problems: list[Problem], text: str) -> list[Problem]:
    """Add the YAML line of each problem's table (and key) entry."""
    try:
        root = yaml.compose(text, Loader=_Loader)
    except yaml.YAMLError:  # pragma: no cover - text already parsed once
        return problems
    nodes = _table_nodes(root)
    located = []
    for problem in problems:
        if problem.line is not None:  # located already (e.g. in a SQL definition's own file)
            located.append(problem)
            continue
        if problem.index is None:  # a key outside the tables (pipeline.schema), from the top
            node = root if problem.key and problem.table is None else None
        else:
            node = nodes[problem.index] if problem.index < len(nodes) else None
        for part in (problem.key or "").split(".") if node is not None else ():
            child = _child(node, part)  # as deep as the key goes: source.options.header
            if child is None:
                break
            node = child
        if node is not None:
            problem = replace(problem, line=node.start_mark.line + 1)
        located.append(problem)
    return located


def _table_nodes(root: Any) -> list[Any]:
    tables = _child(root, "tables")
    return list(tables.value) if isinstance(tables, yaml.SequenceNode) else []


def _child(node: Any, key: str) -> Any:
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            if getattr(key_node, "value", None) == key:
                return key_node if isinstance(value_node, yaml.ScalarNode) else value_node
    return None
