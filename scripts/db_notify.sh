#!/usr/bin/env bash
# Post a deployment or failure message to Microsoft Teams as an Adaptive Card.
#
# Environment:
#   TEAMS_WEBHOOK_URL   the channel's incoming webhook (a secret; never printed)
#   BUNDLE_NAME         e.g. databricks_etl_framework
#   ENVIRONMENT         sandbox | staging | prod
#   VERSION             the released or deployed version
#   STATUS              e.g. "started", "succeeded", "failed"
#   MESSAGE             free text (any characters: it is passed to jq as data, never evaluated)
#   RUN_URL             link to the GitHub Actions run
#   DRY_RUN=1           print the payload instead of posting it
#
# The payload is built with `jq --arg`, so it is valid JSON whatever the text holds. The exit code is
# curl's when posting fails (the workflow step fails with it).
set -euo pipefail

payload=$(jq -n \
  --arg bundle "${BUNDLE_NAME:-databricks_etl_framework}" \
  --arg environment "${ENVIRONMENT:-unknown}" \
  --arg version "${VERSION:-unknown}" \
  --arg status "${STATUS:-failed}" \
  --arg message "${MESSAGE:-}" \
  --arg url "${RUN_URL:-}" \
  '{
    type: "message",
    attachments: [{
      contentType: "application/vnd.microsoft.card.adaptive",
      contentUrl: null,
      content: {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        type: "AdaptiveCard",
        version: "1.2",
        body: [
          {type: "TextBlock", size: "Medium", weight: "Bolder", wrap: true,
           text: ($bundle + " " + $version + ": " + $status + " in " + $environment)},
          {type: "FactSet", facts: [
            {title: "Bundle", value: $bundle},
            {title: "Environment", value: $environment},
            {title: "Version", value: $version},
            {title: "Status", value: $status}]},
          {type: "TextBlock", wrap: true, text: $message}
        ],
        actions: (if $url == "" then [] else [{type: "Action.OpenUrl", title: "Open the run", url: $url}] end)
      }
    }]
  }')

if [[ "${DRY_RUN:-0}" == "1" ]]; then
  printf '%s\n' "$payload"
  exit 0
fi

if [[ -z "${TEAMS_WEBHOOK_URL:-}" ]]; then
  echo "db_notify.sh: TEAMS_WEBHOOK_URL is not set (or use DRY_RUN=1)" >&2
  exit 2
fi

printf '%s' "$payload" | curl --silent --show-error --fail --max-time 30 \
  -H "Content-Type: application/json" --data-binary @- "$TEAMS_WEBHOOK_URL"
