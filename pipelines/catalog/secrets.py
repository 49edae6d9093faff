"""A credential's value at run time, from the key that holds it: `${secret.SCOPE.KEY}` or the name of an
environment variable (`*_env`). Only a connection being opened asks, so a secret is never in memory
before it is needed, and no message here ever holds one.

Where `${secret.SCOPE.KEY}` is found:
- on Databricks, in the workspace's secret scope, through the SDK's secrets API (the job's identity);
- locally, in the environment variable `LDP_SECRET_<SCOPE>_<KEY>` (upper-cased, any character that is not
  a letter or digit as `_`), else in `.ldp/secrets.toml` beside config.yml (`[SCOPE]` then `KEY = "..."`),
  a file git ignores.
"""
from __future__ import annotations

import base64
import os
import re
import tomllib
from pathlib import Path
from typing import Any, Callable

from pipelines.core.errors import Problem, RunError
from pipelines.core.variables import SECRET

SECRETS_FILE = Path(".ldp") / "secrets.toml"


def credential(reference: str | None, variable: str | None, what: str, key: str, base_dir: Path | None,
               workspace: Callable[[], Any] | None = None) -> str | None:
    """The credential a spec names by `reference` (its `${secret...}` key, `key`) or by `variable` (its
    `*_env` key), None when it names neither; one that cannot be found is a run error naming where it
    was looked for, never a silent login without it."""
    if reference is not None:
        return secret(reference, what, key, base_dir or Path.cwd(), workspace)
    if variable is None:
        return None
    value = os.environ.get(variable)
    if value is None:
        raise RunError(Problem(f"{what} is not set", key=f"{key}_env", value=variable,
                               hint=f"set the environment variable {variable}"))
    return value


def secret(reference: str, what: str, key: str, base_dir: Path,
           workspace: Callable[[], Any] | None = None) -> str:
    """`${secret.SCOPE.KEY}`'s value: the workspace's secret on Databricks (or when `workspace`, a
    WorkspaceClient factory, is given), else the environment, else `.ldp/secrets.toml`."""
    from pipelines.catalog.session import on_databricks

    match = SECRET.match(reference)
    if match is None:  # validated with the config: only a hand-made spec gets here
        raise RunError(Problem(f"{what}: not a secret reference", key=key))
    scope, name = match.groups()
    if workspace is not None or on_databricks():
        return _from_workspace(scope, name, what, key, workspace)
    variable = local_variable(scope, name)
    if variable in os.environ:
        return os.environ[variable]
    file = base_dir / SECRETS_FILE
    found = _from_file(file, scope, name, key)
    if found is None:
        raise RunError(Problem(f"{what}: secret {reference} is not set", key=key,
                               hint=f"locally, set the environment variable {variable} or add {name} under "
                                    f"[{scope}] in {file} (keep that file out of git)"))
    return found


def local_variable(scope: str, name: str) -> str:
    """The environment variable holding `${secret.scope.name}` locally: `LDP_SECRET_SCOPE_NAME`."""
    return re.sub(r"[^A-Z0-9]", "_", f"LDP_SECRET_{scope}_{name}".upper())


def _from_file(file: Path, scope: str, name: str, key: str) -> str | None:
    try:
        secrets = tomllib.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, tomllib.TOMLDecodeError) as exc:  # the parser's message quotes no value of the file
        reason = exc.strerror if isinstance(exc, OSError) else str(exc).split("(")[0].strip()
        raise RunError(Problem(f"cannot read the local secrets file: {reason}", file=str(file), key=key)) from None
    value = secrets.get(scope, {}).get(name) if isinstance(secrets.get(scope), dict) else None
    return value if isinstance(value, str) else None


def _from_workspace(scope: str, name: str, what: str, key: str, workspace: Callable[[], Any] | None) -> str:
    from databricks.sdk import WorkspaceClient

    try:
        response = (workspace or WorkspaceClient)().secrets.get_secret(scope=scope, key=name)
    except Exception as exc:  # noqa: BLE001 - the SDK's message names the scope and key, never the value
        raise RunError(Problem(f"{what}: cannot read secret {name} of scope {scope}: "
                               f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}",
                               key=key, hint="check the scope and key, and that the run's identity may "
                                             "READ the scope")) from None
    return base64.b64decode(response.value).decode("utf-8")
