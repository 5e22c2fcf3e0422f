package main

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/keymint/keymint/token"
	"github.com/keymint/keymint/vault"
)

// key update and client update: change a credential in place, one field
// at a time, the flags given alone (see vault.Tx.UpdateKey).

// credentialUpdateOptions are the flags key update and client update
// share. Only the flags given are applied (cobra's Changed).
type credentialUpdateOptions struct {
	scopes  []string
	expires string
	disable bool
	enable  bool
}

func (o *credentialUpdateOptions) flags(cmd *cobra.Command, kind string) {
	f := cmd.Flags()
	f.StringArrayVar(&o.scopes, "scope", nil, "the "+kind+"'s scopes, replacing its own (repeatable; space- or comma-separated; --scope '' for none)")
	f.StringVar(&o.expires, "expires", "", "new expiry: a duration such as 90d, a date such as 2027-01-31, or never")
	f.BoolVar(&o.disable, "disable", false, "disable the "+kind+": it is refused everywhere until --enable")
	f.BoolVar(&o.enable, "enable", false, "enable a disabled "+kind+" again")
}

// update reads the flags given into a vault.CredentialUpdate.
func (o *credentialUpdateOptions) update(cmd *cobra.Command, now time.Time) (vault.CredentialUpdate, error) {
	var u vault.CredentialUpdate
	if o.disable && o.enable {
		return u, usagef("--disable and --enable cannot be combined")
	}
	f := cmd.Flags()
	if f.Changed("scope") {
		scopes, err := parseScopes(o.scopes)
		if err != nil {
			return u, err
		}
		u.Scopes = &scopes
	}
	if f.Changed("expires") {
		var t *time.Time
		if o.expires != "never" {
			if o.expires == "" {
				return u, usagef("--expires needs a value: a duration such as 90d, a date, or never")
			}
			var err error
			if t, err = parseExpiry(o.expires, now); err != nil {
				return u, err
			}
		}
		u.Expiry = &t
	}
	switch {
	case o.disable:
		u.Disabled = new(bool)
		*u.Disabled = true
	case o.enable:
		u.Disabled = new(bool)
	}
	return u, nil
}

// printUpdate says what an update changed, for people.
func (a *app) printUpdate(kind vault.Kind, name, id string, changes []vault.FieldChange) {
	if len(changes) == 0 {
		fmt.Fprintf(a.io.Out, "%s %s (%s): nothing changed\n", kind, name, id)
		return
	}
	parts := make([]string, len(changes))
	for i, c := range changes {
		parts[i] = c.String()
	}
	fmt.Fprintf(a.io.Out, "updated %s %s (%s): %s\n", kind, name, id, strings.Join(parts, "; "))
}

// changedFields are the names of the fields changed, for -o json.
func changedFields(changes []vault.FieldChange) []string {
	out := make([]string, 0, len(changes))
	for _, c := range changes {
		out = append(out, c.Field)
	}
	return out
}

type keyUpdateOptions struct {
	credentialUpdateOptions
	description string
}

func newKeyUpdateCmd(a *app) *cobra.Command {
	var o keyUpdateOptions
	cmd := &cobra.Command{
		Use:   "update ID|NAME",
		Short: "Change an API key's scopes, expiry, description, or whether it is disabled",
		Long: `Change an API key in place; only the flags given are applied, and the
output says what changed ("nothing changed" when nothing did, and then the
vault is not written). Its secret and name stay.

--scope replaces the key's scopes, --description what it is for.
--expires sets a new expiry, also on an expired key, which may then be used
again; --expires never removes it.
--disable refuses the key everywhere (/verify, keymint key verify) until
--enable; a disabled key keeps its secrets and may still be rotated.

With -o json it prints the key as key show does, with "changed": the
fields changed.

EXIT CODES
  0  updated, or nothing to change;  1  no such key, or the vault could
  not be written;  2  bad usage, such as an expiry in the past.`,
		Example: `  keymint key update billing-sync --expires 90d
  keymint key update billing-sync --scope "invoices:read reports:read"
  keymint key update partner-x --disable`,
		Args:              exactArgs(1, "one ID or NAME"),
		ValidArgsFunction: a.completeNames(vault.KindKey),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.runKeyUpdate(cmd, args[0], o)
		},
	}
	o.flags(cmd, "key")
	cmd.Flags().StringVar(&o.description, "description", "", "what the key is for")
	return cmd
}

func (a *app) runKeyUpdate(cmd *cobra.Command, ref string, o keyUpdateOptions) error {
	cu, err := o.update(cmd, a.now())
	if err != nil {
		return err
	}
	var k *vault.Key
	var changes []vault.FieldChange
	if err := a.update(func(tx *vault.Tx) (err error) {
		ku := vault.KeyUpdate{CredentialUpdate: cu}
		if cmd.Flags().Changed("description") {
			ku.Description = &o.description
		}
		k, changes, err = tx.UpdateKey(ref, ku)
		return err
	}); err != nil {
		return notFoundHint(err, "key ls")
	}
	if a.json() {
		return a.writeJSON(struct {
			keyJSON
			Changed []string `json:"changed"`
		}{keyView(k), changedFields(changes)})
	}
	a.printUpdate(vault.KindKey, k.Name, k.ID, changes)
	return nil
}

