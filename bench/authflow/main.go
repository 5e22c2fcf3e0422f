// Command authflow prepares an authorization-code benchmark on an existing
// vault: what a wrk run needs to exchange codes and refresh tokens at
// /token as fast as a server allows, which a browser could not supply.
//
//	go run ./bench/authflow --identity ID_FILE --client NAME --codes N --refresh N VAULT OUT_DIR
//
// It adds a user "bench-user" (if missing) and its grant to client NAME
// (an authorization_code client), then N authorization codes, valid ten
// minutes, bound to the client's first redirect URI and to the PKCE
// verifier it prints, and N refresh tokens, each the first of its own
// family. They go to OUT_DIR/codes and OUT_DIR/refresh, one per line,
// with mode 0600: they are secrets, and never printed. On stdout it prints
// one JSON object: {"verifier": ..., "redirect_uri": ...}.
//
// Codes and tokens are written 1,000 to a transaction, through the vault
// API as the server writes them, so the server finds them as its own.
package main

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/keymint/keymint/apikey"
	"github.com/keymint/keymint/password"
	"github.com/keymint/keymint/vault"
)

const (
	userName = "bench-user"
	batch    = 1000
	// verifier is the PKCE code verifier of every code: the benchmark
	// measures the exchange, not the client's randomness.
	verifier = "bench-verifier-0123456789-abcdefghijklmnopqrstuvwxyz"
	scope    = "openid"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "authflow: %v\n", err)
		os.Exit(1)
	}
}

func run() error {
	idFile := flag.String("identity", "", "age identity file that opens the vault")
	clientName := flag.String("client", "", "the authorization_code client")
	codes := flag.Int("codes", 10000, "authorization codes to make")
	refresh := flag.Int("refresh", 10000, "refresh tokens to make, one family each")
	flag.Parse()
	if flag.NArg() != 2 || *idFile == "" || *clientName == "" {
		return errors.New("usage: authflow --identity ID_FILE --client NAME [--codes N] [--refresh N] VAULT OUT_DIR")
	}
	ids, err := vault.ReadIdentityFile(*idFile, nil)
	if err != nil {
		return err
	}
	identities := make([]vault.Identity, len(ids))
	copy(identities, ids)
	v, err := vault.Open(flag.Arg(0), vault.Options{Identities: identities, Actor: "keymint-bench-authflow", LockTimeout: time.Minute})
	if err != nil {
		return err
	}
	c, g, err := setUp(v, *clientName)
	if err != nil {
		return err
	}
	sum := sha256.Sum256([]byte(verifier))
	challenge := base64.RawURLEncoding.EncodeToString(sum[:])
	codeList, err := make_(v, *codes, func(tx *vault.Tx, now time.Time) (string, error) {
		code := random()
		return code, tx.CreateAuthCode(code, &vault.AuthCode{ClientID: c.ID, UserID: g.UserID, GrantID: g.ID,
			RedirectURI: c.RedirectURIs[0], CodeChallenge: challenge, Scopes: []string{scope}, AuthTime: now, ExpiresAt: now.Add(10 * time.Minute)})
	})
	if err != nil {
		return err
	}
	refreshList, err := make_(v, *refresh, func(tx *vault.Tx, now time.Time) (string, error) {
		s, err := tx.Settings()
		if err != nil {
			return "", err
		}
		tok, err := apikey.Generate(s.RefreshTokenPrefix())
		if err != nil {
			return "", err
		}
		return tok, tx.CreateRefreshToken(tok, &vault.RefreshToken{GrantID: g.ID, ClientID: c.ID, UserID: g.UserID,
			Scopes: []string{scope}, AuthTime: now, ExpiresAt: now.Add(24 * time.Hour)})
	})
	if err != nil {
		return err
	}
	out := flag.Arg(1)
	for name, list := range map[string][]string{"codes": codeList, "refresh": refreshList} {
		if err := os.WriteFile(filepath.Join(out, name), []byte(strings.Join(list, "\n")+"\n"), 0o600); err != nil {
			return err
		}
	}
	return json.NewEncoder(os.Stdout).Encode(map[string]string{"verifier": verifier, "redirect_uri": c.RedirectURIs[0]})
}

// setUp finds the client, and makes the user and its grant if missing.
func setUp(v *vault.Vault, clientName string) (*vault.Client, *vault.Grant, error) {
	var c *vault.Client
	var g *vault.Grant
	err := v.Update(func(tx *vault.Tx) error {
		var err error
		if c, err = tx.Client(clientName); err != nil {
			return err
		}
		if len(c.RedirectURIs) == 0 {
			return fmt.Errorf("client %s has no redirect URI: make it with --grant authorization_code --redirect-uri", clientName)
		}
		u, err := tx.User(userName)
		if errors.Is(err, vault.ErrNotFound) {
			hash, herr := password.Hash(random(), password.Default)
			if herr != nil {
				return herr
			}
			u = &vault.User{Name: userName, PasswordHash: hash}
			err = tx.CreateUser(u)
		}
		if err != nil {
			return err
		}
		g = &vault.Grant{UserID: u.ID, ClientID: c.ID, Scopes: []string{scope}}
		return tx.SaveGrant(g)
	})
	return c, g, err
}

// make_ makes n secrets with one, batch to a transaction.
func make_(v *vault.Vault, n int, one func(tx *vault.Tx, now time.Time) (string, error)) ([]string, error) {
	out := make([]string, 0, n)
	for len(out) < n {
		var made []string // per attempt: a transaction may run again
		err := v.Update(func(tx *vault.Tx) error {
			made = made[:0]
			for i := 0; i < batch && len(out)+len(made) < n; i++ {
				s, err := one(tx, tx.Now())
				if err != nil {
					return err
				}
				made = append(made, s)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		out = append(out, made...)
	}
	return out, nil
}

func random() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
