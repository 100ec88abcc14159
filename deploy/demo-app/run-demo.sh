#!/usr/bin/env bash
# `make demo`: the IdP (with its task worker) and the demo relying party together on loopback, the demo client
# registered (idempotently) and a demo user created on the first run. Ctrl-C stops both.
#
# Environment (defaults): HOST (127.0.0.1), IDP_PORT (8000), DEMO_PORT (8001), DEMO_USER (demo),
# DEMO_DATA_DIR (deploy/demo-app/var: the demo's database and client.json, outside git),
# IDP_DATA_DIR (var/: the IdP's embedded database and dev keys), PYTHON (.venv/bin/python).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
PY="${PYTHON:-$ROOT/.venv/bin/python}"
PY="$(cd "$(dirname "$PY")" && pwd)/$(basename "$PY")"  # absolute, venv symlink kept
HOST="${HOST:-127.0.0.1}"
IDP_PORT="${IDP_PORT:-8000}"
DEMO_PORT="${DEMO_PORT:-8001}"
export IDP_ISSUER="http://$HOST:$IDP_PORT"
export DEMO_BASE_URL="http://$HOST:$DEMO_PORT"
export DEMO_IDP_ISSUER="$IDP_ISSUER"
export DEMO_DATA_DIR="${DEMO_DATA_DIR:-$ROOT/deploy/demo-app/var}"
cd "$ROOT"

"$PY" manage.py migrate --noinput -v0
"$PY" manage.py ensure_signing_key
"$PY" manage.py register_demo_client --demo-url "$DEMO_BASE_URL" \
    --output-dir "$DEMO_DATA_DIR" --create-user "${DEMO_USER:-demo}"
(cd deploy/demo-app && "$PY" manage.py migrate --noinput -v0)

# Stop both servers when this script ends (Ctrl-C, or one of them exiting).
trap 'kill $(jobs -p) 2>/dev/null || true' EXIT INT TERM
"$PY" manage.py runserver "$HOST:$IDP_PORT" --noreload &
# The IdP's task worker delivers back-channel logout tokens (to the demo's /backchannel-logout/).
"$PY" manage.py db_worker --no-reload --interval 0.5 &
(cd deploy/demo-app && exec "$PY" manage.py runserver "$HOST:$DEMO_PORT" --noreload) &
echo
echo "IdP:       $IDP_ISSUER/  (admin: $IDP_ISSUER/admin/, button kit: $IDP_ISSUER/button/)"
echo "Demo app:  $DEMO_BASE_URL/  <- open this and click \"Sign in with Company\""
echo
wait -n
