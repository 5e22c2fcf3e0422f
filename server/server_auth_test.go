package server_test

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keymint/keymint/quota"
	"github.com/keymint/keymint/server"
	"github.com/keymint/keymint/token"
	"github.com/keymint/keymint/vault"
)

// authStep is one request of a throttle scenario: times requests to
// /token from remote with cred's Authorization header, each answered want.
type authStep struct {
	name   string
	remote string
	cred   func(t testing.TB, e *env) http.Header
	times  int // 1 unless set
	want   int
	retry  string // Retry-After wanted, if set
}

// Addresses of the throttle scenarios.
const (
	attackerAddr = "198.51.100.1:1000"
	realAddr     = "203.0.113.5:1000"
	freshAddr    = "192.0.2.200:1"
)

// Credentials of the throttle scenarios.
var (
	rightSecret = func(name string) func(testing.TB, *env) http.Header {
		return func(_ testing.TB, e *env) http.Header { return e.basic(name) }
	}
	wrongSecret = func(name string) func(testing.TB, *env) http.Header {
		return func(t testing.TB, e *env) http.Header { return basic(e.clients[name].id, e.newSecret(t)) }
	}
	// unknownClient is a client_id that does not exist, with a real
	// client's secret.
	unknownClient = func(_ testing.TB, e *env) http.Header {
		return basic("cl_nobody0000000000000000", e.clients["erp"].secret)
	}
)

