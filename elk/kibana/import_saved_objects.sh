#!/usr/bin/env bash
# Import the data view and saved searches of elk/kibana/saved_objects.ndjson into Kibana
# through its saved objects API (overwriting earlier versions of the same ids).
#
#   elk/kibana/import_saved_objects.sh            KIBANA_URL defaults to http://localhost:5601
#   KIBANA_URL=http://kibana:5601 KIBANA_AUTH=elastic:secret elk/kibana/import_saved_objects.sh
#
# Waits up to KIBANA_WAIT seconds (120) for Kibana to answer, then fails loudly
# if any object was not imported.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
KIBANA_URL="${KIBANA_URL:-http://localhost:5601}"
WAIT="${KIBANA_WAIT:-120}"
auth=()
if [ -n "${KIBANA_AUTH:-}" ]; then auth=(-u "$KIBANA_AUTH"); fi

deadline=$((SECONDS + WAIT))
until curl -fsS "${auth[@]}" -o /dev/null "$KIBANA_URL/api/status"; do
    if [ "$SECONDS" -ge "$deadline" ]; then
        echo "[kibana] no answer from $KIBANA_URL/api/status after ${WAIT}s" >&2
        exit 1
    fi
    sleep 2
done

response="$(curl -sS "${auth[@]}" -X POST "$KIBANA_URL/api/saved_objects/_import?overwrite=true" \
    -H 'kbn-xsrf: true' --form "file=@$HERE/saved_objects.ndjson")"
if ! printf '%s' "$response" | grep -Eq '"success": *true'; then
    echo "[kibana] import failed: $response" >&2
    exit 1
fi
echo "[kibana] imported: $(printf '%s' "$response" | grep -Eo '"successCount": *[0-9]+')"
