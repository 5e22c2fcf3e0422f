// Command fill makes a vault of a given size for benchmarks:
//
//	go run ./bench/fill --keys N --clients N --identity ID_FILE VAULT
//
// It creates a new vault at VAULT sealed to a new hybrid post-quantum age
// identity (vault.GenerateIdentityFile), which it writes to ID_FILE with
// mode 0600, never replacing a file; a missing directory of ID_FILE or VAULT
// is made with mode 0700. The vault is set up as `keymint init` sets one up
// (key prefix "km", apikey.DefaultKeyPrefix, client secret prefix "kmcs",
// and an active signing key of token.DefaultAlg), then gets N API keys
// (key-0000001...) and N client_credentials clients (client-0000001...),
// each with scope api:read and, for clients, a one-hour token lifetime,
// --batch (default 1000) to a transaction.
//
// On stdout it prints one JSON object with the secrets of one key and one
// client of the N, for a benchmark to use:
//
//	{"key": {"name": ..., "secret": ...}, "client": {"name": ..., "client_id": ..., "client_secret": ...}}
//
// Progress goes to stderr only when stderr is a terminal. On failure it
// removes the vault and identity file it made.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/term"

	"github.com/keymint/keymint/apikey"
	"github.com/keymint/keymint/token"
	"github.com/keymint/keymint/vault"
)

// The vault's settings, as `keymint init` makes them by default, by
// apikey's one rule.
const keyPrefix = apikey.DefaultKeyPrefix

var clientSecretPrefix = apikey.ClientSecretPrefix(keyPrefix)

// maxTokenTTL is how long a retired signing key stays published; the same
// bound as keymint's --token-ttl (unexported in package main).
const maxTokenTTL = 30 * 24 * time.Hour

// The records made: what `keymint key new NAME --scope api:read` and
// `keymint client new NAME --scope api:read` make.
var scopes = []string{"api:read"}

const tokenTTL = time.Hour

// actor names the fill in the vault's audit log.
const actor = "keymint-bench-fill"

type keyOut struct {
	Name   string `json:"name"`
	Secret string `json:"secret"`
}

type clientOut struct {
	Name         string `json:"name"`
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret"`
}

// output is what fill prints on stdout.
type output struct {
	Key    keyOut    `json:"key"`
	Client clientOut `json:"client"`
}

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "fill:", err)
		if errors.Is(err, errUsage) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

var errUsage = errors.New("usage: fill --keys N --clients N --identity ID_FILE [--batch N] VAULT")

type options struct {
	keys, clients, batch int
	identity, vault      string
	progress             io.Writer // nil: no progress
}

func parseArgs(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("fill", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&o.keys, "keys", 0, "number of API keys (at least 1)")
	fs.IntVar(&o.clients, "clients", 0, "number of OAuth clients (at least 1)")
	fs.StringVar(&o.identity, "identity", "", "write the new age identity to this file (must not exist)")
	fs.IntVar(&o.batch, "batch", 1000, "records per transaction")
	if err := fs.Parse(args); err != nil {
		return o, fmt.Errorf("%w: %v", errUsage, err)
	}
	switch {
	case fs.NArg() != 1:
		return o, fmt.Errorf("%w: want one VAULT path, got %d arguments", errUsage, fs.NArg())
	case o.keys < 1 || o.clients < 1:
		return o, fmt.Errorf("%w: --keys and --clients must be at least 1", errUsage)
	case o.identity == "":
		return o, fmt.Errorf("%w: --identity is required", errUsage)
	case o.batch < 1:
		return o, fmt.Errorf("%w: --batch must be at least 1", errUsage)
	}
	o.vault = fs.Arg(0)
	return o, nil
}

func run(args []string, stdout, stderr io.Writer) error {
	o, err := parseArgs(args, stderr)
	if err != nil {
		return err
	}
	if f, ok := stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		o.progress = stderr
	}
	out, err := fill(o)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(stdout)
	return enc.Encode(out)
}