// TestFailedAuthThrottle: failed client authentication is throttled per
// address: after a burst of failures the address gets 429 with
// Retry-After, at once rather than by sleeping, for any client_id, known
// or not. The right secret is never refused by the throttle: not from
// another address, not from a fresh one, not even from the attacker's
// own; so knowing a client_id (which is public) does not let anyone lock
// the client out. Time heals.
func TestFailedAuthThrottle(t *testing.T) {
	for _, tc := range []struct {
		name  string
		steps []authStep
	}{{
		name: "attacker throttled after the burst",
		steps: []authStep{
			{name: "wrong secret", remote: attackerAddr, cred: wrongSecret("erp"), times: 10, want: 401},
			{name: "11th wrong secret", remote: attackerAddr, cred: wrongSecret("erp"), want: 429, retry: "1"},
			{name: "wrong secrets go on", remote: attackerAddr, cred: wrongSecret("erp"), times: 5, want: 429, retry: "1"},
			{name: "another client's wrong secret", remote: attackerAddr, cred: wrongSecret("narrow"), want: 429},
			{name: "unknown client", remote: attackerAddr, cred: unknownClient, want: 429},
		},
	}, {
		name: "real client from another address during the attack",
		steps: []authStep{
			{name: "attack", remote: attackerAddr, cred: wrongSecret("erp"), times: 11},
			{name: "real client", remote: realAddr, cred: rightSecret("erp"), times: 20, want: 200},
			{name: "more attack", remote: attackerAddr, cred: wrongSecret("erp"), times: 20, want: 429},
			{name: "real client again", remote: realAddr, cred: rightSecret("erp"), want: 200},
		},
	}, {
		name: "real client from an address it never used",
		steps: []authStep{
			{name: "attack", remote: attackerAddr, cred: wrongSecret("erp"), times: 30},
			{name: "real client", remote: freshAddr, cred: rightSecret("erp"), times: 3, want: 200},
			{name: "another client", remote: freshAddr, cred: rightSecret("narrow"), want: 200},
		},
	}, {
		name: "real client from the attacker's own address",
		steps: []authStep{
			{name: "attack", remote: attackerAddr, cred: wrongSecret("erp"), times: 11},
			{name: "right secret", remote: attackerAddr, cred: rightSecret("erp"), times: 5, want: 200},
			{name: "wrong secret still throttled", remote: attackerAddr, cred: wrongSecret("erp"), want: 429},
			{name: "right secret again", remote: attackerAddr, cred: rightSecret("erp"), want: 200},
		},
	}, {
		name: "successes do not refill the bucket",
		steps: []authStep{
			{name: "failures", remote: attackerAddr, cred: wrongSecret("erp"), times: 10, want: 401},
			{name: "successes", remote: attackerAddr, cred: rightSecret("erp"), times: 10, want: 200},
			{name: "next failure", remote: attackerAddr, cred: wrongSecret("erp"), want: 429},
		},
	}, {
		name: "unknown client_ids drain the address's bucket too",
		steps: []authStep{
			{name: "unknown client", remote: attackerAddr, cred: unknownClient, times: 10, want: 401},
			{name: "wrong secret of a known one", remote: attackerAddr, cred: wrongSecret("erp"), want: 429},
			{name: "known client elsewhere", remote: freshAddr, cred: wrongSecret("erp"), want: 401},
		},
	}, {
		name: "an IPv6 /64 is one address",
		steps: []authStep{
			{name: "fresh address", remote: "[2001:db8::1]:1", cred: unknownClient, want: 401},
			{name: "same /64", remote: "[2001:db8::2]:1", cred: unknownClient, times: 9, want: 401},
			{name: "another of the /64", remote: "[2001:db8::ffff]:1", cred: unknownClient, want: 429},
			{name: "right secret from the /64", remote: "[2001:db8::ffff]:1", cred: rightSecret("erp"), want: 200},
			{name: "the next /64", remote: "[2001:db8:0:1::1]:1", cred: unknownClient, want: 401},
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			form := url.Values{"grant_type": {"client_credentials"}}
			for _, st := range tc.steps {
				for i := range max(st.times, 1) {
					start := time.Now()
					w := e.do(t, request{path: "/token", form: form, header: st.cred(t, e), remote: st.remote})
					if d := time.Since(start); d > 500*time.Millisecond {
						t.Errorf("%s: request took %s: the throttle must not sleep", st.name, d)
					}
					if st.want != 0 && w.Code != st.want {
						t.Fatalf("%s, request %d: %d %s, want %d", st.name, i+1, w.Code, w.Body, st.want)
					}
					if st.retry != "" && w.Header().Get("Retry-After") != st.retry {
						t.Errorf("%s, request %d: Retry-After %q, want %q", st.name, i+1, w.Header().Get("Retry-After"), st.retry)
					}
					if w.Code == http.StatusTooManyRequests {
						checkNoStore(t, w)
						var body oauthErr
						decodeJSON(t, w.Body.Bytes(), &body)
						if body.Error != "temporarily_unavailable" {
							t.Errorf("%s: 429 with error %q", st.name, body.Error)
						}
					}
				}
			}
		})
	}
}

// TestFailedAuthThrottleOtherEndpoints: /introspect and /revoke
// authenticate the same way: failures drain the address's bucket, the
// right secret passes from a throttled address; and time refills.
func TestFailedAuthThrottleOtherEndpoints(t *testing.T) {
	e := newEnv(t)
	tok := e.token(t, "erp", nil)
	wrong := basic(e.clients["erp"].id, e.newSecret(t))
	for range 10 {
		e.do(t, request{path: "/introspect", form: url.Values{"token": {tok}}, header: wrong, remote: attackerAddr})
	}
	for _, path := range []string{"/introspect", "/revoke"} {
		w := e.do(t, request{path: path, form: url.Values{"token": {tok}}, header: wrong, remote: attackerAddr})
		if w.Code != http.StatusTooManyRequests {
			t.Errorf("%s with a wrong secret from the throttled address: %d", path, w.Code)
		}
		checkNoStore(t, w)
		if w := e.do(t, request{path: path, form: url.Values{"token": {tok}}, header: e.basic("erp"), remote: attackerAddr}); w.Code != 200 {
			t.Errorf("%s with the right secret from the throttled address: %d %s", path, w.Code, w.Body)
		}
	}
	form := url.Values{"grant_type": {"client_credentials"}}
	if w := e.do(t, request{path: "/token", form: form, header: wrong, remote: attackerAddr}); w.Code != http.StatusTooManyRequests {
		t.Errorf("/token with a wrong secret after /introspect's failures: %d", w.Code)
	}
	// Time refills the bucket.
	e.clock.Advance(10 * time.Second)
	for i := range 10 {
		if w := e.do(t, request{path: "/token", form: form, header: wrong, remote: attackerAddr}); w.Code != 401 {
			t.Fatalf("after 10s, failure %d: %d", i+1, w.Code)
		}
	}
}

