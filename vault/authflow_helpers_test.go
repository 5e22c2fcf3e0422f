package vault_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/keymint/keymint/apikey"
	"github.com/keymint/keymint/vault"
)

// testHash is a well-formed argon2id PHC string; the vault never checks a
// password against it.
const (
	testHash  = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo"
	testHash2 = "$argon2id$v=19$m=65536,t=3,p=4$b3RoZXJzYWx0$b3RoZXJoYXNoaGFzaA"
	// testChallenge is RFC 7636's example S256 code challenge.
	testChallenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
)

// flow is a vault with a user, an authorization_code client and the grant
// the user gave it: what the tests of codes and refresh tokens start from.
type flow struct {
	tv     *testVault
	user   *vault.User
	client *vault.Client
	grant  *vault.Grant
}

func newFlow(t testing.TB) *flow {
	t.Helper()
	f := &flow{tv: newTestVault(t)}
	f.tv.update(t, func(tx *vault.Tx) error {
		var err error
		f.user, f.client, f.grant, err = addFlow(t, tx, "alice", "portal")
		return err
	})
	return f
}

// addFlow adds a user, a client and a grant between them.
func addFlow(t testing.TB, tx *vault.Tx, userName, clientName string) (*vault.User, *vault.Client, *vault.Grant, error) {
	t.Helper()
	u := &vault.User{Name: userName, Email: userName + "@example.com", PasswordHash: testHash}
	if err := tx.CreateUser(u); err != nil {
		return nil, nil, nil, err
	}
	c := &vault.Client{
		Credential:   vault.Credential{Name: clientName, Scopes: []string{"openid", "invoices:read", "invoices:write"}},
		GrantTypes:   []string{"authorization_code"},
		RedirectURIs: []string{"https://app.example.com/cb"},
	}
	if err := tx.CreateClient(c, newSecret(t, "kmcs")); err != nil {
		return nil, nil, nil, err
	}
	g := &vault.Grant{UserID: u.ID, ClientID: c.ID, Scopes: []string{"openid", "invoices:read"}}
	if err := tx.SaveGrant(g); err != nil {
		return nil, nil, nil, err
	}
	return u, c, g, nil
}

// randomCode returns a fresh authorization code.
func randomCode(t testing.TB) string {
	t.Helper()
	s, err := apikey.RandomString(43)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// authCode returns a code's record for f's grant, expiring after ttl.
func (f *flow) authCode(tx *vault.Tx, ttl time.Duration) *vault.AuthCode {
	return &vault.AuthCode{
		ClientID: f.client.ID, UserID: f.user.ID, GrantID: f.grant.ID,
		RedirectURI: "https://app.example.com/cb", CodeChallenge: testChallenge,
		Scopes: f.grant.Scopes, Nonce: "n-0S6_WzA2Mj", AuthTime: tx.Now(), ExpiresAt: tx.Now().Add(ttl),
	}
}

// newCode stores a new code for f's grant, expiring after a minute.
func (f *flow) newCode(t testing.TB) string {
	t.Helper()
	code := randomCode(t)
	f.tv.update(t, func(tx *vault.Tx) error { return tx.CreateAuthCode(code, f.authCode(tx, time.Minute)) })
	return code
}

// newRefresh stores the first refresh token of a new family for f's grant,
// expiring after a day, and returns it and its record.
func (f *flow) newRefresh(t testing.TB) (string, *vault.RefreshToken) {
	t.Helper()
	token := newSecret(t, "kmrt")
	rt := &vault.RefreshToken{GrantID: f.grant.ID, Scopes: f.grant.Scopes, AuthTime: f.tv.Clock.Now(), ExpiresAt: f.tv.Clock.Now().Add(24 * time.Hour)}
	f.tv.update(t, func(tx *vault.Tx) error { return tx.CreateRefreshToken(token, rt) })
	return token, rt
}

// records counts the records of each bucket, as Verify does.
func (tv *testVault) records(t testing.TB) map[string]int {
	t.Helper()
	r, err := tv.Verify()
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	return r.Records
}

// auditActions returns the actions of the audit log after the first skip
// entries, and fails if any entry's detail holds one of secrets.
func (tv *testVault) auditActions(t testing.TB, skip int, secrets ...string) []string {
	t.Helper()
	var out []string
	tv.view(t, func(tx *vault.Tx) error {
		log, err := tx.AuditLog()
		for _, e := range log[min(skip, len(log)):] {
			out = append(out, e.Action)
			for _, s := range secrets {
				if strings.Contains(e.Detail, s) || strings.Contains(e.ID, s) {
					t.Errorf("audit entry %s shows a secret: %q", e.Action, e.Detail)
				}
			}
		}
		return err
	})
	return out
}

// auditLen is the length of the audit log.
func (tv *testVault) auditLen(t testing.TB) int {
	t.Helper()
	return len(tv.auditActions(t, 0))
}

// noSecretIn fails if err's message holds secret.
func noSecretIn(t testing.TB, err error, secret string) {
	t.Helper()
	if err != nil && secret != "" && strings.Contains(err.Error(), secret) {
		t.Errorf("error shows the secret: %v", err)
	}
}

// rawRecords returns a bucket's store keys and sealed values in a vault file.
func rawRecords(t testing.TB, path, bucket string) map[string][]byte {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	out := map[string][]byte{}
	if err := db.View(func(btx *bolt.Tx) error {
		b := btx.Bucket([]byte(bucket))
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			out[string(k)] = bytes.Clone(v)
			return nil
		})
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// grantGone are the ways a grant stops standing, which end what was issued
// under it: the tests of codes and of refresh tokens run each.
var grantGone = []struct {
	name string
	gone func(f *flow, tx *vault.Tx) error
}{
	{"user disabled", func(f *flow, tx *vault.Tx) error {
		f.user.Disabled = true
		return tx.SaveUser(f.user)
	}},
	{"user removed", func(f *flow, tx *vault.Tx) error { _, err := tx.DeleteUsers(f.user.ID); return err }},
	{"client removed", func(f *flow, tx *vault.Tx) error { _, err := tx.DeleteClients(f.client.ID); return err }},
	{"grant revoked", func(f *flow, tx *vault.Tx) error { return tx.RevokeGrant(f.grant.ID) }},
}
