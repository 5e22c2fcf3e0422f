package issuer_test

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keymint/keymint/issuer"
	"github.com/keymint/keymint/quota"
	"github.com/keymint/keymint/vault"
)

// TestFailedAuthSlowdown: repeated failed client authentication from one
// address, or against one client, is refused with 429 and Retry-After, at
// once rather than by sleeping; the real client keeps working from where
// it authenticated before; time heals.
func TestFailedAuthSlowdown(t *testing.T) {
	e := newEnv(t)
	erp := e.clients["erp"]
	form := url.Values{"grant_type": {"client_credentials"}}
	try := func(remote string, h http.Header) (int, string) {
		t.Helper()
		start := time.Now()
		w := e.do(t, request{path: "/token", form: form, header: h, remote: remote})
		if d := time.Since(start); d > 500*time.Millisecond {
			t.Errorf("request took %s: the throttle must not sleep", d)
		}
		return w.Code, w.Header().Get("Retry-After")
	}
	wrong := basic(erp.id, e.newSecret(t))

	// The real client authenticates from its own address first.
	if code, _ := try("203.0.113.5:1000", e.basic("erp")); code != 200 {
		t.Fatalf("real client: %d", code)
	}

	// One attacking address: 10 failures, then 429 even with the right
	// secret, and for unknown clients too.
	for i := range 10 {
		if code, _ := try("198.51.100.1:1000", wrong); code != 401 {
			t.Fatalf("failure %d: status %d, want 401", i, code)
		}
	}
	code, retry := try("198.51.100.1:1000", wrong)
	if code != http.StatusTooManyRequests || retry != "1" {
		t.Errorf("11th failure: %d Retry-After %q, want 429 and 1", code, retry)
	}
	if code, _ := try("198.51.100.1:1000", e.basic("erp")); code != http.StatusTooManyRequests {
		t.Errorf("right secret from the throttled address: %d", code)
	}
	if code, _ := try("198.51.100.1:1000", basic("cl_nobody0000000000000000", erp.secret)); code != http.StatusTooManyRequests {
		t.Errorf("unknown client from the throttled address: %d", code)
	}
	// The same /64 is the same address. (An unknown client has no bucket
	// of its own, so only the address counts here.)
	nobody := basic("cl_nobody0000000000000000", erp.secret)
	if code, _ := try("[2001:db8::1]:1", nobody); code != 401 {
		t.Fatalf("fresh IPv6 address: %d", code)
	}
	for range 9 {
		try("[2001:db8::2]:1", nobody)
	}
	if code, _ := try("[2001:db8::ffff]:1", nobody); code != http.StatusTooManyRequests {
		t.Errorf("another address of the same /64: %d", code)
	}
	if code, _ := try("[2001:db8:0:1::1]:1", nobody); code != 401 {
		t.Errorf("the next /64: %d", code)
	}

	// The client's own bucket was drained by those failures: a fresh
	// address is refused for erp, but not for another client, and the real
	// client's address still works.
	if code, _ := try("192.0.2.200:1", e.basic("erp")); code != http.StatusTooManyRequests {
		t.Errorf("erp from a fresh address while erp is under attack: %d", code)
	}
	if code, _ := try("192.0.2.200:1", e.basic("narrow")); code != 200 {
		t.Errorf("another client from a fresh address: %d", code)
	}
	if code, _ := try("203.0.113.5:1000", e.basic("erp")); code != 200 {
		t.Errorf("real client from its own address during the attack: %d", code)
	}

	// A throttled introspection or revocation is refused the same way.
	w := e.do(t, request{path: "/introspect", form: url.Values{"token": {"x"}}, header: wrong, remote: "198.51.100.1:1000"})
	if w.Code != http.StatusTooManyRequests {
		t.Errorf("/introspect from the throttled address: %d", w.Code)
	}
	checkNoStore(t, w)

	// Time refills the buckets.
	e.clock.Advance(10 * time.Second)
	if code, _ := try("198.51.100.1:1000", e.basic("erp")); code != 200 {
		t.Errorf("after 10s: %d", code)
	}
}

// TestRetryAfterGrows: Retry-After says how long until one more attempt.
func TestRetryAfterGrows(t *testing.T) {
	e := newEnv(t)
	issuer.SetAuthThrottle(e.srv, 1, 30*time.Second)
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
		GrantTypes: []string{issuer.GrantClientCredentials}, TokenTTL: time.Hour}
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
