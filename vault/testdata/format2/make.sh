#!/bin/bash
# Builds a format-2 vault with keymint at the commit checked out in /tmp/km-f2.
set -euo pipefail
W=/tmp/f2make
rm -rf $W && mkdir -p $W && cd $W
export XDG_CONFIG_HOME=$W/config XDG_DATA_HOME=$W/data XDG_STATE_HOME=$W/state
K=/tmp/km-f2/keymint
j() { python3 -c "import json,sys; d=json.load(sys.stdin); print(d$1)"; }
$K init -o json > init.json
KEY_ALPHA=$($K key new alpha --scope invoices:read --limit 8000/month -o json | j "['secret']")
KEY_ALPHA_ID=$($K key show alpha -o json | j "['id']")
KEY_BETA_OLD=$($K key new beta --scope reports:read -o json | j "['secret']")
KEY_BETA_NEW=$($K key rotate beta --grace 720h -o json | j "['secret']")
KEY_GONE=$($K key new gone -o json | j "['secret']")
$K key rm gone >/dev/null
$K client new erp --scope "invoices:read invoices:write" --limit 8000/month -o json > erp.json
$K client new portal --grant authorization_code \
  --redirect-uri https://portal.example.com/callback --redirect-uri http://127.0.0.1:9000/cb \
  --scope "openid profile invoices:read" --description "Customer portal" \
  --url https://portal.example.com --policy-url https://portal.example.com/privacy \
  --tos-url https://portal.example.com/terms -o json > portal.json
$K client new old --scope invoices:read -o json > old.json
$K client rotate-secret old --grace 0s -o json > old2.json
$K signing-key rotate -o json > sk.json
$K usage top-up erp 100 >/dev/null
ERP_ID=$(j "['client_id']" < erp.json); ERP_SECRET=$(j "['client_secret']" < erp.json)
TOKEN_REVOKED=$($K token issue --client erp)
TOKEN_LIVE=$($K token issue --client erp)
echo -n "$KEY_ALPHA" | $K key verify >/dev/null
echo -n "$KEY_ALPHA" | $K key verify >/dev/null
$K serve --listen 127.0.0.1:18089 --issuer http://127.0.0.1:8080 2> serve.log &
SERVE=$!
for i in $(seq 50); do curl -fs http://127.0.0.1:18089/healthz >/dev/null && break; sleep 0.1; done
curl -fsS -u "$ERP_ID:$ERP_SECRET" -d "token=$TOKEN_REVOKED" http://127.0.0.1:18089/revoke
kill $SERVE; wait $SERVE || true
python3 - "$@" <<PY
import json
def load(f): return json.load(open("$W/"+f))
print(json.dumps({
 "note": "a throwaway vault made by keymint format 2 (commit $(git -C /tmp/km-f2 rev-parse --short HEAD)) for the migration test; these secrets open nothing else",
 "made_at": "$(date -u +%Y-%m-%dT%H:%M:%SZ)",
 "key_alpha": "$KEY_ALPHA", "key_alpha_id": "$KEY_ALPHA_ID",
 "key_beta_old": "$KEY_BETA_OLD", "key_beta_new": "$KEY_BETA_NEW", "key_gone": "$KEY_GONE",
 "client_erp_id": "$ERP_ID", "client_erp_secret": "$ERP_SECRET",
 "client_portal_id": load("portal.json")["client_id"], "client_portal_secret": load("portal.json")["client_secret"],
 "client_old_id": load("old.json")["client_id"], "client_old_retired": load("old.json")["client_secret"],
 "client_old_secret": load("old2.json")["client_secret"],
 "token_revoked": "$TOKEN_REVOKED", "token_live": "$TOKEN_LIVE",
}, indent=1))
PY
