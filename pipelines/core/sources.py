"""Source specs: what a table's `source:` block may say, one class per `type:`, in one registry.

A new source type is one `SourceSpec` subclass with a one-value `type: Literal[...]`, decorated with
`@register_source`, plus a reader registered under the same type in `pipelines.catalog.sources`
(the Spark side; this module stays pure). The config's `source:` field dispatches on `type:` through
the registry (`core.registry`) at validation time.
"""
from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import Annotated, Literal, Union

from pydantic import (AfterValidator, BaseModel, ConfigDict, Field, PlainValidator, SerializeAsAny, field_validator,
                      model_validator)

from .contracts import canonical_type
from .ddl import ddl_fields
from .errors import Problem
from .registry import TypeRegistry
from .variables import secret_reference
from .file_checks import file_source_problems, unflagged_malformed_warning

Scalar = Union[str, int, float, bool]

_TABLE_REF = re.compile(r"^[A-Za-z0-9_`.\-]+$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_COLUMN_NAME = _ENV_NAME  # a plain identifier, the same shape
_SPAN = re.compile(r"^\d+ (second|minute|hour|day|week)s?$", re.IGNORECASE)  # a Spark interval literal's body
_URL_SECRET = re.compile(r"(?i)[?&;:]password=|//[^/@:]+:[^/@]+@")  # ?password=... or //user:secret@host
# a JDBC URL's subprotocol -> its driver: the Maven package local Spark fetches (Databricks runtimes bundle
# it) and the class, named because a jar Spark loads is not visible to JDBC's DriverManager by itself
JDBC_DRIVERS = {"postgresql": ("org.postgresql:postgresql:42.7.14", "org.postgresql.Driver")}
PARSED = ("csv", "json")  # formats Spark parses record by record (PERMISSIVE by default)
OWN_HANDLING = ("mode", "columnnameofcorruptrecord")  # options by which a user chose how to handle them
RESCUABLE = ("csv", "json", "xml", "avro", "parquet")  # formats with Auto Loader's rescued data column
SchemaEvolution = Literal["addNewColumns", "rescue", "failOnNewColumns", "none"]


class SourceSpec(BaseModel):
    """One source type's config: validated by pydantic, asked (not isinstance-checked) what it can do."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: str

    @property
    def can_stream(self) -> bool:
        """Whether a table reading this source is a streaming table (read incrementally)."""
        return False

    @property
    def record_format(self) -> str:
        """The records' format as messages name it (`malformed csv record`)."""
        return "source"

    @property
    def flags_malformed_records(self) -> bool:
        """Whether records Spark cannot parse are kept aside in `_corrupt_record` for the
        `malformed_record` check (only parsed text formats with a declared schema can tell)."""
        return False

    @property
    def local_packages(self) -> tuple[str, ...]:
        """Maven packages local Spark needs to read it (a JDBC driver); a Databricks runtime has them."""
        return ()

    @property
    def columns_declared(self) -> bool:
        """Whether its columns follow from this declaration alone, not from data or a system outside
        (an inferred schema, an external table): then they change only when config.yml does."""
        return False

    def problems(self, base_dir: Path, table: str) -> list[Problem]:
        """What is wrong with the source that is cheap to know before Spark starts."""
        return []

    def warnings(self, table: str) -> list[Problem]:
        """What may be wrong with the data it yields (a warning: the data may be clean)."""
        return []

    @property
    def batch_only_reason(self) -> str | None:
        """Why a source users may expect to stream is read whole each run (said in streaming mode)."""
        return None

    @property
    def lands(self) -> bool:
        """Whether each run first lands the source's new rows in the table's landing table, which the
        table then reads (a database read incrementally; `pipelines.catalog.landing`)."""
        return False


SOURCES: TypeRegistry[SourceSpec] = TypeRegistry("source", SourceSpec)
register_source = SOURCES.register
source_types = SOURCES.types
source_class = SOURCES.get


def is_runtime_path(path: str) -> bool:
    """A URI or absolute path (`s3://...`, `dbfs:...`, `/Volumes/...`): the runtime's storage."""
    return "://" in path or path.startswith(("/", "dbfs:"))


def resolved_path(path: str, base_dir: Path) -> str:
    """Relative local paths resolve against the config file's folder; URIs stay as written."""
    return path if is_runtime_path(path) else str((base_dir / path).resolve())


def table_name(value: str) -> str:
    """`value` if it reads as a table name (catalog.schema.table, backticks allowed)."""
    if not _TABLE_REF.match(value):
        raise ValueError("must be a table name like catalog.schema.table")
    return value


def env_name(value: str | None, example: str) -> str | None:
    """`value` if it reads as an environment variable's name: where a secret is at run time, never the
    secret itself."""
    if value is not None and not _ENV_NAME.match(value):
        raise ValueError(f"must be an environment variable's name such as {example} (the variable holds the "
                         "secret, which never goes in config.yml)")  # the value is echoed masked, if at all
    return value


SecretReference = Annotated[str, AfterValidator(secret_reference)]  # a credential key's value


SourceField = Annotated[SerializeAsAny[SourceSpec], PlainValidator(SOURCES.validate)]  # dumped as its type


@register_source
class FilesSource(SourceSpec):
    """Files read by Spark (Auto Loader on Databricks in streaming mode)."""

    type: Literal["files"]
    format: Literal["csv", "json", "parquet", "avro", "orc", "text", "xml", "binaryFile"]
    path: str = Field(min_length=1)
    options: dict[str, Scalar] = Field(default_factory=dict)
    schema_ddl: str | None = Field(default=None, alias="schema")
    include_metadata: bool = False  # add the `_metadata` struct column: file path, name, size, modification time
    schema_hints: str | None = None  # Auto Loader's cloudFiles.schemaHints: these types over the inferred ones
    schema_evolution: SchemaEvolution | None = None  # Auto Loader's cloudFiles.schemaEvolutionMode
    rescued_data_column: str | None = None  # Auto Loader's rescuedDataColumn (locally: the malformed record)

    @field_validator("schema_hints")
    @classmethod
    def _valid_hints(cls, value: str | None) -> str | None:
        if value is None:
            return None
        fields = ddl_fields(value)
        if not fields or any(not kind for _, kind in fields):
            raise ValueError("must list columns with their types, like 'amount DOUBLE, ts TIMESTAMP'")
        for name, kind in fields:
            try:
                canonical_type(kind)
            except ValueError as error:
                raise ValueError(f"column {name}: {error}") from None
        return value

    @field_validator("rescued_data_column")
    @classmethod
    def _valid_rescued(cls, value: str | None) -> str | None:
        if value is not None and not _COLUMN_NAME.match(value):
            raise ValueError("must be a column name such as _rescued_data")
        return value

    @model_validator(mode="after")
    def _auto_loader_rules(self) -> "FilesSource":
        """What Auto Loader itself refuses, said before any run."""
        if self.schema_ddl and self.schema_hints:
            raise ValueError("schema_hints refine an inferred schema; with `schema` declared nothing is inferred: "
                             "put the types in `schema`")
        if self.schema_ddl and self.schema_evolution == "addNewColumns":
            raise ValueError("schema_evolution addNewColumns evolves an inferred schema (Auto Loader refuses it with "
                             "a declared `schema`): drop `schema`, or choose rescue, failOnNewColumns or none")
        if self.rescued_data_column and self.format not in RESCUABLE:
            raise ValueError(f"rescued_data_column needs a format whose values can be rescued "
                             f"({', '.join(RESCUABLE)}), not {self.format}")
        if self.rescued_data_column and any(key.lower() in OWN_HANDLING for key in self.options):
            raise ValueError("rescued_data_column chooses how malformed values are kept: drop the options "
                             f"{', '.join(k for k in self.options if k.lower() in OWN_HANDLING)}")
        return self

    @property
    def can_stream(self) -> bool:
        return True

    @property
    def record_format(self) -> str:
        return self.format

    @property
    def columns_declared(self) -> bool:
        """A declared schema (hints aside: they refine an inferred one), or a format of fixed columns."""
        return (self.schema_ddl is not None and not self.schema_hints) or self.format in ("text", "binaryFile")

    @property
    def is_runtime_path(self) -> bool:
        """A URI or absolute path (`s3://...`, `dbfs:...`, `/Volumes/...`): the runtime's storage."""
        return is_runtime_path(self.path)

    def resolved_path(self, base_dir: Path) -> str:
        return resolved_path(self.path, base_dir)

    @property
    def leaves_malformed_to_spark(self) -> bool:
        """csv/json whose options choose no handling of malformed records (no `mode`, no
        `columnNameOfCorruptRecord`: an explicit one is the user's choice)."""
        return (self.format in PARSED and not self.rescued_data_column
                and not any(key.lower() in OWN_HANDLING for key in self.options))

    @property
    def flags_malformed_records(self) -> bool:
        # without a declared schema Spark cannot tell a bad record from a sparse one
        return self.leaves_malformed_to_spark and bool(self.schema_ddl)

    def problems(self, base_dir: Path, table: str) -> list[Problem]:
        return file_source_problems(base_dir, table, self)

    def warnings(self, table: str) -> list[Problem]:
        if not self.leaves_malformed_to_spark or self.schema_ddl:
            return []
        return [unflagged_malformed_warning(table, self)]


@register_source
class TableSource(SourceSpec):
    """An existing table, read as-is (a batch: the table it feeds is a materialized view)."""

    type: Literal["table"]
    table: str = Field(min_length=1)

    @field_validator("table")
    @classmethod
    def _valid_ref(cls, value: str) -> str:
        return table_name(value)


@register_source
class DeltaCdfSource(SourceSpec):
    """A Delta table's change data feed (`readChangeFeed`): one row per changed row, with `_change_type`
    (insert, update_postimage, delete; update_preimage only if `preimages`), `_commit_version` and
    `_commit_timestamp`, which is what a `cdc:` table needs (`sequence_by: _commit_version`). As a
    stream, each run reads only the commits since the last one; as a batch, the whole feed from the
    starting point (version 0 if none is given), each run."""

    type: Literal["delta_cdf"]
    table: str | None = Field(default=None, min_length=1)
    path: str | None = Field(default=None, min_length=1)
    starting_version: int | None = Field(default=None, ge=0)
    starting_timestamp: str | None = None
    preimages: bool = False
    options: dict[str, Scalar] = Field(default_factory=dict)

    @field_validator("table")
    @classmethod
    def _valid_ref(cls, value: str | None) -> str | None:
        return None if value is None else table_name(value)

    @field_validator("starting_timestamp")
    @classmethod
    def _valid_timestamp(cls, value: str | None) -> str | None:
        if value is None:
            return value
        try:
            datetime.fromisoformat(value)
        except (TypeError, ValueError):
            raise ValueError(f"must be a date or timestamp such as '2026-12-01' or '2026-12-01 08:00:00', "
                             f"got {value!r}") from None
        return value

    @model_validator(mode="after")
    def _one_table_one_start(self) -> "DeltaCdfSource":
        if (self.table is None) == (self.path is None):
            raise ValueError("give the Delta table's name (table) or its location (path), exactly one")
        if self.starting_version is not None and self.starting_timestamp is not None:
            raise ValueError("give starting_version or starting_timestamp, not both")
        return self

    @property
    def can_stream(self) -> bool:
        return True

    @property
    def record_format(self) -> str:
        return "change data feed"

    @property
    def reader_options(self) -> dict[str, str]:
        """Delta's reader options: the change feed from where it starts (version 0 by default: a batch
        read needs a start; a stream without one would begin with the table's current rows)."""
        options = {"readChangeFeed": "true", **{k: str(v) for k, v in self.options.items()}}
        if self.starting_timestamp is not None:
            options["startingTimestamp"] = self.starting_timestamp
        else:
            options["startingVersion"] = str(self.starting_version or 0)
        return options


@register_source
class JdbcSource(SourceSpec):
    """A database table or query read over JDBC, whole, each run: a batch, so the table it feeds is a
    materialized view in either mode. With an `incremental_column` (a cursor that only grows), each run
    lands only the rows above the last run's high-water mark in the table's landing table
    (`pipelines.catalog.landing`), which the table then reads as it reads any Delta table: as a stream
    in streaming mode (only the rows new since its last run), whole in batch mode; a `lookback` also
    lands late rows that far below the mark, each once. The password is
    never in config.yml: `password_env` names the environment variable that holds it at run time (on
    Databricks a job's `spark_env_vars` can fill it from a secret, `{{secrets/scope/key}}`). A
    partitioned read (`partition_column` with both bounds and `num_partitions`) runs that many queries
    in parallel, each over one stride of the column."""

    type: Literal["jdbc"]
    url: str = Field(min_length=1)  # fit for messages: validated to carry no secret
    table: str | None = Field(default=None, min_length=1)
    query: str | None = Field(default=None, min_length=1)
    user: str | None = Field(default=None, min_length=1)
    password: SecretReference | None = None  # ${secret.SCOPE.KEY}, resolved as the connection opens
    password_env: str | None = None
    driver: str | None = Field(default=None, min_length=1)  # the driver class, if the URL does not select one
    driver_package: str | None = Field(default=None, pattern=r"^[\w.\-]+:[\w.\-]+:[\w.\-]+$")
    partition_column: str | None = Field(default=None, min_length=1)
    lower_bound: int | str | None = None
    upper_bound: int | str | None = None
    num_partitions: int | None = Field(default=None, ge=1)
    fetchsize: int | None = Field(default=None, ge=0)
    incremental_column: str | None = Field(default=None, min_length=1)
    lookback: int | float | str | None = None  # how far below the mark each landing reads again (late rows)
    options: dict[str, Scalar] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _no_password(cls, data: object) -> object:
        options = data.get("options") if isinstance(data, dict) else None
        if isinstance(options, dict) and any(str(key).lower() == "password" for key in options):
            raise ValueError("a password never goes in config.yml: give password: ${secret.SCOPE.KEY}, or "
                             "name the environment variable that holds it in password_env")
        if isinstance(data, dict) and data.get("password") is not None and data.get("password_env") is not None:
            raise ValueError("give password (a secret reference) or password_env, not both")
        return data

    @field_validator("url")
    @classmethod
    def _jdbc_url(cls, value: str) -> str:
        if not value.startswith("jdbc:") or ":" not in value[5:]:
            raise ValueError("must be a JDBC URL such as jdbc:postgresql://host:5432/database")
        if _URL_SECRET.search(value):
            raise ValueError("must not carry a password: name the environment variable that holds it in "
                             "password_env")
        return value

    @field_validator("password_env")
    @classmethod
    def _env_name(cls, value: str | None) -> str | None:
        return env_name(value, "PG_PASSWORD")

    @field_validator("incremental_column")
    @classmethod
    def _cursor_name(cls, value: str | None) -> str | None:
        if value is not None and not _COLUMN_NAME.match(value):
            raise ValueError("must be the name of a column of the database's rows that only grows, such as "
                             "updated_at or id")
        return value

    @field_validator("lookback", mode="before")
    @classmethod
    def _span(cls, value: object) -> object:
        number = isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0
        if value is not None and not number and not (isinstance(value, str) and _SPAN.match(value.strip())):
            raise ValueError("must be a number below a numeric cursor, or a span below a date or timestamp "
                             "cursor such as '15 minutes', '2 hours' or '1 day'")
        return value.strip() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _lookback_of_a_cursor(self) -> "JdbcSource":
        if self.lookback is not None and self.incremental_column is None:
            raise ValueError("lookback needs an incremental_column: it is read below that column's mark")
        return self

    @model_validator(mode="after")
    def _one_relation_whole_partitioning(self) -> "JdbcSource":
        if (self.table is None) == (self.query is None):
            raise ValueError("give the database table (table) or a query (query), exactly one")
        partitioning = {"partition_column": self.partition_column, "lower_bound": self.lower_bound,
                        "upper_bound": self.upper_bound, "num_partitions": self.num_partitions}
        given = [key for key, value in partitioning.items() if value is not None]
        if given and len(given) < len(partitioning):
            missing = [key for key in partitioning if key not in given]
            raise ValueError(f"a partitioned read needs {', '.join(partitioning)} together; missing: "
                             f"{', '.join(missing)}")
        if self.partition_column is not None and self.query is not None:
            raise ValueError("partition_column reads a table in strides: use table, not query "
                             "(Spark cannot partition a query)")
        if isinstance(self.lower_bound, int) and isinstance(self.upper_bound, int) \
                and self.lower_bound >= self.upper_bound:
            raise ValueError(f"lower_bound ({self.lower_bound}) must be below upper_bound ({self.upper_bound})")
        return self

    @property
    def record_format(self) -> str:
        return "JDBC"

    @property
    def can_stream(self) -> bool:
        return self.lands

    @property
    def lands(self) -> bool:
        return self.incremental_column is not None

    @property
    def batch_only_reason(self) -> str | None:
        if self.lands:
            return None
        return ("a JDBC source is read in batch only (a database table is no stream; give an incremental_column "
                "to read only the rows new since the last run)")

    @property
    def subprotocol(self) -> str:
        """`postgresql` in `jdbc:postgresql://...`."""
        return self.url.split(":", 2)[1]

    @property
    def local_packages(self) -> tuple[str, ...]:
        package = self.driver_package or JDBC_DRIVERS.get(self.subprotocol, (None,))[0]
        return (package,) if package else ()

    @property
    def reader_options(self) -> dict[str, str]:
        """Spark's JDBC reader options, except the password (read from the environment at run time)."""
        named = {"url": self.url, "dbtable": self.table, "query": self.query, "user": self.user,
                 "driver": self.driver or JDBC_DRIVERS.get(self.subprotocol, (None, None))[1],
                 "partitionColumn": self.partition_column, "lowerBound": self.lower_bound,
                 "upperBound": self.upper_bound, "numPartitions": self.num_partitions, "fetchsize": self.fetchsize}
        return {**{k: str(v) for k, v in self.options.items()},
                **{k: str(v) for k, v in named.items() if v is not None}}
