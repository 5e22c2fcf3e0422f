package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keymint/keymint/apikey"
	"github.com/keymint/keymint/token"
	"github.com/keymint/keymint/vault"
)

// TestTokenVerifyAgreesWithIntrospect runs one set of tokens through
// `keymint token verify` and through /introspect of a `keymint serve` on the
// same vault, and checks that they agree on each: both call
// token.CheckActive. The vault records its issuer, which both take from
// it; the server listens on a port of its own choosing, which does not
// change the issuer.
func TestTokenVerifyAgreesWithIntrospect(t *testing.T) {
	const iss = "https://auth.test"
	env := cliEnv(t)
	cli(t, env, "init", "--issuer", iss+"/")
	erp := newTestClient(t, env, "erp")
	rs := newTestClient(t, env, "rs")
	newTestClient(t, env, "gone")
	lapsed := newExpiredClient(t, env, "lapsed")

	// Signed by the first key, which the rotation then retires: still
	// published, so still valid.
	retired := issueToken(t, env, "erp")
	cli(t, env, "signing-key", "rotate")

	valid := issueToken(t, env, "erp")
	revoked := issueToken(t, env, "erp")
	orphan := issueToken(t, env, "gone")
	cli(t, env, "client", "rm", "gone", "--yes")
	otherIssuer := strings.TrimSpace(cli(t, env, "token", "issue", "--client", "erp", "--issuer", "https://elsewhere.test"))

	now := time.Now().UTC().Truncate(time.Second)
	claims := func(clientID string, iat, exp time.Time) token.Claims {
		return token.Claims{Issuer: iss, Subject: clientID, Audience: []string{iss}, IssuedAt: iat,
			ExpiresAt: exp, ID: token.NewJTI(), ClientID: clientID, Scope: []string{"x"}}
	}
	var active token.SigningKey
	v := openTestVault(t, env, time.Now)
	if err := v.Update(func(tx *vault.Tx) error {
		k, err := tx.ActiveSigningKey()
		if err != nil {
			return err
		}
		if active, err = token.FromVault(k); err != nil {
			return err
		}
		c := tokenClaims(t, revoked)
		return tx.Revoke(vault.Revocation{JTI: c.ID, ClientID: c.ClientID, ExpiresAt: c.ExpiresAt})
	}); err != nil {
		t.Fatal(err)
	}
	signer, err := token.NewSigner(active)
	if err != nil {
		t.Fatal(err)
	}
	sign := func(s *token.Signer, c token.Claims) string {
		t.Helper()
		tok, err := s.Sign(c)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	stranger, err := token.GenerateSigningKey(token.ES256, now)
	if err != nil {
		t.Fatal(err)
	}
	strangerSigner, err := token.NewSigner(stranger)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(valid, ".")
	payload := []byte(parts[1]) // one character changed, still base64url
	if payload[len(payload)/2] == 'A' {
		payload[len(payload)/2] = 'B'
	} else {
		payload[len(payload)/2] = 'A'
	}

	tests := []struct {
		name   string
		token  string
		reason error // nil when active
	}{
		{"valid", valid, nil},
		{"signed by a retired but published key", retired, nil},
		{"expired", sign(signer, claims(erp.id, now.Add(-2*time.Hour), now.Add(-time.Hour))), token.ErrExpired},
		{"not yet valid", sign(signer, claims(erp.id, now.Add(time.Hour), now.Add(2*time.Hour))), token.ErrNotYetValid},
		{"revoked", revoked, token.ErrRevoked},
		{"client removed", orphan, token.ErrClientRemoved},
		{"client expired", sign(signer, claims(lapsed, now, now.Add(time.Hour))), token.ErrClientExpired},
		{"other issuer", otherIssuer, token.ErrOtherIssuer},
		{"signed by an unknown key", sign(strangerSigner, claims(erp.id, now, now.Add(time.Hour))), token.ErrUnknownKey},
		{"tampered", parts[0] + "." + string(payload) + "." + parts[2], token.ErrSignature},
		{"wrong typ", signES256(t, active, "JWT", claims(erp.id, now, now.Add(time.Hour))), token.ErrBadType},
	}

	s := startServe(t, env, "--listen", "127.0.0.1:0")
	if got := metadata(t, s.url)["issuer"]; got != iss {
		t.Fatalf("serve's issuer %v, want the vault's %s", got, iss)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run([]string{"token", "verify"}, &streams{In: strings.NewReader(tt.token + "\n"), Out: &out, Err: &errb, inFd: -1},
				func(k string) string { return env[k] })
			introspected := introspect(t, s.url, rs, tt.token)
			if (code == exitOK) != introspected {
				t.Fatalf("token verify exit %d (%s) but /introspect active=%v: they disagree", code, strings.TrimSpace(errb.String()), introspected)
			}
			if tt.reason == nil {
				if code != exitOK || !introspected {
					t.Errorf("exit %d, active %v; want valid: %s", code, introspected, errb.String())
				}
				return
			}
			if code != exitFailure || introspected {
				t.Errorf("exit %d, active %v; want invalid (%v)", code, introspected, tt.reason)
			}
			if msg := errb.String(); !strings.HasPrefix(msg, "keymint: invalid token: ") || !strings.Contains(msg, tt.reason.Error()) {
				t.Errorf("stderr %q, want the reason %q", msg, tt.reason)
			}
		})
	}
}

