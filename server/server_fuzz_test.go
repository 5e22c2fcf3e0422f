package server_test

import (
	"encoding/base64"
	"encoding/json"
	"hash/crc32"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/keymint/keymint/apikey"
	"github.com/keymint/keymint/server"
	"github.com/keymint/keymint/token"
	"github.com/keymint/keymint/vault"
)

// FuzzTokenRequest sends arbitrary token requests (Authorization header,
// Content-Type, body) to /token. It must never panic; every response is an
// RFC 6749 answer that is never cached; and a token is issued only to a
// request that carries the client's real secret, as found by a decoding
// independent of the server's, and is then the client's own.
func FuzzTokenRequest(f *testing.F) {
	e := newEnv(f)
	server.SetAuthThrottle(e.srv, 1<<30, time.Nanosecond) // every input gets authenticated
	ks := e.keySet(f)
	// The fuzzing workers each build their own vault, but run inputs the
	// coordinator found: the client that matters has the same id and
	// secret in every process.
	erp := testClient{id: "cl_fuzzFUZZfuzzFUZZfuzzFU", secret: fixedSecret(f, "kmcs", "fuzz")}
	err := e.vault.Update(func(tx *vault.Tx) error {
		return tx.CreateClient(&vault.Client{
			Credential: vault.Credential{ID: erp.id, Name: "fuzz", Scopes: []string{"invoices:read", "invoices:write"}},
			GrantTypes: []string{token.GrantClientCredentials}, TokenTTL: time.Hour}, erp.secret)
	})
	if err != nil {
		f.Fatal(err)
	}
	if err := e.srv.Reload(); err != nil {
		f.Fatal(err)
	}
	form := "application/x-www-form-urlencoded"
	basicOf := func(s string) string { return "Basic " + base64.StdEncoding.EncodeToString([]byte(s)) }

	f.Add(basicOf(erp.id+":"+erp.secret), form, "grant_type=client_credentials")
	f.Add(basicOf(erp.id+":"+erp.secret), form, "grant_type=client_credentials&scope=invoices:read&audience=x&resource=https://a.example")
	f.Add("", form, "grant_type=client_credentials&client_id="+erp.id+"&client_secret="+erp.secret)
	f.Add(basicOf(erp.id+":"+erp.secret), form, "grant_type=client_credentials&client_secret="+erp.secret)
	f.Add(basicOf(erp.id+":"+erp.secret), form, "grant_type=client_credentials&grant_type=client_credentials")
	f.Add(basicOf(erp.id+":"+erp.secret), form+"; charset=utf-8", "grant_type=password")
	f.Add(basicOf(erp.id+":"+erp.secret), form, "grant_type=client_credentials&scope=admin")
	f.Add(basicOf(erp.id+":x"), form, "grant_type=client_credentials")
	f.Add(basicOf(url.QueryEscape(erp.id)+":"+strings.ReplaceAll(erp.secret, "_", "%5F")), form, "grant_type=client_credentials")
	f.Add("Basic !!!", form, "grant_type=client_credentials")
	f.Add("Bearer "+erp.secret, "application/json", `{"grant_type":"client_credentials"}`)
	f.Add("", form, "%zz;&&==")
	f.Add(basicOf(erp.secret), "", "")

	f.Fuzz(func(t *testing.T, authorization, contentType, body string) {
		r := httptest.NewRequest(http.MethodPost, "/token", strings.NewReader(body))
		if authorization != "" {
			r.Header.Set("Authorization", authorization)
		}
		if contentType != "" {
			r.Header.Set("Content-Type", contentType)
		}
		w := httptest.NewRecorder()
		e.srv.ServeHTTP(w, r)

		switch w.Code {
		case 200, 400, 401, 413:
		default:
			t.Fatalf("status %d", w.Code)
		}
		if w.Header().Get("Cache-Control") != "no-store" {
			t.Fatalf("status %d without Cache-Control: no-store", w.Code)
		}
		if w.Code == 401 && !strings.HasPrefix(w.Header().Get("WWW-Authenticate"), "Basic ") {
			t.Fatal("401 without WWW-Authenticate: Basic")
		}
		var resp map[string]any
		if err := json.Unmarshal(w.Body.Bytes(), &resp); err != nil {
			t.Fatalf("response is not JSON: %q", w.Body)
		}
		if w.Code != 200 {
			if _, ok := resp["error"].(string); !ok || resp["access_token"] != nil {
				t.Fatalf("error response %q", w.Body)
			}
			return
		}
		if !carriesSecret(authorization, body, erp.secret) {
			t.Fatalf("token issued to a request without the secret: auth %q body %q", authorization, body)
		}
		token, _ := resp["access_token"].(string)
		claims, err := ks.Verify(token, e.clock.Now())
		if err != nil {
			t.Fatalf("issued token does not verify: %v", err)
		}
		if claims.ClientID != erp.id {
			t.Fatalf("token for %s", claims.ClientID)
		}
	})
}

// carriesSecret reports whether secret appears in the request, in the
// Basic credentials or the body, percent-decoded or not: a loose test that
// shares no code with the server's parser.
func carriesSecret(authorization, body, secret string) bool {
	candidates := []string{body}
	if i := strings.IndexByte(authorization, ' '); i >= 0 {
		if raw, err := base64.StdEncoding.DecodeString(strings.TrimLeft(authorization[i+1:], " ")); err == nil {
			candidates = append(candidates, string(raw))
		}
	}
	for _, c := range candidates {
		if strings.Contains(c, secret) {
			return true
		}
		if u, err := url.QueryUnescape(c); err == nil && strings.Contains(u, secret) {
			return true
		}
		if u, err := url.PathUnescape(c); err == nil && strings.Contains(u, secret) {
			return true
		}
	}
	return false
}

// fixedSecret returns a well-formed secret whose random part is seed
// repeated: the same in every process. It computes the checksum as package
// apikey does, and apikey.Parse checks that it agrees.
func fixedSecret(t testing.TB, prefix, seed string) string {
	t.Helper()
	const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	body := prefix + "_" + strings.Repeat(seed, apikey.RandomLen/len(seed)+1)[:apikey.RandomLen]
	v := crc32.ChecksumIEEE([]byte(body))
	sum := make([]byte, apikey.ChecksumLen)
	for i := len(sum) - 1; i >= 0; i-- {
		sum[i] = alphabet[v%62]
		v /= 62
	}
	secret := body + string(sum)
	if _, err := apikey.Parse(secret); err != nil {
		t.Fatalf("fixed secret does not parse: %v", err)
	}
	return secret
}
