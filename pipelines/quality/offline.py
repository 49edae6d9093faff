"""The workspace DQX sees on a local run: an explicit offline stand-in for `WorkspaceClient`.

DQX's engine, profiler and generator take a WorkspaceClient and, when constructed, check that the
workspace answers (`clusters.select_spark_version()`) and tag its config for telemetry; their
telemetry copies the config and pings the workspace, and swallows any failure. Locally there is no
workspace: those calls are answered here without a network, and anything else DQX might ask for
(checks storage, secrets, installation) fails at once, naming what was asked, instead of hanging
on a connection or returning a mock's meaningless value.
"""
from __future__ import annotations

from typing import Any, NoReturn


class OfflineError(RuntimeError):
    """DQX asked a local run for something only a Databricks workspace has."""


def _refuse(what: str) -> NoReturn:
    raise OfflineError(f"DQX asked for the workspace's {what}, but this run is local (no Databricks "
                       "workspace): use a checks file or inline checks, not workspace storage")


class _OfflineConfig:
    _product_info: tuple[str, str] | None = None  # DQX sets ('dqx', version) here for telemetry

    def copy(self) -> NoReturn:  # telemetry copies the config to ping the workspace: not sent
        _refuse("config (telemetry)")

    def __getattr__(self, name: str) -> NoReturn:
        _refuse(f"config.{name}")


class _OfflineClusters:
    def select_spark_version(self, *args: Any, **kwargs: Any) -> str:
        """DQX's connectivity check: answered locally."""
        return "local"

    def __getattr__(self, name: str) -> NoReturn:
        _refuse(f"clusters.{name}")


class OfflineWorkspaceClient:
    """Answers DQX's construction-time checks; refuses everything else with OfflineError."""

    def __init__(self) -> None:
        self.config = _OfflineConfig()
        self.clusters = _OfflineClusters()

    def __getattr__(self, name: str) -> NoReturn:
        _refuse(name)


def workspace_client() -> Any:
    """A real WorkspaceClient on Databricks; the offline stand-in anywhere else."""
    from pipelines.catalog.session import on_databricks

    if on_databricks():
        from databricks.sdk import WorkspaceClient

        return WorkspaceClient()
    return OfflineWorkspaceClient()
