package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/keymint/keymint/token"
	"github.com/keymint/keymint/vault"
)

func TestFill(t *testing.T) {
	dir := t.TempDir()
	idFile := filepath.Join(dir, "id", "identity.txt")
	vaultFile := filepath.Join(dir, "vault.db")
	var stdout, stderr bytes.Buffer
	args := []string{"--keys", "3", "--clients", "3", "--batch", "2", "--identity", idFile, vaultFile}
	if err := run(args, &stdout, &stderr); err != nil {
		t.Fatalf("run: %v; stderr: %s", err, stderr.String())
	}
	if stderr.Len() != 0 {
		t.Errorf("stderr is not a terminal, yet fill wrote %q", stderr.String())
	}

	var out output
	dec := json.NewDecoder(&stdout)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&out); err != nil {
		t.Fatalf("stdout is not the JSON object: %v", err)
	}
	if dec.More() {
		t.Error("stdout holds more than one JSON object")
	}

	for path, want := range map[string]os.FileMode{idFile: 0o600, filepath.Dir(idFile): 0o700 | os.ModeDir} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != want {
			t.Errorf("%s: mode %v, want %v", path, fi.Mode(), want)
		}
	}

	ids, err := vault.ReadIdentityFile(idFile, nil)
	if err != nil {
		t.Fatal(err)
	}
	v, err := vault.Open(vaultFile, vault.Options{Identities: ids})
	if err != nil {
		t.Fatal(err)
	}
	err = v.View(func(tx *vault.Tx) error {
		k, err := tx.KeyBySecret(out.Key.Secret)
		if err != nil {
			t.Errorf("KeyBySecret(the printed key secret): %v", err)
		} else if k.Name != out.Key.Name {
			t.Errorf("the printed key secret is key %q's, not %q's", k.Name, out.Key.Name)
		}
		c, err := tx.ClientBySecret(out.Client.ClientSecret)
		if err != nil {
			t.Errorf("ClientBySecret(the printed client secret): %v", err)
		} else {
			if c.ID != out.Client.ClientID || c.Name != out.Client.Name {
				t.Errorf("the printed client secret is client %s (%s)'s, not %s (%s)'s", c.Name, c.ID, out.Client.Name, out.Client.ClientID)
			}
			if len(c.GrantTypes) != 1 || c.GrantTypes[0] != token.GrantClientCredentials || c.TokenTTL != tokenTTL {
				t.Errorf("client grants %v, token TTL %v; want [%s], %v", c.GrantTypes, c.TokenTTL, token.GrantClientCredentials, tokenTTL)
			}
		}
		keys, err := tx.Keys()
		if err != nil {
			return err
		}
		clients, err := tx.Clients()
		if err != nil {
			return err
		}
		if len(keys) != 3 || len(clients) != 3 {
			t.Errorf("%d keys and %d clients, want 3 and 3", len(keys), len(clients))
		}
		if _, err := tx.ActiveSigningKey(); err != nil {
			t.Errorf("no active signing key: %v", err)
		}
		s, err := tx.Settings()
		if err != nil {
			return err
		}
		if s.KeyPrefix != "km" || s.ClientSecretPrefix != "kmcs" {
			t.Errorf("settings %+v, want prefixes km and kmcs", s)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	// A second run must refuse the existing identity file and leave it be.
	before, err := os.ReadFile(idFile)
	if err != nil {
		t.Fatal(err)
	}
	err = run([]string{"--keys", "1", "--clients", "1", "--identity", idFile, filepath.Join(dir, "other.db")}, &stdout, &stderr)
	if err == nil {
		t.Fatal("a second fill with the same identity file succeeded")
	}
	if after, _ := os.ReadFile(idFile); !bytes.Equal(before, after) {
		t.Error("a refused fill changed the identity file")
	}
	if _, err := os.Stat(filepath.Join(dir, "other.db")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused fill left a vault behind: %v", err)
	}
}

func TestFillUsage(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{
		{"--keys", "0", "--clients", "1", "--identity", filepath.Join(dir, "id"), filepath.Join(dir, "v")},
		{"--keys", "1", "--clients", "1", filepath.Join(dir, "v")},
		{"--keys", "1", "--clients", "1", "--identity", filepath.Join(dir, "id")},
	} {
		var stdout, stderr bytes.Buffer
		if err := run(args, &stdout, &stderr); !errors.Is(err, errUsage) {
			t.Errorf("run(%q) = %v, want a usage error", args, err)
		}
	}
}