// TestUnknownClientAnsweredAsWrongSecret: an unknown client_id and a wrong
// secret for a known one get the same answer, status, fields and body,
// before the address is throttled and after: the answers do not tell
// which client_ids exist. Only the log does, for the operator.
func TestUnknownClientAnsweredAsWrongSecret(t *testing.T) {
	e := newEnv(t)
	server.SetAuthThrottle(e.srv, 2, 30*time.Second)
	form := url.Values{"grant_type": {"client_credentials"}}
	answer := func(remote string, h http.Header) string {
		t.Helper()
		w := e.do(t, request{path: "/token", form: form, header: h, remote: remote})
		var b strings.Builder
		fmt.Fprintf(&b, "%d\n", w.Code)
		for _, k := range []string{"Content-Type", "Cache-Control", "Pragma", "WWW-Authenticate", "Retry-After"} {
			fmt.Fprintf(&b, "%s: %q\n", k, w.Header().Values(k))
		}
		b.WriteString(w.Body.String())
		return b.String()
	}
	known := func() http.Header { return basic(e.clients["erp"].id, e.newSecret(t)) }
	unknown := func() http.Header { return basic("cl_nobody0000000000000000", e.newSecret(t)) }
	for i, want := range []int{401, 401, 429, 429} {
		// Each from its own address, each address in the same state.
		a := answer("192.0.2.1:1", known())
		b := answer("192.0.2.2:1", unknown())
		if a != b {
			t.Errorf("attempt %d: a known client_id is answered\n%s\nand an unknown one\n%s", i+1, a, b)
		}
		if !strings.HasPrefix(a, strconv.Itoa(want)+"\n") {
			t.Errorf("attempt %d: %s, want %d", i+1, a, want)
		}
	}
	// With client_secret_post as well.
	for i := range 3 {
		w1 := e.do(t, request{path: "/token", remote: "192.0.2.3:1", form: url.Values{"grant_type": {"client_credentials"},
			"client_id": {e.clients["erp"].id}, "client_secret": {e.newSecret(t)}}})
		w2 := e.do(t, request{path: "/token", remote: "192.0.2.4:1", form: url.Values{"grant_type": {"client_credentials"},
			"client_id": {"cl_nobody0000000000000000"}, "client_secret": {e.newSecret(t)}}})
		if w1.Code != w2.Code || w1.Body.String() != w2.Body.String() || w1.Header().Get("Retry-After") != w2.Header().Get("Retry-After") {
			t.Errorf("client_secret_post, attempt %d: known %d %s, unknown %d %s", i+1, w1.Code, w1.Body, w2.Code, w2.Body)
		}
	}
	// The log tells them apart.
	logs := e.logs.String()
	for _, want := range []string{"unknown client", "wrong or retired secret", `"client_id":"` + e.clients["erp"].id + `"`} {
		if !strings.Contains(logs, want) {
			t.Errorf("the log does not say %q", want)
		}
	}
}

