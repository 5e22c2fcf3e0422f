package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/keymint/keymint/apikey"
	"github.com/keymint/keymint/token"
	"github.com/keymint/keymint/vault"
)

// keymint token revoke: end a token before it expires, whoever minted it
// (token issue here, or keymint serve), recorded in the vault, which every
// server reading it refuses within a second.

type tokenRevokeOptions struct {
	jti string
}

func newTokenRevokeCmd(a *app) *cobra.Command {
	var o tokenRevokeOptions
	cmd := &cobra.Command{
		Use:   "revoke [TOKEN]",
		Short: "Revoke an access token or a refresh token before it expires",
		Long: `Revoke a token (the argument, or stdin when there is none), minted by
keymint token issue or by keymint serve: an access token is recorded as
revoked, so token verify and /introspect call it inactive (a running
keymint serve within a second); a refresh token (kmrt_...) ends its whole
family, so neither it nor any token it was exchanged for refreshes again.

--jti revokes an access token by its id (its jti claim, as logs and
/introspect show it) without the token itself; it is kept as revoked for
the longest lifetime a keymint token can have.

Exit 0 when the token is revoked now or was already; 1 when it is not a
token of this vault (another issuer, a bad signature, unknown refresh
token), saying why; 2 on bad usage.

Prefer stdin: a token on the command line is visible to other local users.`,
		Example: `  printf '%s' "$TOKEN" | keymint token revoke
  keymint token revoke --jti 3q2-7wEjQqmJmQmKk8nU2w`,
		Args: maxArgs(1, "one token"),
		RunE: func(_ *cobra.Command, args []string) error {
			return a.runTokenRevoke(args, o)
		},
	}
	cmd.Flags().StringVar(&o.jti, "jti", "", "revoke the access token with this id (jti), without the token")
	// --issuer is a setting too: the command reads it from a.cfg.
	cmd.Flags().String("issuer", "", "issuer (iss) the token must name (default the vault's, else "+defaultIssuer+")")
	return cmd
}

// tokenRevokeJSON is what -o json prints.
type tokenRevokeJSON struct {
	Kind     string     `json:"kind"` // access_token or refresh_token
	JTI      string     `json:"jti,omitempty"`
	ClientID string     `json:"client_id,omitempty"`
	Family   string     `json:"family,omitempty"`
	Already  bool       `json:"already_revoked"`
	Until    *time.Time `json:"until,omitempty"`
}

func (a *app) runTokenRevoke(args []string, o tokenRevokeOptions) error {
	if o.jti != "" {
		if len(args) > 0 {
			return usagef("give a token or --jti, not both")
		}
		return a.revokeJTI(o.jti)
	}
	raw, err := a.tokenInput(args)
	if err != nil {
		return err
	}
	if err := a.checkIssuerSetting(); err != nil {
		return err
	}
	if _, err := apikey.Parse(raw); err == nil {
		return a.revokeRefresh(raw)
	}
	var out tokenRevokeJSON
	var clientName string
	err = a.update(func(tx *vault.Tx) error {
		claims, name, err := a.activeIn(tx, raw)
		switch {
		case errors.Is(err, token.ErrRevoked):
			out = tokenRevokeJSON{Kind: "access_token", Already: true}
			return nil
		case err != nil:
			return err
		}
		clientName = name
		until := claims.ExpiresAt.UTC()
		out = tokenRevokeJSON{Kind: "access_token", JTI: claims.ID, ClientID: claims.ClientID, Until: &until}
		return tx.Revoke(vault.Revocation{JTI: claims.ID, ClientID: claims.ClientID, ExpiresAt: claims.ExpiresAt})
	})
	if err != nil {
		return err
	}
	if a.json() {
		return a.writeJSON(out)
	}
	if out.Already {
		fmt.Fprintln(a.io.Out, "the token was already revoked")
		return nil
	}
	fmt.Fprintf(a.io.Out, "revoked token %s of client %s (%s); it would have expired %s\n",
		out.JTI, clientName, out.ClientID, out.Until.Format(time.RFC3339))
	return nil
}

// revokeJTI revokes the access token whose jti is id, kept for the longest
// lifetime a keymint token can have.
func (a *app) revokeJTI(id string) error {
	if len(id) > 128 || !token.ValidScope(id) { // printable, no space: a jti's characters
		return usagef("--jti must be a token id (its jti claim), such as 3q2-7wEjQqmJmQmKk8nU2w")
	}
	out := tokenRevokeJSON{Kind: "access_token", JTI: id}
	err := a.update(func(tx *vault.Tx) error {
		revoked, err := tx.Revoked(id)
		if err != nil || revoked {
			out.Already = revoked
			return err
		}
		until := tx.Now().Add(maxTokenTTL).UTC()
		out.Until = &until
		return tx.Revoke(vault.Revocation{JTI: id, ExpiresAt: until})
	})
	if err != nil {
		return err
	}
	if a.json() {
		return a.writeJSON(out)
	}
	if out.Already {
		fmt.Fprintf(a.io.Out, "token %s was already revoked\n", id)
		return nil
	}
	fmt.Fprintf(a.io.Out, "revoked token %s, kept as revoked until %s\n", id, out.Until.Format(time.RFC3339))
	return nil
}

// errNotRefreshToken is a keymint-format secret that is no current refresh
// token of this vault.
var errNotRefreshToken = errors.New("not a current refresh token of this vault (unknown, already used, expired or revoked)")

// revokeRefresh ends the family of refresh token raw.
func (a *app) revokeRefresh(raw string) error {
	out := tokenRevokeJSON{Kind: "refresh_token"}
	err := a.update(func(tx *vault.Tx) error {
		rt, err := tx.RefreshToken(raw)
		if errors.Is(err, vault.ErrRefreshInvalid) {
			return errNotRefreshToken
		}
		if err != nil {
			return err
		}
		out.Family, out.ClientID = rt.FamilyID, rt.ClientID
		return tx.RevokeRefreshFamily(rt.FamilyID)
	})
	if err != nil {
		return err
	}
	if a.json() {
		return a.writeJSON(out)
	}
	fmt.Fprintf(a.io.Out, "revoked refresh token family %s of client %s: none of its tokens refreshes again\n", out.Family, out.ClientID)
	return nil
}
