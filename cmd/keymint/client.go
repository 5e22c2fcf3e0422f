package main

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/keymint/keymint/apikey"
	"github.com/keymint/keymint/token"
	"github.com/keymint/keymint/vault"
)

// grantNames lists the grant types a client may be given, for help and
// messages: "client_credentials or authorization_code".
var grantNames = strings.Join(token.ClientGrantTypes, " or ")

// defaultTokenTTL is the access token lifetime the replaced services use.
const defaultTokenTTL = time.Hour

// maxTokenTTL bounds --token-ttl, and so how long a retired signing key must
// stay published.
const maxTokenTTL = 30 * 24 * time.Hour

func newClientCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "client",
		Short: "Manage OAuth 2.0 clients",
	}
	cmd.AddCommand(newClientNewCmd(a), newClientLsCmd(a), newClientShowCmd(a), newClientRenameCmd(a), newClientRmCmd(a), newClientRotateCmd(a))
	return cmd
}

// clientJSON is a client as -o json shows it. ClientSecret is set only on
// creation and rotation.
type clientJSON struct {
	ClientID     string     `json:"client_id"`
	Name         string     `json:"name"`
	ClientSecret string     `json:"client_secret,omitempty"`
	GrantTypes   []string   `json:"grant_types"`
	RedirectURIs []string   `json:"redirect_uris"`
	Scopes       []string   `json:"scopes"`
	Audience     []string   `json:"audience"`
	TokenTTL     int64      `json:"token_ttl"`
	Limits       []string   `json:"limits"`
	Description  string     `json:"description,omitempty"`
	URL          string     `json:"url,omitempty"`
	PolicyURL    string     `json:"policy_url,omitempty"`
	TOSURL       string     `json:"tos_url,omitempty"`
	CreatedAt    time.Time  `json:"created_at"`
	LastUsedAt   *time.Time `json:"last_used_at"`
}

func clientView(c *vault.Client) clientJSON {
	return clientJSON{
		ClientID:     c.ID,
		Name:         c.Name,
		GrantTypes:   nonNil(c.GrantTypes),
		RedirectURIs: nonNil(c.RedirectURIs),
		Scopes:       nonNil(c.Scopes),
		Audience:     nonNil(c.Audience),
		TokenTTL:     int64(c.TokenTTL / time.Second),
		Limits:       limitStrings(c.Limits),
		Description:  c.Description,
		URL:          c.URL,
		PolicyURL:    c.PolicyURL,
		TOSURL:       c.TOSURL,
		CreatedAt:    c.CreatedAt.UTC().Truncate(time.Second),
		LastUsedAt:   utcPtr(c.LastUsedAt),
	}
}

type clientNewOptions struct {
	grants       []string
	redirectURIs []string
	scopes       []string
	audience     []string
	tokenTTL     time.Duration
	description  string
	url          string
	policyURL    string
	tosURL       string
	limits       []string
}

