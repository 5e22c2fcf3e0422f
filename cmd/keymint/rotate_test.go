package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/keymint/keymint/apikey"
	"github.com/keymint/keymint/vault"
)

// TestRotateExpired: rotating an expired key or client fails, exit 1, with
// one line that says when it expired and what to do, and changes nothing. A
// script cannot make an expired client (client new has no --expires, and
// --expires refuses the past), so the credentials are made here, through
// the vault, on a clock two hours behind.
func TestRotateExpired(t *testing.T) {
	env := cliEnv(t)
	cli(t, env, "init")
	path := filepath.Join(env["XDG_DATA_HOME"], "keymint", "vault.db")
	ids, err := vault.ReadIdentityFile(filepath.Join(env["XDG_CONFIG_HOME"], "keymint", "identity.txt"), nil)
	if err != nil {
		t.Fatal(err)
	}
	v, err := vault.Open(path, vault.Options{
		Identities: ids,
		Now:        func() time.Time { return time.Now().Add(-2 * time.Hour) },
		StateDir:   filepath.Join(env["XDG_STATE_HOME"], "keymint"),
	})
	if err != nil {
		t.Fatal(err)
	}
	expired := time.Now().Add(-time.Hour).UTC().Truncate(time.Second)
	if err := v.Update(func(tx *vault.Tx) error {
		keySecret, err := apikey.Generate("km")
		if err != nil {
			return err
		}
		clientSecret, err := apikey.Generate("kmcs")
		if err != nil {
			return err
		}
		if err := tx.CreateKey(&vault.Key{Credential: vault.Credential{Name: "lapsed", ExpiresAt: &expired}}, keySecret); err != nil {
			return err
		}
		return tx.CreateClient(&vault.Client{
			Credential: vault.Credential{Name: "lapsed", ExpiresAt: &expired},
			GrantTypes: []string{"client_credentials"},
			TokenTTL:   time.Hour,
		}, clientSecret)
	}); err != nil {
		t.Fatal(err)
	}

	stamp := regexp.QuoteMeta(expired.Format(time.RFC3339))
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"key", "rotate", "lapsed"},
			`^keymint: key lapsed expired ` + stamp + ` \(1 hour ago\), so a new secret would not work: give it a new expiry with ` + "`keymint key update lapsed --expires 90d`" + ` first, create a new key with ` + "`keymint key new`" + ` to replace it, or remove this one with ` + "`keymint key rm lapsed`" + `\n$`},
		{[]string{"key", "rotate", "lapsed", "--grace", "0s", "--yes", "-o", "json"}, `^\{"error":"key lapsed expired ` + stamp + `.*","exit":1\}\n$`},
		{[]string{"client", "rotate-secret", "lapsed"},
			`^keymint: client lapsed expired ` + stamp + ` \(1 hour ago\), so a new secret would not work: give it a new expiry with ` + "`keymint client update lapsed --expires 90d`" + ` first, create a new client with ` + "`keymint client new`" + ` to replace it, or remove this one with ` + "`keymint client rm lapsed`" + `\n$`},
		{[]string{"client", "rotate-secret", "lapsed", "-o", "json"}, `^\{"error":"client lapsed expired ` + stamp + `.*","exit":1\}\n$`},
	} {
		before, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var out, errb bytes.Buffer
		code := run(tc.args, &streams{In: strings.NewReader(""), Out: &out, Err: &errb, inFd: -1}, func(k string) string { return env[k] })
		if code != exitFailure {
			t.Errorf("%s: exit %d, want %d: %s", strings.Join(tc.args, " "), code, exitFailure, errb.String())
		}
		if !regexp.MustCompile(tc.want).MatchString(errb.String()) || strings.Count(errb.String(), "\n") != 1 {
			t.Errorf("%s: stderr %q, want one line matching %s", strings.Join(tc.args, " "), errb.String(), tc.want)
		}
		if out.Len() != 0 {
			t.Errorf("%s: stdout %q, want nothing (no secret)", strings.Join(tc.args, " "), out.String())
		}
		after, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(before, after) {
			t.Errorf("%s: the vault file changed", strings.Join(tc.args, " "))
		}
	}
	// They are still there to be removed.
	cli(t, env, "key", "rm", "lapsed", "--yes")
	cli(t, env, "client", "rm", "lapsed", "--yes")
}
