package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/keymint/keymint/apikey"
	"github.com/keymint/keymint/token"
	"github.com/keymint/keymint/vault"
)

// serve --dev: a throwaway vault with a ready client, for development.

// devScopes are the scopes of the client `serve --dev` makes.
var devScopes = []string{"api:read", "api:write"}

// devRedirectURI is the redirect URI of the dev client: a loopback one,
// so any port matches (RFC 8252 §7.3), for an app under test on this
// machine.
const devRedirectURI = "http://127.0.0.1/callback"

// devClient is what `serve --dev` prints.
type devClient struct {
	Vault         string `json:"vault"`
	Issuer        string `json:"issuer"`
	TokenEndpoint string `json:"token_endpoint"`
	ClientID      string `json:"client_id"`
	ClientSecret  string `json:"client_secret"`
	Scope         string `json:"scope"`
	Curl          string `json:"curl"`
	// The authorization-code flow: any user name signs in, no password.
	AuthorizationEndpoint string `json:"authorization_endpoint"`
	RedirectURI           string `json:"redirect_uri"`
}

// newDevVault makes the throwaway vault of `serve --dev` in a new temporary
// directory: an identity held only in memory, an ES256 signing key and a
// client "dev". cleanup removes the directory.
func (a *app) newDevVault() (*vault.Vault, *devClient, func(), error) {
	dir, err := os.MkdirTemp("", "keymint-dev-")
	if err != nil {
		return nil, nil, nil, fmt.Errorf("create a temporary directory for the dev vault: %w", err)
	}
	cleanup := func() { os.RemoveAll(dir) }
	v, dev, err := createDevVault(filepath.Join(dir, "vault.db"), a.cfg.LockTimeout, a.now)
	if err != nil {
		cleanup()
		return nil, nil, nil, err
	}
	return v, dev, cleanup, nil
}

func createDevVault(path string, lockTimeout time.Duration, now func() time.Time) (*vault.Vault, *devClient, error) {
	// The identity file's contents are dropped: the identity is held in
	// memory only, and the vault goes with the server.
	id, err := vault.GenerateIdentityFile(now())
	if err != nil {
		return nil, nil, err
	}
	key, err := token.GenerateSigningKey(token.ES256, now())
	if err != nil {
		return nil, nil, err
	}
	settings := vault.Settings{KeyPrefix: apikey.DefaultKeyPrefix, ClientSecretPrefix: apikey.ClientSecretPrefix(apikey.DefaultKeyPrefix)}
	secret, err := apikey.Generate(settings.ClientSecretPrefix)
	if err != nil {
		return nil, nil, err
	}
	c := &vault.Client{
		Credential:   vault.Credential{Name: "dev", Scopes: devScopes},
		GrantTypes:   []string{token.GrantClientCredentials, token.GrantAuthorizationCode},
		RedirectURIs: []string{devRedirectURI},
		TokenTTL:     defaultTokenTTL,
		Description:  "made by keymint serve --dev",
	}
	opts := vault.Options{Now: now, Identities: []vault.Identity{id.Identity}, LockTimeout: lockTimeout, Actor: actor()}
	err = vault.Create(path, vault.CreateOptions{
		Recipients:     []vault.Recipient{id.Recipient},
		RecipientNames: []string{fmt.Sprint(id.Recipient)},
		Settings:       settings,
		Options:        opts,
		Setup: func(tx *vault.Tx) error {
			if err := tx.AddSigningKey(token.ToVault(key), maxTokenTTL); err != nil {
				return err
			}
			return tx.CreateClient(c, secret)
		},
	})
	if err != nil {
		return nil, nil, fmt.Errorf("create the dev vault: %w", err)
	}
	v, err := vault.Open(path, opts)
	if err != nil {
		return nil, nil, fmt.Errorf("open the dev vault: %w", err)
	}
	return v, &devClient{Vault: path, ClientID: c.ID, ClientSecret: secret, Scope: strings.Join(devScopes, " "), RedirectURI: devRedirectURI}, nil
}

func (a *app) printDev(d *devClient) error {
	if a.json() {
		return a.writeJSON(d)
	}
	fmt.Fprintf(a.io.Out, `keymint serve --dev: a throwaway vault, removed when the server stops
  vault:          %s
  issuer:         %s
  client_id:      %s
  client_secret:  %s
  scope:          %s

Get a token:
  %s

Sign in as anyone (development only: no password) at
  %s
with redirect_uri %s (any port) and PKCE S256.
`, d.Vault, d.Issuer, d.ClientID, d.ClientSecret, d.Scope, d.Curl, d.AuthorizationEndpoint, d.RedirectURI)
	return nil
}