func newClientNewCmd(a *app) *cobra.Command {
	var o clientNewOptions
	cmd := &cobra.Command{
		Use:   "new NAME",
		Short: "Create an OAuth client; its secret is printed once",
		Long: `Create an OAuth 2.0 client named NAME. The client_id and client_secret are
printed once; the secret is never stored, only its HMAC. Store it now.

A client uses the client_credentials grant unless --grant says otherwise; an
authorization_code client needs at least one --redirect-uri.`,
		Example: `  keymint client new erp --scope invoices:read --token-ttl 1h
  keymint client new webapp --grant authorization_code --redirect-uri https://app.example/cb \
      --description "Customer portal" --url https://app.example`,
		Args: exactArgs(1, "one NAME"),
		RunE: func(_ *cobra.Command, args []string) error {
			return a.runClientNew(args[0], o)
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&o.grants, "grant", nil, "grant type: "+grantNames+"; default "+token.ClientGrantTypes[0]+" (repeatable)")
	f.StringArrayVar(&o.redirectURIs, "redirect-uri", nil, "redirect URI for "+token.GrantAuthorizationCode+" (repeatable)")
	f.StringArrayVar(&o.scopes, "scope", nil, "scope the client may request (repeatable; space- or comma-separated)")
	f.StringArrayVar(&o.audience, "audience", nil, "audience (aud) of the client's tokens, a URI taken whole (repeatable; never split on commas)")
	durationVar(f, &o.tokenTTL, "token-ttl", defaultTokenTTL, "lifetime of the client's access tokens")
	f.StringVar(&o.description, "description", "", "what the client is for")
	f.StringVar(&o.url, "url", "", "the client's home page")
	f.StringVar(&o.policyURL, "policy-url", "", "the client's privacy policy")
	f.StringVar(&o.tosURL, "tos-url", "", "the client's terms of service")
	f.StringArrayVar(&o.limits, "limit", nil, "usage limit such as 8000/month or 10/second (repeatable, one per period)")
	return cmd
}

// client checks the flags and builds the record they describe.
func (o clientNewOptions) client(name string) (*vault.Client, error) {
	if err := vault.ValidateName(name); err != nil {
		return nil, usageError{err}
	}
	grants, err := parseScopes(o.grants)
	if err != nil {
		return nil, err
	}
	if len(grants) == 0 {
		grants = []string{token.GrantClientCredentials}
	}
	for _, g := range grants {
		if !token.ValidClientGrantType(g) {
			return nil, usagef("unknown --grant %q: use %s", g, grantNames)
		}
	}
	if slices.Contains(grants, token.GrantAuthorizationCode) && len(o.redirectURIs) == 0 {
		return nil, usagef("--grant %s needs at least one --redirect-uri", token.GrantAuthorizationCode)
	}
	if !slices.Contains(grants, token.GrantAuthorizationCode) && len(o.redirectURIs) > 0 {
		return nil, usagef("--redirect-uri is only for --grant %s", token.GrantAuthorizationCode)
	}
	for _, u := range o.redirectURIs {
		if err := parseURL("--redirect-uri", u); err != nil {
			return nil, err
		}
		if strings.Contains(u, "#") {
			return nil, usagef("invalid --redirect-uri %q: it must not have a fragment (RFC 6749 §3.1.2)", u)
		}
	}
	for flag, u := range map[string]string{"--url": o.url, "--policy-url": o.policyURL, "--tos-url": o.tosURL} {
		if u != "" {
			if err := parseURL(flag, u); err != nil {
				return nil, err
			}
		}
	}
	if o.tokenTTL < time.Second || o.tokenTTL > maxTokenTTL {
		return nil, usagef("--token-ttl %s out of range: use between 1s and %s", shortDuration(o.tokenTTL), shortDuration(maxTokenTTL))
	}
	scopes, err := parseScopes(o.scopes)
	if err != nil {
		return nil, err
	}
	audience, err := parseAudiences(o.audience)
	if err != nil {
		return nil, err
	}
	limits, err := parseLimitFlags(o.limits)
	if err != nil {
		return nil, err
	}
	return &vault.Client{
		Credential:   vault.Credential{Name: name, Scopes: scopes, Limits: limits},
		GrantTypes:   grants,
		RedirectURIs: o.redirectURIs,
		Audience:     audience,
		TokenTTL:     o.tokenTTL,
		Description:  o.description,
		URL:          o.url,
		PolicyURL:    o.policyURL,
		TOSURL:       o.tosURL,
	}, nil
}

func (a *app) runClientNew(name string, o clientNewOptions) error {
	c, err := o.client(name)
	if err != nil {
		return err
	}
	var secret string
	err = a.update(func(tx *vault.Tx) error {
		settings, err := tx.Settings()
		if err != nil {
			return err
		}
		if secret, err = apikey.Generate(settings.ClientSecretPrefix); err != nil {
			return err
		}
		return tx.CreateClient(c, secret)
	})
	if err != nil {
		return err
	}
	return a.printClientSecret(c, secret, fmt.Sprintf("created client %s", c.Name))
}

func (a *app) printClientSecret(c *vault.Client, secret, what string) error {
	if a.json() {
		v := clientView(c)
		v.ClientSecret = secret
		return a.writeJSON(v)
	}
	fmt.Fprintf(a.io.Err, "%s; the client_secret below is shown only this once\n", what)
	fmt.Fprintf(a.io.Out, "client_id:     %s\nclient_secret: %s\n", c.ID, secret)
	return nil
}

func newClientLsCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List OAuth clients (never their secrets)",
		Args:    noArgs,
		RunE: func(*cobra.Command, []string) error {
			return a.runClientLs()
		},
	}
}

func (a *app) runClientLs() error {
	var clients []*vault.Client
	if err := a.view(func(tx *vault.Tx) (err error) {
		clients, err = tx.Clients()
		return err
	}); err != nil {
		return err
	}
	if a.json() {
		return a.writeJSON(clientViews(clients))
	}
	now := a.now()
	t := newTable(a.io.Out, "NAME", "CLIENT ID", "GRANTS", "SCOPES", "TOKEN TTL", "LAST USED", "CREATED")
	for _, c := range clients {
		t.row(c.Name, c.ID, strings.Join(c.GrantTypes, ","), strings.Join(c.Scopes, " "), shortDuration(c.TokenTTL), relTime(c.LastUsedAt, now, "never"), relTime(&c.CreatedAt, now, ""))
	}
	return t.flush()
}

// clientViews is clients as -o json lists them: [] rather than null for
// none.
func clientViews(clients []*vault.Client) []clientJSON {
	out := make([]clientJSON, 0, len(clients))
	for _, c := range clients {
		out = append(out, clientView(c))
	}
	return out
}

func newClientShowCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:               "show ID|NAME",
		Short:             "Show one OAuth client (never its secret)",
		Args:              exactArgs(1, "one client ID or NAME"),
		ValidArgsFunction: a.completeNames(vault.KindClient),
		RunE: func(_ *cobra.Command, args []string) error {
			return a.runClientShow(args[0])
		},
	}
}

func (a *app) runClientShow(ref string) error {
	var c *vault.Client
	var usage string
	if err := a.view(func(tx *vault.Tx) (err error) {
		if c, err = tx.Client(ref); err != nil {
			return err
		}
		usage, err = usageSummary(tx, &c.Credential, tx.Now())
		return err
	}); err != nil {
		return lookupHint(err, "client ls")
	}
	if a.json() {
		return a.writeJSON(clientView(c))
	}
	return a.writeClientTable(c, usage)
}

