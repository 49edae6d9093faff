"""Versioned data-quality rules, the pure part: a published version, its fingerprint, and what changed
between two versions. Storing them is `pipelines.lakebase.rules`; enforcing them is the quality layer's
usual job, once `engine.project` has put the active version in place of the config's checks.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

Checks = list[dict[str, Any]]


@dataclass(frozen=True)
class RuleVersion:
    """One published version of a table's checks (a row of `dq_rules_events`)."""

    table: str
    version: int
    rules: Checks
    is_active: bool = True
    created_at: datetime | None = None
    created_by: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def fingerprint(self) -> str:
        return self.metadata.get("fingerprint") or fingerprint(self.rules)


def to_json(versions: dict[str, RuleVersion]) -> str:
    """The active versions for another process (the SDP driver), which must enforce the very same."""
    return json.dumps({name: {"version": v.version, "rules": v.rules} for name, v in versions.items()}, default=str)


def from_json(text: str) -> dict[str, RuleVersion]:
    return {name: RuleVersion(name, v["version"], v["rules"]) for name, v in json.loads(text).items()}


def fingerprint(rules: Checks) -> str:
    """A digest of the checks that ignores key order, so reformatting a YAML file changes nothing."""
    canonical = json.dumps(rules, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class RulesDiff:
    """Checks matched by name (else by position): added, removed and changed ones."""

    added: list[str]
    removed: list[str]
    changed: list[str]

    @property
    def same(self) -> bool:
        return not (self.added or self.removed or self.changed)

    def to_dict(self) -> dict[str, list[str]]:
        return {"added": self.added, "removed": self.removed, "changed": self.changed}


def diff_rules(old: Checks, new: Checks) -> RulesDiff:
    before, after = _by_name(old), _by_name(new)
    return RulesDiff(added=[k for k in after if k not in before], removed=[k for k in before if k not in after],
                     changed=[k for k in after if k in before and fingerprint([before[k]]) != fingerprint([after[k]])])


def _by_name(checks: Checks) -> dict[str, dict[str, Any]]:
    named: dict[str, dict[str, Any]] = {}
    for index, check in enumerate(checks):
        function = (check.get("check") or {}).get("function", "check")
        named[str(check.get("name") or f"#{index + 1} ({function})")] = check
    return named