// TestRotatedSecretUnderAttack: a secret rotated in while the client's id
// is being hammered works at once, from any address, the attacker's
// included; the old one keeps working for its grace period.
func TestRotatedSecretUnderAttack(t *testing.T) {
	e := newEnv(t)
	erp := e.clients["erp"]
	form := url.Values{"grant_type": {"client_credentials"}}
	for range 30 {
		e.do(t, request{path: "/token", form: form, header: basic(erp.id, e.newSecret(t)), remote: attackerAddr})
	}
	newSecret := e.newSecret(t)
	if err := e.open(t).Update(func(tx *vault.Tx) error { _, err := tx.RotateClient(erp.id, newSecret, time.Hour); return err }); err != nil {
		t.Fatal(err)
	}
	server.Poll(e.srv)
	for _, remote := range []string{realAddr, freshAddr, attackerAddr, "[2001:db8::9]:443"} {
		if w := e.do(t, request{path: "/token", form: form, header: basic(erp.id, newSecret), remote: remote}); w.Code != 200 {
			t.Errorf("new secret from %s: %d %s", remote, w.Code, w.Body)
		}
		if w := e.do(t, request{path: "/token", form: form, header: basic(erp.id, erp.secret), remote: remote}); w.Code != 200 {
			t.Errorf("old secret in its grace period from %s: %d %s", remote, w.Code, w.Body)
		}
	}
	if w := e.do(t, request{path: "/token", form: form, header: basic(erp.id, e.newSecret(t)), remote: attackerAddr}); w.Code != http.StatusTooManyRequests {
		t.Errorf("the attacker after the rotation: %d", w.Code)
	}
	// Rotated with no grace: the old secret is a failure like any other.
	newer := e.newSecret(t)
	if err := e.open(t).Update(func(tx *vault.Tx) error { _, err := tx.RotateClient(erp.id, newer, 0); return err }); err != nil {
		t.Fatal(err)
	}
	server.Poll(e.srv)
	if w := e.do(t, request{path: "/token", form: form, header: basic(erp.id, newer), remote: attackerAddr}); w.Code != 200 {
		t.Errorf("newest secret from the attacker's address: %d", w.Code)
	}
	if w := e.do(t, request{path: "/token", form: form, header: basic(erp.id, erp.secret), remote: freshAddr}); w.Code != 401 {
		t.Errorf("retired secret: %d, want 401", w.Code)
	}
}

// TestRetryAfterGrows: Retry-After says how long until one more attempt.
func TestRetryAfterGrows(t *testing.T) {
	e := newEnv(t)
	server.SetAuthThrottle(e.srv, 1, 30*time.Second)
	wrong := basic(e.clients["erp"].id, e.newSecret(t))
	form := url.Values{"grant_type": {"client_credentials"}}
	e.do(t, request{path: "/token", form: form, header: wrong})
	w := e.do(t, request{path: "/token", form: form, header: wrong})
	if w.Code != 429 || w.Header().Get("Retry-After") != "30" {
		t.Fatalf("%d Retry-After %q", w.Code, w.Header().Get("Retry-After"))
	}
	e.clock.Advance(20 * time.Second)
	w = e.do(t, request{path: "/token", form: form, header: wrong})
	if got, _ := strconv.Atoi(w.Header().Get("Retry-After")); w.Code != 429 || got != 10 {
		t.Errorf("20s later: %d Retry-After %d", w.Code, got)
	}
}

