#!/usr/bin/env bash
# The admin API from a shell: a token by client credentials, then an app, a person, a group,
# an assignment, a secret rotation and the audit trail of all of it.
#
# Needs curl and python3 (to read JSON). IDP is the issuer URL; CLIENT_ID and CLIENT_SECRET
# come from: manage.py clients create --kind service --name NAME --scope admin:users
#            --scope admin:clients --scope admin:audit --json
set -euo pipefail
: "${IDP:?}" "${CLIENT_ID:?}" "${CLIENT_SECRET:?}"
json() { python3 -c "import json, sys; d = json.load(sys.stdin); print($1)"; }

# 1. An access token (RFC 6749 §4.4): ask for the scopes this script needs.
TOKEN=$(curl -sf -u "$CLIENT_ID:$CLIENT_SECRET" "$IDP/o/token/" \
  -d grant_type=client_credentials \
  --data-urlencode "scope=admin:users admin:clients admin:audit" | json 'd["access_token"]')
api() { curl -sf -H "Authorization: Bearer $TOKEN" -H "Content-Type: application/json" "$@"; }

# 2. Register an app: its secret is in this answer only.
api "$IDP/api/v1/clients/" -d '{"kind": "web", "name": "Wiki", "client_id": "wiki",
  "redirect_uris": ["https://wiki.example.com/callback"]}' | json 'd["client"]["client_id"]'

# 3. A person (emailed a link to choose a password when none is given) and a group.
api "$IDP/api/v1/users/" -d '{"username": "grace", "email": "grace@example.com"}' \
  | json 'd["username"]'
GROUP=$(api "$IDP/api/v1/groups/" -d '{"name": "Engineering"}' | json 'd["id"]')
api "$IDP/api/v1/groups/$GROUP/members" -d '{"usernames": ["grace"]}' | json 'd["usernames"]'

# 4. Only Engineering may use the wiki.
api -X PATCH "$IDP/api/v1/clients/wiki" -d '{"access_policy": "assigned"}' \
  | json 'd["access_policy"]'
api "$IDP/api/v1/clients/wiki/assignments" -d '{"group": "Engineering"}' \
  | json 'd["assigned_groups"]'

# 5. A new secret; the old one keeps working for ten minutes.
api "$IDP/api/v1/clients/wiki/rotate-secret" -d '{"grace_seconds": 600}' \
  | json 'd["previous_valid_until"]'

# 6. What this service client did, newest first (follow next_cursor for more).
api -G "$IDP/api/v1/audit-events/" --data-urlencode "actor=service:$CLIENT_ID" \
  | json '"\n".join(event["type"] for event in d["items"])'
