#!/usr/bin/env bash
# Before a deploy: `ldp_engine plan` against the target's Unity Catalog schema, failing (exit 4) when the
# deploy would drop a table the pipeline owns or break a declared table schema.
# Usage: plan_gate.sh TARGET (the engine installed in .venv, or LDP_ENGINE; the Databricks CLI on PATH)
set -euo pipefail
target="$1"
engine="${LDP_ENGINE:-.venv/bin/ldp_engine}"
summary=$(databricks bundle summary -t "$target" --var "sp_id=${DATABRICKS_CLIENT_ID:-}" -o json)
catalog=$(jq -r '.variables.catalog.value // .variables.catalog.default' <<< "$summary")
schema=$(jq -r '.variables.schema.value // .variables.schema.default' <<< "$summary")
pipeline_id=$(jq -r '.resources.pipelines.ldp_pipeline.id // empty' <<< "$summary")  # empty before the first deploy
"$engine" plan --target databricks --catalog "$catalog" --schema "$schema" \
  --pipeline-id "$pipeline_id" --fail-on destructive
