package main

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestServeFollowsRekey: a running serve outlives `vault rekey`. After the
// rekey, the key and client made before it and one made after it all work
// at /verify and /token, /healthz stays 200, and serve's log says it
// follows the new key rather than failing.
func TestServeFollowsRekey(t *testing.T) {
	env := cliEnv(t)
	cli(t, env, "init")
	var key keyJSON
	if err := json.Unmarshal([]byte(cli(t, env, "key", "new", "before", "-o", "json")), &key); err != nil {
		t.Fatal(err)
	}
	var client clientJSON
	if err := json.Unmarshal([]byte(cli(t, env, "client", "new", "app", "--limit", "1000/day", "-o", "json")), &client); err != nil {
		t.Fatal(err)
	}
	s := startServe(t, env, "--listen", "127.0.0.1:0")
	hc := &http.Client{Timeout: 10 * time.Second}
	if code := tokenStatus(t, hc, s.url, client.ClientID, client.ClientSecret); code != http.StatusOK {
		t.Fatalf("token before the rekey: %d", code)
	}

	cli(t, env, "vault", "rekey", "--yes")
	var after keyJSON
	if err := json.Unmarshal([]byte(cli(t, env, "key", "new", "after", "-o", "json")), &after); err != nil {
		t.Fatal(err)
	}
	var report verifyJSON
	if err := json.Unmarshal([]byte(cli(t, env, "vault", "verify", "-o", "json")), &report); err != nil {
		t.Fatal(err)
	}
	pollUntil(t, 10*time.Second, "serve to reload the vault after the rekey", func() bool {
		return strings.Contains(s.err.String(), `msg="reloaded the vault" generation=`+strconv.FormatUint(report.Generation, 10)+" ")
	})
	for name, secret := range map[string]string{"key made before": key.Secret, "key made after": after.Secret} {
		if code := verifyStatus(t, hc, s.url, secret); code != http.StatusOK {
			t.Errorf("/verify of the %s the rekey: %d\n%s", name, code, s.err)
		}
	}
	// Enough tokens that serve asks the vault for more uses under the new
	// key, not only from what it had leased.
	for i := range 20 {
		if code := tokenStatus(t, hc, s.url, client.ClientID, client.ClientSecret); code != http.StatusOK {
			t.Fatalf("token %d after the rekey: %d\n%s", i, code, s.err)
		}
	}
	resp, err := hc.Get(s.url + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("/healthz after the rekey: %d\n%s", resp.StatusCode, s.err)
	}
	if err := s.stop(t); err != nil {
		t.Errorf("serve stopped with %v\n%s", err, s.err)
	}
	// What serve counted was flushed under the new key: the CLI reads it.
	out := cli(t, env, "usage", "show", "app")
	if !strings.Contains(out, "21") {
		t.Errorf("usage after the rekey does not count serve's 21 tokens:\n%s", out)
	}
}