type clientUpdateOptions struct {
	credentialUpdateOptions
	tokenTTL     time.Duration
	redirectURIs []string
	audience     []string
	description  string
}

func newClientUpdateCmd(a *app) *cobra.Command {
	var o clientUpdateOptions
	cmd := &cobra.Command{
		Use:   "update ID|NAME",
		Short: "Change an OAuth client's scopes, token TTL, redirect URIs, description, or whether it is disabled",
		Long: `Change an OAuth client in place; only the flags given are applied, and
the output says what changed ("nothing changed" when nothing did, and then
the vault is not written). Its client_id, secret, name, grant types and
type (public or confidential) stay.

--scope, --redirect-uri and --audience replace the client's own (repeat
them for several). An authorization_code client keeps at least one
redirect URI; a client with a permission group takes no scopes of its own.
--expires sets a new expiry, also on an expired client, which may then be
used again; --expires never removes it. --disable refuses the client
everywhere (/token, keymint token issue) and makes its tokens inactive
(/introspect, keymint token verify) until --enable; a disabled client
keeps its secrets and may still be rotated.

With -o json it prints the client as client show does, with "changed":
the fields changed.

EXIT CODES
  0  updated, or nothing to change;  1  no such client, a change the
  client cannot take, or the vault could not be written;  2  bad usage,
  such as a --token-ttl out of range or a bad --redirect-uri.`,
		Example: `  keymint client update erp --scope "invoices:read invoices:write" --token-ttl 30m
  keymint client update webapp --redirect-uri https://app.example/cb --redirect-uri https://app.example/cb2
  keymint client update erp --disable`,
		Args:              exactArgs(1, "one client ID or NAME"),
		ValidArgsFunction: a.completeNames(vault.KindClient),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.runClientUpdate(cmd, args[0], o)
		},
	}
	o.flags(cmd, "client")
	f := cmd.Flags()
	durationVar(f, &o.tokenTTL, "token-ttl", 0, "lifetime of the client's access tokens")
	f.StringArrayVar(&o.redirectURIs, "redirect-uri", nil, "redirect URI, replacing the client's (repeatable)")
	f.StringArrayVar(&o.audience, "audience", nil, "audience (aud) of the client's tokens, replacing its own (repeatable)")
	f.StringVar(&o.description, "description", "", "what the client is for")
	return cmd
}

// clientUpdate reads the flags given into a vault.ClientUpdate, checking each as
// client new does.
func (o *clientUpdateOptions) clientUpdate(cmd *cobra.Command, now time.Time) (vault.ClientUpdate, error) {
	cu, err := o.update(cmd, now)
	u := vault.ClientUpdate{CredentialUpdate: cu}
	if err != nil {
		return u, err
	}
	f := cmd.Flags()
	if f.Changed("token-ttl") {
		if o.tokenTTL < time.Second || o.tokenTTL > maxTokenTTL {
			return u, usagef("--token-ttl %s out of range: use between 1s and %s", shortDuration(o.tokenTTL), shortDuration(maxTokenTTL))
		}
		u.TokenTTL = &o.tokenTTL
	}
	if f.Changed("redirect-uri") {
		for _, r := range o.redirectURIs {
			if err := token.CheckRedirectURI(r); err != nil {
				return u, usagef("--redirect-uri: %v", err)
			}
		}
		uris := dedupe(o.redirectURIs)
		u.RedirectURIs = &uris
	}
	if f.Changed("audience") {
		aud, err := parseAudiences(o.audience)
		if err != nil {
			return u, err
		}
		u.Audience = &aud
	}
	if f.Changed("description") {
		u.Description = &o.description
	}
	return u, nil
}

func dedupe(s []string) []string {
	var out []string
	for _, v := range s {
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}

func (a *app) runClientUpdate(cmd *cobra.Command, ref string, o clientUpdateOptions) error {
	u, err := o.clientUpdate(cmd, a.now())
	if err != nil {
		return err
	}
	var c *vault.Client
	var changes []vault.FieldChange
	var groups groupNames
	if err := a.update(func(tx *vault.Tx) (err error) {
		if c, changes, err = tx.UpdateClient(ref, u); err != nil {
			return err
		}
		groups, err = clientGroups(tx, c)
		return err
	}); err != nil {
		return notFoundHint(err, "client ls")
	}
	if a.json() {
		return a.writeJSON(struct {
			clientJSON
			Changed []string `json:"changed"`
		}{clientView(c, groups), changedFields(changes)})
	}
	a.printUpdate(vault.KindClient, c.Name, c.ID, changes)
	return nil
}