// writeClientTable prints client show's table for people.
func (a *app) writeClientTable(c *vault.Client, usage string) error {
	now := a.now()
	t := newTable(a.io.Out, "FIELD", "VALUE")
	t.row("name", c.Name)
	t.row("client_id", c.ID)
	t.row("grant types", strings.Join(c.GrantTypes, " "))
	t.row("redirect uris", strings.Join(c.RedirectURIs, " "))
	t.row("scopes", strings.Join(c.Scopes, " "))
	t.row("audience", strings.Join(c.Audience, " "))
	t.row("token ttl", shortDuration(c.TokenTTL))
	t.row("limits", strings.Join(limitStrings(c.Limits), " "))
	t.row("usage", usage)
	t.row("description", c.Description)
	t.row("url", c.URL)
	t.row("policy url", c.PolicyURL)
	t.row("tos url", c.TOSURL)
	t.row("created", timeAndRel(&c.CreatedAt, now, ""))
	t.row("last used", timeAndRel(c.LastUsedAt, now, "never"))
	t.row("secrets", secretsSummary(c.Secrets, now))
	return t.flush()
}

func newClientRenameCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:               "rename OLD NEW",
		Short:             "Rename an OAuth client; its client_id stays the same",
		Args:              exactArgs(2, "OLD and NEW names"),
		ValidArgsFunction: a.completeNames(vault.KindClient),
		RunE: func(_ *cobra.Command, args []string) error {
			return a.runClientRename(args[0], args[1])
		},
	}
}

func (a *app) runClientRename(oldName, newName string) error {
	if err := vault.ValidateName(newName); err != nil {
		return usageError{err}
	}
	var c *vault.Client
	if err := a.update(func(tx *vault.Tx) (err error) {
		c, err = tx.RenameClient(oldName, newName)
		return err
	}); err != nil {
		return notFoundHint(err, "client ls")
	}
	if a.json() {
		return a.writeJSON(clientView(c))
	}
	fmt.Fprintf(a.io.Out, "renamed client %s to %s (%s)\n", oldName, c.Name, c.ID)
	return nil
}

func newClientRmCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:               "rm ID|NAME...",
		Aliases:           []string{"remove", "delete"},
		Short:             "Delete OAuth clients; if one is missing, none is deleted",
		Args:              requireArgs(1, "ID or NAME of the client(s) to delete"),
		ValidArgsFunction: a.completeNames(vault.KindClient),
		RunE: func(_ *cobra.Command, args []string) error {
			return a.runClientRm(args)
		},
	}
}

func (a *app) runClientRm(refs []string) error {
	var removed []*vault.Client
	if err := a.update(func(tx *vault.Tx) (err error) {
		removed, err = tx.DeleteClients(refs...)
		return err
	}); err != nil {
		return notFoundHint(err, "client ls")
	}
	if a.json() {
		return a.writeJSON(clientViews(removed))
	}
	for _, c := range removed {
		fmt.Fprintf(a.io.Out, "deleted client %s (%s)\n", c.Name, c.ID)
	}
	return nil
}

type clientRotateOptions struct {
	grace time.Duration
}

func newClientRotateCmd(a *app) *cobra.Command {
	var o clientRotateOptions
	cmd := &cobra.Command{
		Use:   "rotate-secret ID|NAME",
		Short: "Give an OAuth client a new secret; the old one works until --grace ends",
		Long: `Give an OAuth client a new client_secret, printed once; the secrets it had
keep working until --grace ends (at once with --grace 0s).

An expired client cannot be rotated, as its new secret would not work
either: create a new client instead, or remove it.

EXIT CODES
  0  rotated;  1  no such client, the client has expired, or the vault could
  not be written;  2  bad usage, such as a negative --grace.`,
		Args:              exactArgs(1, "one client ID or NAME"),
		ValidArgsFunction: a.completeNames(vault.KindClient),
		RunE: func(_ *cobra.Command, args []string) error {
			return a.runClientRotate(args[0], o)
		},
	}
	durationVar(cmd.Flags(), &o.grace, "grace", 24*time.Hour, "how long the old secret keeps working (such as 12h or 7d)")
	return cmd
}

func (a *app) runClientRotate(ref string, o clientRotateOptions) error {
	if o.grace < 0 {
		return usagef("--grace must not be negative")
	}
	var c *vault.Client
	var secret string
	err := a.update(func(tx *vault.Tx) error {
		settings, err := tx.Settings()
		if err != nil {
			return err
		}
		if secret, err = apikey.Generate(settings.ClientSecretPrefix); err != nil {
			return err
		}
		c, err = tx.RotateClient(ref, secret, o.grace)
		return err
	})
	if err != nil {
		return notFoundHint(a.expiredHint(err), "client ls")
	}
	return a.printClientSecret(c, secret, fmt.Sprintf("rotated the secret of client %s; %s", c.Name, oldSecretFor(o.grace)))
}
