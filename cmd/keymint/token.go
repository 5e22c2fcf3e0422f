package main

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/keymint/keymint/issuer"
	"github.com/keymint/keymint/vault"
)

// defaultIssuer is the iss of offline tokens when none is configured: the
// address `keymint serve` listens on by default, so tokens minted either way
// look alike.
const defaultIssuer = "http://127.0.0.1:8080"

// tokenIssueOutput is what token issue -o json prints: the RFC 6749 token
// response, plus expires_at for people and scripts that prefer a time to a
// countdown. The server's /token sends the response alone.
type tokenIssueOutput struct {
	issuer.TokenResponse
	ExpiresAt time.Time `json:"expires_at"`
}

func newTokenCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Mint and check access tokens offline",
	}
	cmd.AddCommand(newTokenIssueCmd(a), newTokenVerifyCmd(a))
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
it. The token's issuer (iss) is --issuer, KEYMINT_ISSUER or the config's
issuer, else ` + defaultIssuer + `. Counts as one use of the client.`,
		Example: `  TOKEN=$(keymint token issue --client erp)
  keymint token issue --client erp --scope invoices:read --audience https://api.example --ttl 10m -o json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.client == "" {
				return usagef("missing --client: name the client to mint a token for (see `keymint client ls`)")
			}
			if o.ttl < 0 {
				return usagef("--ttl must be positive")
			}
			return a.runTokenIssue(o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.client, "client", "", "client ID or NAME")
	f.StringArrayVar(&o.scopes, "scope", nil, "scopes to request, within the client's (repeatable; space- or comma-separated)")
	f.StringArrayVar(&o.audience, "audience", nil, "audience (aud), among the client's if it has any (repeatable)")
	durationVar(f, &o.ttl, "ttl", 0, "token lifetime, at most the client's token TTL (default the client's)")
	f.String("issuer", "", "issuer (iss) of the token (default "+defaultIssuer+")")
	_ = cmd.RegisterFlagCompletionFunc("client", a.completeNames(vault.KindClient))
	return cmd
}

func (a *app) issuerURL() string {
	return orDefault(a.cfg.Issuer, defaultIssuer)
}

func (a *app) runTokenIssue(o tokenIssueOptions) error {
	scopes, err := parseScopes(o.scopes)
	if err != nil {
		return err
	}
	audience, err := parseScopes(o.audience)
	if err != nil {
		return err
	}
	req := issuer.TokenRequest{Scope: scopes, Audience: audience, TTL: o.ttl}
	var resp tokenIssueOutput
	err = a.update(func(tx *vault.Tx) error {
		c, err := tx.Client(o.client)
		if err != nil {
			return lookupHint(err, "client ls")
		}
		claims, err := issuer.ClaimsFor(c, req, a.issuerURL(), tx.Now())
		if err != nil {
			return tokenRequestError(err)
		}
		keys, err := tx.SigningKeys()
		if err != nil {
			return err
		}
		signer, err := issuer.ActiveSigner(keys)
		if err != nil {
			return err
		}
		if _, err := consumeUse(tx, &c.Credential); err != nil {
			return err
		}
		if resp.TokenResponse, err = issuer.Mint(signer, claims, tx.Now()); err != nil {
			return err
		}
		resp.ExpiresAt = claims.ExpiresAt.UTC()
		return tx.TouchClient(c.ID)
	})
	if err != nil {
		return err
	}
	if a.json() {
		return a.writeJSON(resp)
	}
	fmt.Fprintln(a.io.Out, resp.AccessToken)
	return nil
}

// tokenRequestError makes a request the client does not allow a usage error.
func tokenRequestError(err error) error {
	if errors.Is(err, issuer.ErrInvalidScope) || errors.Is(err, issuer.ErrInvalidRequest) {
		return usageError{err}
	}
	return err
}

func newTokenVerifyCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "verify [TOKEN]",
		Short: "Check an access token against the vault's signing keys",
		Long: `Check an access token (the argument, or stdin when there is none) against
the vault's signing keys and revocations, and print its claims. Exit 0 when
it is valid; 1 when it is expired, revoked, tampered with or not keymint's.

Prefer stdin: a token on the command line is visible to other local users.`,
		Example: `  keymint token issue --client erp | keymint token verify
  printf '%s' "$TOKEN" | keymint token verify -o json`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var token string
			if len(args) == 1 {
				token = args[0]
			} else {
				line, err := a.io.readLine()
				if err != nil {
					return err
				}
				token = line
			}
			token = strings.TrimSpace(token)
			if token == "" {
				return usagef("no token: pass it as the argument or on stdin")
			}
			return a.runTokenVerify(token)
		},
	}
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

func (a *app) runTokenVerify(token string) error {
	var claims issuer.Claims
	var clientName string
	err := a.view(func(tx *vault.Tx) error {
		keys, err := tx.SigningKeys()
		if err != nil {
			return err
		}
		ks, err := issuer.PublishedKeySet(keys, tx.Now())
		if err != nil {
			return err
		}
		if claims, err = ks.Verify(token, tx.Now()); err != nil {
			return fmt.Errorf("invalid token: %w", err)
		}
		revoked, err := tx.Revoked(claims.ID)
		if err != nil {
			return err
		}
		if revoked {
			return errors.New("invalid token: it was revoked")
		}
		if c, err := tx.Client(claims.ClientID); err == nil {
			clientName = c.Name
		}
		return nil
	})
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
	now := time.Now()
	client := claims.ClientID
	if clientName != "" {
		client = clientName + " (" + claims.ClientID + ")"
	} else {
		client += " (no longer in the vault)"
	}
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
