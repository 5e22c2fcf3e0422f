package main

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keymint/keymint/vault"
)

// TestIdentitiesFirstSourceOnly checks the order of the sources that unlock
// a vault, and that only the first one set is used: a later one is neither
// tried nor read, so that a broken one (here, a file others can read, or one
// that is missing) stops nothing.
func TestIdentitiesFirstSourceOnly(t *testing.T) {
	dir := t.TempDir()
	id, err := vault.GenerateIdentityFile(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	good := filepath.Join(dir, "good.txt")
	if err := os.WriteFile(good, id.Contents, 0o600); err != nil {
		t.Fatal(err)
	}
	readable := filepath.Join(dir, "readable.txt")
	if err := os.WriteFile(readable, id.Contents, 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(readable, 0o640); err != nil { // past the umask
		t.Fatal(err)
	}
	passFile := filepath.Join(dir, "pass.txt")
	if err := os.WriteFile(passFile, []byte("from the file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.txt")
	contents := strings.TrimSpace(string(id.Contents))

	for _, tc := range []struct {
		name     string
		env      map[string]string
		identity string // explicit --identity / KEYMINT_IDENTITY_FILE
		passFile string
		dflt     string // the default identity file
		tty      bool
		want     string // source, or the error's text
		wantErr  bool
	}{
		{name: "KEYMINT_IDENTITY over all", env: map[string]string{"KEYMINT_IDENTITY": contents, "KEYMINT_PASSPHRASE": "p"},
			identity: missing, passFile: passFile, dflt: readable, want: "KEYMINT_IDENTITY"},
		{name: "explicit file over passphrase and default", env: map[string]string{"KEYMINT_PASSPHRASE": "p"},
			identity: good, passFile: passFile, dflt: readable, want: "identity file " + good},
		{name: "explicit missing file is an error", env: map[string]string{"KEYMINT_PASSPHRASE": "p"},
			identity: missing, dflt: good, want: "missing.txt", wantErr: true},
		{name: "KEYMINT_PASSPHRASE over file and default", env: map[string]string{"KEYMINT_PASSPHRASE": "p"},
			passFile: passFile, dflt: readable, want: "KEYMINT_PASSPHRASE"},
		{name: "passphrase file over default", passFile: passFile, dflt: readable, want: "passphrase file " + passFile},
		{name: "default file", dflt: good, tty: true, want: "default identity file " + good},
		{name: "default file others can read is refused", dflt: readable, tty: true,
			want: "readable by others", wantErr: true},
		{name: "nothing, no terminal", dflt: missing, want: errNoUnlock.Error(), wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := &app{
				io:     &streams{In: strings.NewReader(""), Out: io.Discard, Err: io.Discard, inFd: -1, inTTY: tc.tty},
				getenv: func(k string) string { return tc.env[k] },
				cfg:    config{Identity: tc.dflt, PassphraseFile: tc.passFile},
			}
			if tc.identity != "" {
				a.cfg.Identity, a.cfg.identityExplicit = tc.identity, true
			}
			ids, source, err := a.identities()
			if tc.wantErr {
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("identities() = %q, %v; want an error with %q", source, err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatalf("identities(): %v", err)
			}
			if source != tc.want || len(ids) != 1 {
				t.Fatalf("identities() = %d from %q; want 1 from %q", len(ids), source, tc.want)
			}
		})
	}
}

// TestRemoveCreated checks that a failed init takes back only the identity
// file it made, never one that has taken its place.
func TestRemoveCreated(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "identity.txt")
	made := []byte("made\n")
	if err := writeSecretFile(path, made); err != nil {
		t.Fatal(err)
	}
	removeCreated(path, made)
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the identity init made is still there: %v", err)
	}

	// Another takes its place meanwhile, perhaps with the same inode.
	for _, another := range []string{"another's\n", "made\nand more\n", "made"} {
		if err := writeSecretFile(path, []byte(another)); err != nil {
			t.Fatal(err)
		}
		removeCreated(path, made)
		if b, err := os.ReadFile(path); err != nil || string(b) != another {
			t.Fatalf("another's identity file: %q, %v; want %q", b, err, another)
		}
		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
	}
	removeCreated(path, made) // nothing there: nothing to do
}
