"""`${var.NAME}`, `${env.NAME}` and `${secret.SCOPE.KEY}` in config.yml: one config for every environment.

Variables and environment references are substituted into the parsed YAML before it is validated, so
every key takes them and a problem is located like any other. A variable's value comes from `--var
NAME=VALUE`, else `--var-file FILE` (a flat `NAME: VALUE` YAML file), else the config's `variables:`
defaults. A value that is a whole reference keeps its type (`num_partitions: ${var.parts}`); inside a
longer string it is written as text. `$${` writes a literal `${`, and `${name}` without a namespace is
left alone (Spark SQL's own substitution).

Secret references are never substituted here: they stay as written, so a secret's value cannot reach
a plan, a summary, a record or an error. Only the keys that hold a credential (`CREDENTIAL_KEYS`) take
one, as their whole value; a run resolves it when it opens the connection (`pipelines.catalog.secrets`).
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml_rs

from .errors import ConfigError, Problem, UsageError

VARIABLES_KEY = "variables"
CONF_PREFIX = "ldp.var."  # a pipeline's configuration passes variable NAME as `ldp.var.NAME`
CREDENTIAL_KEYS = frozenset({"password", "jaas_config"})  # JDBC's password, Kafka's sasl.jaas.config
_REFERENCE = re.compile(r"(\$?)\$\{([^{}]*)\}")
_NAMESPACED = re.compile(r"^\s*([A-Za-z_]\w*)\.(.*?)\s*$")
_NAME = re.compile(r"^[A-Za-z_]\w*$")
SECRET = re.compile(r"^\$\{secret\.([\w\-]+)\.([\w\-.]+)\}$")
Scalar = (str, int, float, bool)


@dataclass(frozen=True)
class Overrides:
    """Variable values given on the command line: `--var-file` values, then `--var` ones over them.
    `origin` names where each came from, for messages."""

    values: Mapping[str, Any] = field(default_factory=dict)
    origin: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, pairs: tuple[str, ...] = (), var_file: str | Path | None = None) -> "Overrides":
        """`--var NAME=VALUE` pairs over the values of `--var-file`; a malformed one is a usage error."""
        values: dict[str, Any] = {}
        origin: dict[str, str] = {}
        if var_file is not None:
            for name, value in _read_var_file(Path(var_file)).items():
                values[name], origin[name] = value, f"--var-file {var_file}"
        for pair in pairs:
            name, equals, value = pair.partition("=")
            if not equals or not _NAME.match(name.strip()):
                raise UsageError(Problem("--var takes NAME=VALUE, NAME a letter or _ then letters, digits or _",
                                         value=pair.split("=")[0]))
            values[name.strip()], origin[name.strip()] = value, "--var"
        return cls(values, origin)

    @classmethod
    def from_conf(cls, conf: Mapping[str, str]) -> "Overrides":
        """The `ldp.var.NAME` entries of a pipeline's configuration (Databricks, or the local SDP run's)."""
        values = {k[len(CONF_PREFIX):]: v for k, v in conf.items() if k.startswith(CONF_PREFIX)}
        return cls(values, {name: "the pipeline configuration" for name in values})


def as_conf(values: Mapping[str, Any]) -> dict[str, str]:
    """Variable values as pipeline configuration entries (`Overrides.from_conf` reads them back)."""
    return {f"{CONF_PREFIX}{name}": str(value) for name, value in values.items()}


def _read_var_file(path: Path) -> dict[str, Any]:
    try:
        data = yaml_rs.loads(path.read_text(encoding="utf-8"), parse_datetime=False)
    except OSError as exc:
        raise UsageError(Problem(f"cannot read the --var-file: {exc.strerror or exc}", file=str(path))) from None
    except yaml_rs.YAMLDecodeError as exc:
        raise UsageError(Problem(f"the --var-file is not valid YAML: {str(exc).splitlines()[0]}",
                                 file=str(path))) from None
    data = {} if data is None else data
    bad = [str(k) for k, v in data.items() if not _NAME.match(str(k)) or not isinstance(v, Scalar)] \
        if isinstance(data, dict) else []
    if not isinstance(data, dict) or bad:
        raise UsageError(Problem("a --var-file is a flat mapping of NAME: VALUE (a string, number or boolean)",
                                 file=str(path), key=bad[0] if bad else None))
    return data


def substitute(raw: dict[str, Any], file: str, overrides: Overrides = Overrides(),
               environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """`raw` (the parsed config) with every `${var...}` and `${env...}` replaced and `variables:` holding
    each variable's value (overrides over defaults); raise one ConfigError naming each reference that
    cannot be resolved, each secret reference out of place and each override the config never uses."""
    environ = os.environ if environ is None else environ
    defaults = raw.get(VARIABLES_KEY, {})
    problems: list[Problem] = []
    if defaults is None:
        defaults = {}
    if not isinstance(defaults, dict) or any(
            not _NAME.match(str(k)) or not isinstance(v, Scalar) for k, v in defaults.items()):
        problems.append(Problem("must map variable names to values (a string, number or boolean)", file=file,
                                key=VARIABLES_KEY))
        defaults = {}
    values = {**defaults, **overrides.values}
    used: set[str] = set()  # the variables a reference names, resolved or not
    tables = raw.get("tables") if isinstance(raw.get("tables"), list) else []

    def where(path: tuple[Any, ...]) -> dict[str, Any]:
        if len(path) >= 2 and path[0] == "tables" and isinstance(path[1], int):
            entry = tables[path[1]] if path[1] < len(tables) else None
            name = entry.get("name") if isinstance(entry, dict) else None
            return {"table": name if isinstance(name, str) else f"#{path[1] + 1}", "index": path[1],
                    "key": ".".join(str(p) for p in path[2:] if not isinstance(p, int)) or None}
        return {"key": ".".join(str(p) for p in path if not isinstance(p, int)) or None}

    def resolve(text: str, path: tuple[Any, ...]) -> Any:
        whole = _REFERENCE.fullmatch(text)
        pieces: list[Any] = []
        end = 0
        for match in _REFERENCE.finditer(text):
            pieces.append(text[end:match.start()])
            end = match.end()
            escaped, inner = match.groups()
            if escaped:
                pieces.append(match.group(0)[1:])
                continue
            pieces.append(_value(inner, match.group(0), path))
        if whole and not whole.group(1) and len(pieces) == 2 and not isinstance(pieces[1], str):
            return pieces[1]  # a whole reference keeps its value's type
        return "".join(str(p) for p in pieces) + text[end:]

    def _value(inner: str, written: str, path: tuple[Any, ...]) -> Any:
        namespaced = _NAMESPACED.match(inner)
        if namespaced is None:
            return written  # `${name}`: Spark SQL's, not ours
        namespace, name = namespaced.groups()
        if namespace == "secret":
            if path[-1] not in CREDENTIAL_KEYS:
                problems.append(Problem(
                    f"a secret reference ({written}) goes only in a credential key "
                    f"({', '.join(sorted(CREDENTIAL_KEYS))}), where it is resolved as the connection opens",
                    file=file, **where(path),
                    hint="a secret in any other key could be echoed in a plan, a summary or an error"))
            elif SECRET.match(written) is None:
                problems.append(Problem(f"{written} is not a secret reference", file=file, **where(path),
                                        hint="write ${secret.SCOPE.KEY}"))
            return written
        if namespace == "var":
            used.add(name)
            if name in values:
                return values[name]
            problems.append(Problem(
                f"variable '{name}' ({written}) has no value", file=file, **where(path),
                hint=f"give it a default under variables: in the config, or pass --var {name}=VALUE "
                     "or a --var-file naming it"))
            return written
        if namespace == "env":
            if name in environ:
                return environ[name]
            problems.append(Problem(f"environment variable '{name}' ({written}) is not set", file=file,
                                    **where(path), hint=f"set {name} in the environment of the run"))
            return written
        problems.append(Problem(f"unknown reference {written}", file=file, **where(path),
                                hint="write ${var.NAME}, ${env.NAME} or ${secret.SCOPE.KEY}; $${ writes a "
                                     "literal ${"))
        return written

    def walk(node: Any, path: tuple[Any, ...]) -> Any:
        if isinstance(node, dict):
            return {k: walk(v, (*path, k)) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v, (*path, i)) for i, v in enumerate(node)]
        if isinstance(node, str) and "${" in node:
            return resolve(node, path)
        return node

    resolved = {k: walk(v, (k,)) for k, v in raw.items() if k != VARIABLES_KEY}
    unused = sorted(set(overrides.values) - set(defaults) - used)
    if unused:
        problems.append(Problem(f"variable '{unused[0]}' is given ({overrides.origin.get(unused[0])}) but "
                                "the config never uses it", file=file, key=VARIABLES_KEY,
                                hint="declare it under variables: with a default (a bundle target passes "
                                     "env_name to every task), or check its spelling against the config's "
                                     "${var...} references"))
    if problems:
        raise ConfigError(problems)
    return {**resolved, VARIABLES_KEY: values}


def secret_reference(value: str) -> str:
    """`value` if it is one `${secret.SCOPE.KEY}` (a pydantic validator of credential keys); the error
    never echoes what was written, which may be the secret itself."""
    if SECRET.match(value) is None:
        raise ValueError("a credential never goes in config.yml: write a secret reference, "
                         "${secret.SCOPE.KEY}, or name the environment variable holding it in the key's *_env twin")
    return value