// TestLogsCarryNoSecrets runs good and bad requests of every kind, logging
// at debug level in text and in JSON, and checks that no secret, token or
// Authorization header reaches the log, while the log still says what
// happened.
func TestLogsCarryNoSecrets(t *testing.T) {
	for _, format := range []string{"text", "json"} {
		t.Run(format, func(t *testing.T) {
			var logs syncBuffer
			e := newEnv(t, logTo(&logs, format))
			erp := e.clients["erp"]
			wrongSecret := e.newSecret(t)
			var tokens, headers []string
			cc := url.Values{"grant_type": {"client_credentials"}}
			get := func(name string) string {
				tok := e.token(t, name, nil)
				tokens = append(tokens, tok)
				return tok
			}
			tok := get("erp")
			narrowTok := get("narrow")
			// A forged token naming a secret as its kid: the header is
			// unverified, and its kid must not reach the log.
			parts := strings.Split(tok, ".")
			secretKid := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"ES256","kid":"`+erp.secret+`","typ":"at+jwt"}`)) +
				"." + parts[1] + "." + parts[2]
			reqs := []request{
				{path: "/introspect", form: url.Values{"token": {secretKid}}, header: e.basic("erp")},
				{path: "/revoke", form: url.Values{"token": {secretKid}}, header: e.basic("erp")},
				{path: "/token", form: url.Values{"grant_type": {"client_credentials"}, "client_id": {erp.id}, "client_secret": {erp.secret}}},
				{path: "/token", form: cc, header: basic(erp.id, wrongSecret)},
				{path: "/token", form: cc, header: basic(wrongSecret, erp.secret)}, // secret where the id goes
				{path: "/token", form: url.Values{"grant_type": {"client_credentials"}, "client_id": {erp.secret}, "client_secret": {wrongSecret}}},
				{path: "/token", form: url.Values{"grant_type": {"client_credentials"}, "client_id": {erp.id}, "client_secret": {erp.secret}}, header: e.basic("erp")},
				{path: "/token", form: cc, header: http.Header{"Authorization": {"Bearer " + tok}}},
				{path: "/token", form: cc, header: http.Header{"Authorization": {"Basic " + base64.StdEncoding.EncodeToString([]byte(erp.secret))}}},
				{path: "/token?client_secret=" + erp.secret, form: cc, header: e.basic("erp")},
				{path: "/token", form: url.Values{"grant_type": {erp.secret}}, header: e.basic("erp")},
				{path: "/token", form: url.Values{"grant_type": {"client_credentials"}, "scope": {"admin " + erp.secret}}, header: e.basic("erp")},
				{path: "/token", form: url.Values{"grant_type": {"client_credentials"}, "audience": {erp.secret}}, header: e.basic("narrow")},
				{path: "/introspect", form: url.Values{"token": {tok}}, header: e.basic("erp")},
				{path: "/introspect", form: url.Values{"token": {tok + "x"}}, header: e.basic("erp")},
				{path: "/introspect", form: url.Values{"token": {tok}}, header: basic(erp.id, wrongSecret)},
				{path: "/introspect?token=" + tok, form: url.Values{}, header: e.basic("erp")},
				{path: "/revoke", form: url.Values{"token": {narrowTok}}, header: e.basic("erp")},
				{path: "/revoke", form: url.Values{"token": {tok}}, header: e.basic("erp")},
				{path: "/revoke", form: url.Values{"token": {tok}}, header: e.basic("erp")},
				{method: http.MethodGet, path: "/" + tok},
				{method: http.MethodGet, path: "/token/" + erp.secret},
				{method: http.MethodGet, path: "/healthz"},
				{method: http.MethodGet, path: "/jwks.json"},
			}
			for i, r := range reqs {
				r.remote = fmt.Sprintf("192.0.2.%d:1", 100+i)
				if h := r.header.Get("Authorization"); h != "" {
					headers = append(headers, strings.TrimPrefix(strings.TrimPrefix(h, "Basic "), "Bearer "))
				}
				e.do(t, r)
			}
			if err := e.srv.Flush(); err != nil {
				t.Fatal(err)
			}
			out := logs.String()
			var leaks []string
			check := func(what, s string) {
				if s != "" && strings.Contains(out, s) {
					leaks = append(leaks, what)
				}
			}
			for _, s := range e.secrets {
				check("a secret", s)
				check("a secret's random part", s[len("kmcs_"):len("kmcs_")+20])
			}
			for _, tok := range tokens {
				check("a token", tok)
				parts := strings.Split(tok, ".")
				check("a token's payload", parts[1])
				check("a token's signature", parts[2])
			}
			for _, h := range headers {
				check("an Authorization header", h)
			}
			if len(leaks) > 0 {
				t.Errorf("the log carries %s:\n%s", strings.Join(leaks, ", "), out)
			}
			for _, want := range []string{"invalid_client", "invalid_request", "unauthorized_client", "/introspect", "/revoke", erp.id, "jti"} {
				if !strings.Contains(out, want) {
					t.Errorf("the log does not mention %q:\n%s", want, out)
				}
			}
		})
	}
}

// TestTokenQuota: each token issued counts as one use of the client; the
// response carries the RateLimit fields, and a client over its limit gets
// 429 with Retry-After and no token, while other clients go on. Uses are
// counted in the vault, where the CLI sees them.
func TestTokenQuota(t *testing.T) {
	e := newEnv(t)
	secret := e.newSecret(t)
	c := &vault.Client{Credential: vault.Credential{Name: "metered", Scopes: []string{"x"}, Limits: []vault.Limit{{Count: 2, Period: "month"}}},
		GrantTypes: []string{token.GrantClientCredentials}, TokenTTL: time.Hour}
	if err := e.vault.Update(func(tx *vault.Tx) error { return tx.CreateClient(c, secret) }); err != nil {
		t.Fatal(err)
	}
	if err := e.srv.Reload(); err != nil {
		t.Fatal(err)
	}
	form := url.Values{"grant_type": {"client_credentials"}}
	for i, want := range []string{"1", "0"} {
		w := e.do(t, request{path: "/token", form: form, header: basic(c.ID, secret)})
		if w.Code != 200 {
			t.Fatalf("token %d: %d %s", i+1, w.Code, w.Body)
		}
		if got := w.Header().Get("RateLimit-Remaining"); got != want || w.Header().Get("RateLimit-Limit") != "2" || w.Header().Get("X-RateLimit-Remaining") != want {
			t.Errorf("token %d: RateLimit-Limit %q Remaining %q", i+1, w.Header().Get("RateLimit-Limit"), got)
		}
		checkRateLimit(t, w, `"month";q=2;w=2592000`, `"month";r=`+want+`;t=`+w.Header().Get("RateLimit-Reset"))
	}
	w := e.do(t, request{path: "/token", form: form, header: basic(c.ID, secret)})
	if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") == "" || w.Header().Get("RateLimit-Remaining") != "0" {
		t.Fatalf("over the limit: %d Retry-After %q headers %v", w.Code, w.Header().Get("Retry-After"), w.Header())
	}
	checkRateLimit(t, w, `"month";q=2;w=2592000`, `"month";r=0;t=`+w.Header().Get("Retry-After"))
	if w.Header().Get("RateLimit-Reset") != w.Header().Get("Retry-After") {
		t.Errorf("RateLimit-Reset %q, Retry-After %q", w.Header().Get("RateLimit-Reset"), w.Header().Get("Retry-After"))
	}
	checkNoStore(t, w)
	var body oauthErr
	decodeJSON(t, w.Body.Bytes(), &body)
	if body.Error != "quota_exceeded" || strings.Contains(w.Body.String(), "access_token") {
		t.Errorf("body %s", w.Body)
	}
	// A client without limits has no RateLimit fields and is not stopped.
	w = e.do(t, request{path: "/token", form: form, header: e.basic("erp")})
	if w.Code != 200 || w.Header().Get("RateLimit-Limit") != "" || w.Header().Get("RateLimit") != "" || w.Header().Get("RateLimit-Policy") != "" {
		t.Errorf("unlimited client: %d %v", w.Code, w.Header())
	}
	// The vault counted the two uses: a token minted offline is refused too.
	err := e.open(t).Update(func(tx *vault.Tx) error {
		got, err := tx.Client(c.ID)
		if err != nil {
			return err
		}
		d, err := quota.Consume(tx, &got.Credential, e.clock.Now())
		if err != nil {
			return err
		}
		if d.Allowed {
			t.Error("the vault allows a third use")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