// fill makes the identity file and the vault, and returns the secrets of
// the middle key and client. On failure it removes what it made.
func fill(o options) (_ *output, err error) {
	if _, err := os.Lstat(o.vault); err == nil {
		return nil, fmt.Errorf("%s: %w", o.vault, vault.ErrExists)
	}
	id, err := vault.GenerateIdentityFile(time.Now())
	if err != nil {
		return nil, err
	}
	if err := writeIdentity(o.identity, id.Contents); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(o.vault), 0o700); err != nil {
		os.Remove(o.identity)
		return nil, fmt.Errorf("create directory for %s: %w", o.vault, err)
	}
	created := false
	defer func() {
		if err != nil {
			os.Remove(o.identity)
			if created {
				os.Remove(o.vault)
			}
		}
	}()

	signingKey, err := token.GenerateSigningKey(token.DefaultAlg, time.Now())
	if err != nil {
		return nil, err
	}
	opts := vault.Options{Identities: []vault.Identity{id.Identity}, Actor: actor, LockTimeout: time.Minute}
	err = vault.Create(o.vault, vault.CreateOptions{
		Recipients:     []vault.Recipient{id.Recipient},
		RecipientNames: []string{fmt.Sprint(id.Recipient)},
		Settings:       vault.Settings{KeyPrefix: keyPrefix, ClientSecretPrefix: clientSecretPrefix},
		Options:        opts,
		Setup: func(tx *vault.Tx) error {
			return tx.AddSigningKey(token.ToVault(signingKey), maxTokenTTL)
		},
	})
	if err != nil {
		return nil, err
	}
	created = true
	v, err := vault.Open(o.vault, opts)
	if err != nil {
		return nil, err
	}

	var out output
	pickKey, pickClient := o.keys/2, o.clients/2
	p := newProgress(o.progress, o.keys+o.clients)
	err = inBatches(v, o.keys, o.batch, keyPrefix, p, func(tx *vault.Tx, i int, secret string) error {
		k := &vault.Key{Credential: vault.Credential{Name: fmt.Sprintf("key-%07d", i+1), Scopes: scopes}}
		if err := tx.CreateKey(k, secret); err != nil {
			return err
		}
		if i == pickKey {
			out.Key = keyOut{Name: k.Name, Secret: secret}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("create keys: %w", err)
	}
	err = inBatches(v, o.clients, o.batch, clientSecretPrefix, p, func(tx *vault.Tx, i int, secret string) error {
		c := &vault.Client{
			Credential: vault.Credential{Name: fmt.Sprintf("client-%07d", i+1), Scopes: scopes},
			GrantTypes: []string{token.GrantClientCredentials},
			TokenTTL:   tokenTTL,
		}
		if err := tx.CreateClient(c, secret); err != nil {
			return err
		}
		if i == pickClient {
			out.Client = clientOut{Name: c.Name, ClientID: c.ID, ClientSecret: secret}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("create clients: %w", err)
	}
	p.done()
	return &out, nil
}

// inBatches calls create for 0 <= i < n, batch calls per transaction, each
// with a new secret of the prefix. The secrets of a batch are generated
// before its transaction, so the file lock is held only for the writes.
func inBatches(v *vault.Vault, n, batch int, prefix string, p *progress, create func(tx *vault.Tx, i int, secret string) error) error {
	secrets := make([]string, 0, min(n, batch))
	for start := 0; start < n; start += batch {
		end := min(start+batch, n)
		secrets = secrets[:0]
		for range end - start {
			s, err := apikey.Generate(prefix)
			if err != nil {
				return err
			}
			secrets = append(secrets, s)
		}
		err := v.Update(func(tx *vault.Tx) error {
			for i := start; i < end; i++ {
				if err := create(tx, i, secrets[i-start]); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		p.add(end - start)
	}
	return nil
}

// writeIdentity writes an identity file's contents (as `keymint init`
// writes them, from vault.GenerateIdentityFile) to path with mode 0600,
// making a missing directory with mode 0700. It never replaces a file: an
// existing path is an error.
func writeIdentity(path string, contents []byte) (err error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("create directory for %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("identity file: %w", err)
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("close %s: %w", path, cerr)
		}
		if err != nil {
			os.Remove(path)
		}
	}()
	if _, err := f.Write(contents); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", path, err)
	}
	return nil
}

// progress reports records made, at most a few times a second, to a
// terminal.
type progress struct {
	w          io.Writer
	total, n   int
	start, out time.Time
}

func newProgress(w io.Writer, total int) *progress {
	now := time.Now()
	return &progress{w: w, total: total, start: now, out: now}
}

func (p *progress) add(n int) {
	p.n += n
	if p.w == nil || time.Since(p.out) < 200*time.Millisecond {
		return
	}
	p.out = time.Now()
	fmt.Fprintf(p.w, "\r%d/%d records, %.1fs", p.n, p.total, time.Since(p.start).Seconds())
}

func (p *progress) done() {
	if p.w != nil {
		fmt.Fprintf(p.w, "\r%d/%d records in %.1fs\n", p.n, p.total, time.Since(p.start).Seconds())
	}
}
