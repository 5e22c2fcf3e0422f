package main

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/keymint/keymint/token"
	"github.com/keymint/keymint/vault"
)

// defaultIssuer is the iss of offline tokens when neither the settings nor
// the vault name one: the address `keymint serve` listens on by default, so
// tokens minted either way look alike.
const defaultIssuer = token.DefaultIssuer

// issuerHelp says where the issuer comes from, for the help of the token
// commands.
const issuerHelp = `--issuer, KEYMINT_ISSUER or the config's issuer;
else the vault's (keymint init --issuer); else ` + defaultIssuer

// checkIssuerSetting validates --issuer (or KEYMINT_ISSUER, or the config's
// issuer) when one is set, as a usage error, before the vault is opened.
func (a *app) checkIssuerSetting() error {
	_, err := a.issuerSetting()
	return err
}

// issuerSetting is --issuer (or KEYMINT_ISSUER, or the config's issuer) as
// token.CheckIssuer normalizes it, or "" when none is set.
func (a *app) issuerSetting() (string, error) {
	if a.cfg.Issuer == "" {
		return "", nil
	}
	iss, err := token.CheckIssuer(a.cfg.Issuer)
	if err != nil {
		return "", usageError{fmt.Errorf("invalid --issuer: %w", err)}
	}
	return iss, nil
}

// issuerFor is the issuer tokens of the vault with settings s are minted
// under and checked against: --issuer (or KEYMINT_ISSUER, or the config's
// issuer), else the vault's, else fallback; normalized by
// token.CheckIssuer, so that every command names it alike. token issue,
// token verify and serve all take it from here.
func (a *app) issuerFor(s vault.Settings, fallback string) (string, error) {
	if iss, err := a.issuerSetting(); iss != "" || err != nil {
		return iss, err
	}
	if s.Issuer != "" {
		iss, err := token.CheckIssuer(s.Issuer)
		if err != nil {
			return "", fmt.Errorf("the vault's issuer: %w", err)
		}
		return iss, nil
	}
	return token.CheckIssuer(fallback)
}

// tokenIssueOutput is what token issue -o json prints: the RFC 6749 token
// response, plus expires_at for people and scripts that prefer a time to a
// countdown. The server's /token sends the response alone.
type tokenIssueOutput struct {
	token.Response
	ExpiresAt time.Time `json:"expires_at"`
}

func newTokenCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Mint and check access tokens offline",
	}
	cmd.AddCommand(newTokenIssueCmd(a), newTokenVerifyCmd(a), newTokenRevokeCmd(a))
	return cmd
}

type tokenIssueOptions struct {
	client   string
	scopes   []string
	audience []string
	ttl      time.Duration
}

