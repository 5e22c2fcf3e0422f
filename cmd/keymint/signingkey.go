package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/keymint/keymint/token"
	"github.com/keymint/keymint/vault"
)

func newSigningKeyCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "signing-key",
		Short: "Manage the JWT signing keys",
	}
	cmd.AddCommand(newSigningKeyLsCmd(a), newSigningKeyRotateCmd(a))
	return cmd
}

type signingKeyJSON struct {
	KID          string     `json:"kid"`
	Alg          string     `json:"alg"`
	Active       bool       `json:"active"`
	CreatedAt    time.Time  `json:"created_at"`
	RetiredAt    *time.Time `json:"retired_at"`
	PublishUntil *time.Time `json:"publish_until"`
}

func signingKeyView(k *vault.SigningKey) signingKeyJSON {
	return signingKeyJSON{
		KID:          k.ID,
		Alg:          k.Alg,
		Active:       k.Active(),
		CreatedAt:    k.CreatedAt.UTC().Truncate(time.Second),
		RetiredAt:    utcPtr(k.RetiredAt),
		PublishUntil: utcPtr(k.PublishUntil),
	}
}

func newSigningKeyLsCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List the signing keys: the active one and retired ones still in JWKS",
		Args:    noArgs,
		RunE: func(*cobra.Command, []string) error {
			return a.runSigningKeyLs()
		},
	}
}

func (a *app) runSigningKeyLs() error {
	var keys []*vault.SigningKey
	if err := a.view(func(tx *vault.Tx) (err error) {
		keys, err = tx.SigningKeys()
		return err
	}); err != nil {
		return err
	}
	if a.json() {
		out := make([]signingKeyJSON, 0, len(keys))
		for _, k := range keys {
			out = append(out, signingKeyView(k))
		}
		return a.writeJSON(out)
	}
	now := a.now()
	t := newTable(a.io.Out, "KID", "ALG", "STATE", "CREATED", "IN JWKS UNTIL")
	for _, k := range keys {
		state, until := "active", "-"
		if !k.Active() {
			state, until = "retired", relTime(k.PublishUntil, now, "")
			if !k.Published(now) {
				state = "expired"
			}
		}
		t.row(k.ID, k.Alg, state, relTime(&k.CreatedAt, now, ""), until)
	}
	return t.flush()
}

// newSigningKeyRotateCmd is signing-key rotate, the one command that makes a
// signing key (vault.SigningKeyHint names it); new is an alias.
type signingKeyRotateOptions struct {
	alg string
}

func newSigningKeyRotateCmd(a *app) *cobra.Command {
	var o signingKeyRotateOptions
	const short = "Make a new active signing key; retired keys stay in JWKS until their tokens expire"
	cmd := &cobra.Command{
		Use:     "rotate",
		Aliases: []string{"new"},
		Short:   short,
		Long: short + `.

The previous active key stops signing at once, but its public key stays in
JWKS for as long as the longest client token TTL, so tokens it signed keep
verifying until they expire. Running servers pick up the new key within a
second.`,
		Args: noArgs,
		RunE: func(*cobra.Command, []string) error {
			return a.runSigningKeyRotate(o)
		},
	}
	cmd.Flags().StringVar(&o.alg, "alg", string(token.DefaultAlg), "algorithm: ES256, RS256, RS512 or EdDSA")
	return cmd
}

func (a *app) runSigningKeyRotate(o signingKeyRotateOptions) error {
	alg, err := token.ParseAlg(o.alg)
	if err != nil {
		return usageError{fmt.Errorf("--alg: %w", err)}
	}
	k, err := token.GenerateSigningKey(alg, a.now())
	if err != nil {
		return err
	}
	stored := token.ToVault(k)
	err = a.update(func(tx *vault.Tx) error {
		ttl, err := longestTokenTTL(tx)
		if err != nil {
			return err
		}
		if err := tx.PruneSigningKeys(); err != nil {
			return err
		}
		return tx.AddSigningKey(stored, ttl)
	})
	if err != nil {
		return err
	}
	if a.json() {
		return a.writeJSON(signingKeyView(stored))
	}
	fmt.Fprintf(a.io.Out, "new active %s signing key %s\n", stored.Alg, stored.ID)
	return nil
}

// longestTokenTTL is how long a token signed now may live: the longest
// client TTL, so a retired key stays published exactly as long as needed.
func longestTokenTTL(tx *vault.Tx) (time.Duration, error) {
	clients, err := tx.Clients()
	if err != nil {
		return 0, err
	}
	longest := defaultTokenTTL
	for _, c := range clients {
		longest = max(longest, c.TokenTTL)
	}
	return longest, nil
}