type testClient struct{ id, secret string }

// newTestClient makes a client through the CLI.
func newTestClient(t *testing.T, env map[string]string, name string) testClient {
	t.Helper()
	var out struct {
		ID     string `json:"client_id"`
		Secret string `json:"client_secret"`
	}
	if err := json.Unmarshal([]byte(cli(t, env, "client", "new", name, "--scope", "x", "-o", "json")), &out); err != nil {
		t.Fatal(err)
	}
	return testClient{out.ID, out.Secret}
}

// newExpiredClient makes a client that expired an hour ago, through the
// vault on a clock two hours behind (the CLI refuses an expiry in the past),
// and returns its id.
func newExpiredClient(t *testing.T, env map[string]string, name string) string {
	t.Helper()
	v := openTestVault(t, env, func() time.Time { return time.Now().Add(-2 * time.Hour) })
	expired := time.Now().Add(-time.Hour).UTC().Truncate(time.Second)
	c := &vault.Client{
		Credential: vault.Credential{Name: name, ExpiresAt: &expired, Scopes: []string{"x"}},
		GrantTypes: []string{token.GrantClientCredentials},
		TokenTTL:   time.Hour,
	}
	secret, err := apikey.Generate("kmcs")
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Update(func(tx *vault.Tx) error { return tx.CreateClient(c, secret) }); err != nil {
		t.Fatal(err)
	}
	return c.ID
}

// openTestVault opens the CLI's vault in env, on clock now.
func openTestVault(t *testing.T, env map[string]string, now func() time.Time) *vault.Vault {
	t.Helper()
	ids, err := vault.ReadIdentityFile(filepath.Join(env["XDG_CONFIG_HOME"], "keymint", "identity.txt"), nil)
	if err != nil {
		t.Fatal(err)
	}
	v, err := vault.Open(filepath.Join(env["XDG_DATA_HOME"], "keymint", "vault.db"), vault.Options{
		Identities: ids,
		Now:        now,
		StateDir:   filepath.Join(env["XDG_STATE_HOME"], "keymint"),
	})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func issueToken(t *testing.T, env map[string]string, client string) string {
	t.Helper()
	return strings.TrimSpace(cli(t, env, "token", "issue", "--client", client))
}

// tokenClaims reads a token's claims without verifying it.
func tokenClaims(t *testing.T, jwt string) token.Claims {
	t.Helper()
	raw, err := base64.RawURLEncoding.DecodeString(strings.Split(jwt, ".")[1])
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		JTI      string `json:"jti"`
		ClientID string `json:"client_id"`
		Exp      int64  `json:"exp"`
	}
	if err := json.Unmarshal(raw, &c); err != nil {
		t.Fatal(err)
	}
	return token.Claims{ID: c.JTI, ClientID: c.ClientID, ExpiresAt: time.Unix(c.Exp, 0).UTC()}
}

// signES256 signs c with k, an ES256 key, under a typ header of its own
// choosing, which token.Signer never writes.
func signES256(t *testing.T, k token.SigningKey, typ string, c token.Claims) string {
	t.Helper()
	if k.Alg != token.ES256 {
		t.Fatalf("key is %s, want ES256", k.Alg)
	}
	parsed, err := x509.ParsePKCS8PrivateKey(k.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	header, err := json.Marshal(map[string]string{"alg": "ES256", "kid": k.ID, "typ": typ})
	if err != nil {
		t.Fatal(err)
	}
	body, err := json.Marshal(map[string]any{
		"iss": c.Issuer, "sub": c.Subject, "aud": c.Audience, "iat": c.IssuedAt.Unix(), "exp": c.ExpiresAt.Unix(),
		"jti": c.ID, "client_id": c.ClientID, "scope": strings.Join(c.Scope, " "),
	})
	if err != nil {
		t.Fatal(err)
	}
	input := base64.RawURLEncoding.EncodeToString(header) + "." + base64.RawURLEncoding.EncodeToString(body)
	digest := sha256.Sum256([]byte(input))
	r, s, err := ecdsa.Sign(rand.Reader, parsed.(*ecdsa.PrivateKey), digest[:])
	if err != nil {
		t.Fatal(err)
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return input + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// introspect asks base's /introspect about token as client c and returns
// whether it is active.
func introspect(t *testing.T, base string, c testClient, token string) bool {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, base+"/introspect", strings.NewReader(url.Values{"token": {token}}.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(c.id, c.secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/introspect: %s: %s", resp.Status, body)
	}
	var got struct {
		Active bool `json:"active"`
	}
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	return got.Active
}