func newTokenIssueCmd(a *app) *cobra.Command {
	var o tokenIssueOptions
	cmd := &cobra.Command{
		Use:   "issue --client ID|NAME",
		Short: "Mint an access token for a client, offline",
		Long: `Mint a JWT access token (RFC 9068) for a client, with no server. The text
output is the token alone, so TOKEN=$(keymint token issue --client ci) works;
-o json prints the RFC 6749 token response plus expires_at.

--scope, --audience and --ttl may narrow what the client allows, never widen
it. Counts as one use of the client.

The token's issuer (iss) is ` + issuerHelp + `.`,
		Example: `  TOKEN=$(keymint token issue --client erp)
  keymint token issue --client erp --scope invoices:read --audience https://api.example --ttl 10m -o json`,
		Args: noArgs,
		RunE: func(*cobra.Command, []string) error {
			return a.runTokenIssue(o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.client, "client", "", "client ID or NAME")
	f.StringArrayVar(&o.scopes, "scope", nil, "scopes to request, within the client's (repeatable; space- or comma-separated)")
	f.StringArrayVar(&o.audience, "audience", nil, "audience (aud), among the client's if it has any (repeatable)")
	durationVar(f, &o.ttl, "ttl", 0, "token lifetime, at most the client's token TTL (default the client's)")
	// --issuer is a setting too (KEYMINT_ISSUER, the config file): the
	// command reads it from a.cfg, not from o.
	f.String("issuer", "", "issuer (iss) of the token (default the vault's, else "+defaultIssuer+")")
	_ = cmd.RegisterFlagCompletionFunc("client", a.completeNames(vault.KindClient))
	return cmd
}

func (a *app) runTokenIssue(o tokenIssueOptions) error {
	if o.client == "" {
		return usagef("missing --client: name the client to mint a token for (see `keymint client ls`)")
	}
	if o.ttl < 0 {
		return usagef("--ttl must be positive")
	}
	if err := a.checkIssuerSetting(); err != nil {
		return err
	}
	scopes, err := parseScopes(o.scopes)
	if err != nil {
		return err
	}
	audience, err := parseAudiences(o.audience)
	if err != nil {
		return err
	}
	resp, err := a.issueToken(o.client, token.Request{Scope: scopes, Audience: audience, TTL: o.ttl})
	if err != nil {
		return err
	}
	if a.json() {
		return a.writeJSON(resp)
	}
	fmt.Fprintln(a.io.Out, resp.AccessToken)
	return nil
}

// issueToken mints a token for the client ref names, in one write
// transaction that also counts the use and records it as the client's last,
// so that a token refused over quota leaves no trace.
func (a *app) issueToken(ref string, req token.Request) (tokenIssueOutput, error) {
	var resp tokenIssueOutput
	err := a.update(func(tx *vault.Tx) error {
		c, err := tx.Client(ref)
		if err != nil {
			return lookupHint(err, "client ls")
		}
		settings, err := tx.Settings()
		if err != nil {
			return err
		}
		iss, err := a.issuerFor(settings, defaultIssuer)
		if err != nil {
			return err
		}
		keys, err := tx.SigningKeys()
		if err != nil {
			return err
		}
		signer, err := token.ActiveSigner(keys)
		if err != nil {
			return err
		}
		// The server's /token issues the same way, counting with its lease.
		claims, r, err := token.Issue(c, req, iss, tx.Now(), signer, func() error {
			_, err := consumeUse(tx, &c.Credential)
			return err
		})
		if err != nil {
			return tokenRequestError(err)
		}
		resp.Response, resp.ExpiresAt = r, claims.ExpiresAt.UTC()
		return tx.TouchClient(c.ID)
	})
	return resp, err
}

// tokenRequestError makes a request the client does not allow a usage error.
func tokenRequestError(err error) error {
	if errors.Is(err, token.ErrInvalidScope) || errors.Is(err, token.ErrInvalidRequest) {
		return usageError{err}
	}
	return err
}

func newTokenVerifyCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "verify [TOKEN]",
		Short: "Check an access token against the vault's signing keys",
		Long: `Check an access token (the argument, or stdin when there is none) against
the vault, and print its claims. Exit 0 when it is active, exactly when
keymint serve's /introspect would say so: signed by a published signing
key, an access token (typ at+jwt), of this vault's issuer, neither expired
nor not yet valid, not revoked, and of a client that still exists and has
not expired. Exit 1 otherwise, saying why.

The issuer expected is ` + issuerHelp + `.

Prefer stdin: a token on the command line is visible to other local users.`,
		Example: `  keymint token issue --client erp | keymint token verify
  printf '%s' "$TOKEN" | keymint token verify -o json`,
		Args: maxArgs(1, "one token"),
		RunE: func(_ *cobra.Command, args []string) error {
			return a.runTokenVerify(args)
		},
	}
	// --issuer is a setting too: the command reads it from a.cfg.
	cmd.Flags().String("issuer", "", "issuer (iss) the token must name (default the vault's, else "+defaultIssuer+")")
	return cmd
}

type claimsJSON struct {
	Issuer    string    `json:"iss"`
	Subject   string    `json:"sub"`
	Audience  []string  `json:"aud"`
	IssuedAt  time.Time `json:"iat"`
	ExpiresAt time.Time `json:"exp"`
	ID        string    `json:"jti"`
	ClientID  string    `json:"client_id"`
	Scope     string    `json:"scope"`
}

// runTokenVerify checks the token given as the one argument in args, or
// else read from stdin.
func (a *app) runTokenVerify(args []string) error {
	raw, err := a.tokenInput(args)
	if err != nil {
		return err
	}
	if err := a.checkIssuerSetting(); err != nil {
		return err
	}
	claims, clientName, err := a.checkToken(raw)
	if err != nil {
		return err
	}
	if a.json() {
		return a.writeJSON(map[string]any{"valid": true, "client_name": clientName, "claims": claimsJSON{
			Issuer: claims.Issuer, Subject: claims.Subject, Audience: claims.Audience,
			IssuedAt: claims.IssuedAt.UTC(), ExpiresAt: claims.ExpiresAt.UTC(),
			ID: claims.ID, ClientID: claims.ClientID, Scope: strings.Join(claims.Scope, " "),
		}})
	}
	now := a.now()
	client := clientName + " (" + claims.ClientID + ")"
	t := newTable(a.io.Out, "CLAIM", "VALUE")
	t.row("valid", "yes")
	t.row("client", client)
	t.row("scope", strings.Join(claims.Scope, " "))
	t.row("audience", strings.Join(claims.Audience, " "))
	t.row("issuer", claims.Issuer)
	t.row("issued", timeAndRel(&claims.IssuedAt, now, ""))
	t.row("expires", timeAndRel(&claims.ExpiresAt, now, ""))
	t.row("jti", claims.ID)
	return t.flush()
}

// checkToken returns the claims of raw, and the name of its client, if the
// token is active, by token.CheckActive as /introspect decides it.
// tokenInput is the token of token verify and token revoke: the one
// argument, or else the first line of stdin.
func (a *app) tokenInput(args []string) (string, error) {
	raw := ""
	if len(args) == 1 {
		raw = args[0]
	} else {
		line, err := a.io.readLine()
		if err != nil {
			return "", err
		}
		raw = line
	}
	if raw = strings.TrimSpace(raw); raw == "" {
		return "", usagef("no token: pass it as the argument or on stdin")
	}
	return raw, nil
}

func (a *app) checkToken(raw string) (claims token.Claims, clientName string, err error) {
	err = a.view(func(tx *vault.Tx) (err error) {
		claims, clientName, err = a.activeIn(tx, raw)
		return err
	})
	return claims, clientName, err
}

// activeIn decides in tx whether raw is an active access token of this
// vault, with token.CheckActive, as /introspect does; it returns its
// claims and its client's name. An inactive token's error says why.
func (a *app) activeIn(tx *vault.Tx, raw string) (claims token.Claims, clientName string, err error) {
	err = func() error {
		settings, err := tx.Settings()
		if err != nil {
			return err
		}
		iss, err := a.issuerFor(settings, defaultIssuer)
		if err != nil {
			return err
		}
		keys, err := tx.SigningKeys()
		if err != nil {
			return err
		}
		ks, err := token.PublishedKeySet(keys, tx.Now())
		if err != nil {
			return err
		}
		claims, err = token.CheckActive(ks, raw, token.ActiveContext{
			Issuer:  iss,
			Now:     tx.Now(),
			Revoked: tx.Revoked,
			Client: func(id string) (*vault.Client, error) {
				c, err := tx.Client(id)
				if err == nil {
					clientName = c.Name
				}
				return c, err
			},
			Grant: tx.StandingGrant,
		})
		if token.IsInactive(err) {
			return fmt.Errorf("invalid token: %w", err)
		}
		return err
	}()
	return claims, clientName, err
}
