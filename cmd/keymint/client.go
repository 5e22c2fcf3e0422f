package main

import (
	"errors"
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
	cmd.AddCommand(newClientNewCmd(a), newClientLsCmd(a), newClientShowCmd(a), newClientRenameCmd(a), newClientRmCmd(a), newClientRotateCmd(a), newClientUpdateCmd(a), newClientImportCmd(a))
	return cmd
}

// clientJSON is a client as -o json shows it. ClientSecret is set only on
// creation and rotation, and never for a public client. PermissionGroup
// is the name of the client's permission group; Scopes are then empty,
// the group's being the ones it may ask for.
type clientJSON struct {
	ClientID        string     `json:"client_id"`
	Name            string     `json:"name"`
	ClientSecret    string     `json:"client_secret,omitempty"`
	Public          bool       `json:"public"`
	PermissionGroup string     `json:"permission_group,omitempty"`
	GrantTypes      []string   `json:"grant_types"`
	RedirectURIs    []string   `json:"redirect_uris"`
	Scopes          []string   `json:"scopes"`
	Audience        []string   `json:"audience"`
	TokenTTL        int64      `json:"token_ttl"`
	Limits          []string   `json:"limits"`
	ExpiresAt       *time.Time `json:"expires_at,omitempty"`
	Disabled        bool       `json:"disabled"`
	// LegacySecret: as keyJSON's. Set by ls, show and import.
	LegacySecret bool       `json:"legacy_secret,omitempty"`
	Description  string     `json:"description,omitempty"`
	URL          string     `json:"url,omitempty"`
	PolicyURL    string     `json:"policy_url,omitempty"`
	TOSURL       string     `json:"tos_url,omitempty"`
	CreatedAt    time.Time  `json:"created_at"`
	LastUsedAt   *time.Time `json:"last_used_at"`
}

// clientView is c as -o json shows it; groups names its permission group.
func clientView(c *vault.Client, groups groupNames) clientJSON {
	return clientJSON{
		ClientID:        c.ID,
		Name:            c.Name,
		Public:          c.Public,
		PermissionGroup: groups.name(c.PermissionGroup),
		GrantTypes:      nonNil(c.GrantTypes),
		RedirectURIs:    nonNil(c.RedirectURIs),
		Scopes:          nonNil(c.Scopes),
		Audience:        nonNil(c.Audience),
		TokenTTL:        int64(c.TokenTTL / time.Second),
		Limits:          limitStrings(c.Limits),
		ExpiresAt:       utcPtr(c.ExpiresAt),
		Disabled:        c.Disabled,
		Description:     c.Description,
		URL:             c.URL,
		PolicyURL:       c.PolicyURL,
		TOSURL:          c.TOSURL,
		CreatedAt:       c.CreatedAt.UTC().Truncate(time.Second),
		LastUsedAt:      utcPtr(c.LastUsedAt),
	}
}

// groupNames maps the ids of permission groups to their names, to show
// the clients that name them.
type groupNames map[string]string

// name is the name of the group with this id: the id itself if it is not
// known, "" for none.
func (g groupNames) name(id string) string {
	if n, ok := g[id]; ok {
		return n
	}
	return id
}

// clientGroups reads the groups of clients: one read of each group named.
// A group that is gone (a client read before it was removed) keeps its id.
func clientGroups(tx *vault.Tx, clients ...*vault.Client) (groupNames, error) {
	names := groupNames{}
	for _, c := range clients {
		if _, ok := names[c.PermissionGroup]; ok || c.PermissionGroup == "" {
			continue
		}
		g, err := tx.PermissionGroup(c.PermissionGroup)
		switch {
		case errors.Is(err, vault.ErrNotFound):
			names[c.PermissionGroup] = c.PermissionGroup
		case err != nil:
			return nil, err
		default:
			names[c.PermissionGroup] = g.Name
		}
	}
	return names, nil
}

type clientNewOptions struct {
	public          bool
	permissionGroup string
	grants          []string
	redirectURIs    []string
	scopes          []string
	audience        []string
	tokenTTL        time.Duration
	description     string
	url             string
	policyURL       string
	tosURL          string
	limits          []string
}

func newClientNewCmd(a *app) *cobra.Command {
	var o clientNewOptions
	cmd := &cobra.Command{
		Use:   "new NAME",
		Short: "Create an OAuth client; its secret is printed once",
		Long: `Create an OAuth 2.0 client named NAME. The client_id and client_secret are
printed once; the secret is never stored, only its HMAC. Store it now.

A client uses the client_credentials grant unless --grant says otherwise; an
authorization_code client needs at least one --redirect-uri: https, http
on a loopback address (127.0.0.1, [::1], localhost), or a native app's
private-use scheme in reverse domain form (com.example.app:/cb).

--public makes a client that cannot keep a secret (a single-page or native
app): it gets no client_secret and proves itself with PKCE alone. It is
only for --grant authorization_code.

--permission-group NAME lets an authorization_code client ask for the
scopes of that group (see keymint permission-group) rather than scopes of
its own, so it cannot be combined with --scope.`,
		Example: `  keymint client new erp --scope invoices:read --token-ttl 1h
  keymint client new webapp --grant authorization_code --redirect-uri https://app.example/cb \
      --description "Customer portal" --url https://app.example
  keymint client new spa --public --grant authorization_code --redirect-uri https://spa.example/cb \
      --permission-group staff`,
		Args: exactArgs(1, "one NAME"),
		RunE: func(_ *cobra.Command, args []string) error {
			return a.runClientNew(args[0], o)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&o.public, "public", false, "a public client: no secret, PKCE only (--grant "+token.GrantAuthorizationCode+" only)")
	f.StringVar(&o.permissionGroup, "permission-group", "", "the permission group whose scopes the client may ask for (instead of --scope)")
	_ = cmd.RegisterFlagCompletionFunc("permission-group", a.completeGroups())
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
		if err := token.CheckRedirectURI(u); err != nil {
			return nil, usagef("--redirect-uri: %v", err)
		}
	}
	if o.public {
		if !slices.Contains(grants, token.GrantAuthorizationCode) {
			return nil, usagef("--public is only for --grant %s: a public client has no secret and proves itself with PKCE", token.GrantAuthorizationCode)
		}
		if slices.Contains(grants, token.GrantClientCredentials) {
			return nil, usagef("--public cannot be combined with --grant %s, which needs a client secret", token.GrantClientCredentials)
		}
	}
	if o.permissionGroup != "" {
		if len(o.scopes) > 0 {
			return nil, usagef("--permission-group and --scope cannot be combined: the client may ask for the group's scopes")
		}
		if !slices.Contains(grants, token.GrantAuthorizationCode) || slices.Contains(grants, token.GrantClientCredentials) {
			return nil, usagef("--permission-group is only for --grant %s clients; a %s client takes --scope", token.GrantAuthorizationCode, token.GrantClientCredentials)
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
		Credential:      vault.Credential{Name: name, Scopes: scopes, Limits: limits},
		Public:          o.public,
		PermissionGroup: o.permissionGroup,
		GrantTypes:      grants,
		RedirectURIs:    o.redirectURIs,
		Audience:        audience,
		TokenTTL:        o.tokenTTL,
		Description:     o.description,
		URL:             o.url,
		PolicyURL:       o.policyURL,
		TOSURL:          o.tosURL,
	}, nil
}

func (a *app) runClientNew(name string, o clientNewOptions) error {
	c, err := o.client(name)
	if err != nil {
		return err
	}
	var secret string
	var groups groupNames
	err = a.update(func(tx *vault.Tx) error {
		if !c.Public {
			settings, err := tx.Settings()
			if err != nil {
				return err
			}
			if secret, err = apikey.Generate(settings.ClientSecretPrefix); err != nil {
				return err
			}
		}
		if err := tx.CreateClient(c, secret); err != nil {
			return err
		}
		groups, err = clientGroups(tx, c)
		return err
	})
	if err != nil {
		return lookupHint(err, "permission-group ls")
	}
	if c.Public {
		if a.json() {
			return a.writeJSON(clientView(c, groups))
		}
		fmt.Fprintf(a.io.Err, "created public client %s; it has no client_secret and proves itself with PKCE\n", c.Name)
		fmt.Fprintf(a.io.Out, "client_id:     %s\n", c.ID)
		return nil
	}
	return a.printClientSecret(c, groups, secret, fmt.Sprintf("created client %s", c.Name))
}

func (a *app) printClientSecret(c *vault.Client, groups groupNames, secret, what string) error {
	if a.json() {
		v := clientView(c, groups)
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
	groups := map[string]*vault.PermissionGroup{}
	if err := a.view(func(tx *vault.Tx) (err error) {
		if clients, err = tx.Clients(); err != nil {
			return err
		}
		gs, err := tx.PermissionGroups()
		for _, g := range gs {
			groups[g.ID] = g
		}
		return err
	}); err != nil {
		return err
	}
	names := groupNames{}
	for id, g := range groups {
		names[id] = g.Name
	}
	now := a.now()
	if a.json() {
		out := clientViews(clients, names)
		for i, c := range clients {
			out[i].LegacySecret = c.LegacySecret(now)
		}
		return a.writeJSON(out)
	}
	withStatus := slices.ContainsFunc(clients, func(c *vault.Client) bool { return c.Disabled || c.Expired(now) })
	withLegacy := slices.ContainsFunc(clients, func(c *vault.Client) bool { return c.LegacySecret(now) })
	t := newTable(a.io.Out, withColumn(withLegacy, "SECRET", withColumn(withStatus, "STATUS", "NAME", "CLIENT ID", "GRANTS", "SCOPES", "TOKEN TTL", "LAST USED", "CREATED")...)...)
	for _, c := range clients {
		scopes := strings.Join(c.Scopes, " ")
		if c.PermissionGroup != "" {
			scopes = "group " + names.name(c.PermissionGroup)
			if g := groups[c.PermissionGroup]; g != nil {
				scopes = strings.Join(g.Scopes, " ") + " (" + scopes + ")"
			}
		}
		t.row(withColumn(withLegacy, lsLegacy(&c.Credential, now), withColumn(withStatus, status(&c.Credential, now), c.Name, c.ID, strings.Join(c.GrantTypes, ","), scopes, shortDuration(c.TokenTTL), relTime(c.LastUsedAt, now, "never"), relTime(&c.CreatedAt, now, ""))...)...)
	}
	return t.flush()
}

// clientViews is clients as -o json lists them: [] rather than null for
// none.
func clientViews(clients []*vault.Client, groups groupNames) []clientJSON {
	out := make([]clientJSON, 0, len(clients))
	for _, c := range clients {
		out = append(out, clientView(c, groups))
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
	var groups groupNames
	var scopes []string
	if err := a.view(func(tx *vault.Tx) (err error) {
		if c, err = tx.Client(ref); err != nil {
			return err
		}
		if usage, err = usageSummary(tx, &c.Credential, tx.Now()); err != nil {
			return err
		}
		if groups, err = clientGroups(tx, c); err != nil {
			return err
		}
		scopes, err = tx.ClientScopes(c)
		return err
	}); err != nil {
		return lookupHint(err, "client ls")
	}
	if a.json() {
		v := clientView(c, groups)
		v.LegacySecret = c.LegacySecret(a.now())
		return a.writeJSON(v)
	}
	return a.writeClientTable(c, groups, scopes, usage)
}

// writeClientTable prints client show's table for people. scopes are the
// ones the client may ask for: its permission group's if it has one.
func (a *app) writeClientTable(c *vault.Client, groups groupNames, scopes []string, usage string) error {
	now := a.now()
	t := newTable(a.io.Out, "FIELD", "VALUE")
	t.row("name", c.Name)
	t.row("client_id", c.ID)
	if c.Public {
		t.row("type", "public (no client_secret; PKCE)")
	} else {
		t.row("type", "confidential")
	}
	t.row("grant types", strings.Join(c.GrantTypes, " "))
	t.row("redirect uris", strings.Join(c.RedirectURIs, " "))
	if c.PermissionGroup != "" {
		t.row("permission group", groups.name(c.PermissionGroup))
		t.row("scopes", strings.Join(scopes, " ")+" (from permission group "+groups.name(c.PermissionGroup)+")")
	} else {
		t.row("permission group", "")
		t.row("scopes", strings.Join(c.Scopes, " "))
	}
	t.row("audience", strings.Join(c.Audience, " "))
	t.row("token ttl", shortDuration(c.TokenTTL))
	t.row("limits", strings.Join(limitStrings(c.Limits), " "))
	t.row("usage", usage)
	t.row("expires", timeAndRel(c.ExpiresAt, now, "never"))
	t.row("status", status(&c.Credential, now))
	t.row("description", c.Description)
	t.row("url", c.URL)
	t.row("policy url", c.PolicyURL)
	t.row("tos url", c.TOSURL)
	t.row("created", timeAndRel(&c.CreatedAt, now, ""))
	t.row("last used", timeAndRel(c.LastUsedAt, now, "never"))
	if c.Public {
		t.row("secrets", "none (public client)")
	} else {
		t.row("secrets", secretsSummary(c.Secrets, now))
	}
	if c.LegacySecret(now) {
		t.row("legacy", legacyMark)
	}
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
	var groups groupNames
	if err := a.update(func(tx *vault.Tx) (err error) {
		if c, err = tx.RenameClient(oldName, newName); err != nil {
			return err
		}
		groups, err = clientGroups(tx, c)
		return err
	}); err != nil {
		return notFoundHint(err, "client ls")
	}
	if a.json() {
		return a.writeJSON(clientView(c, groups))
	}
	fmt.Fprintf(a.io.Out, "renamed client %s to %s (%s)\n", oldName, c.Name, c.ID)
	return nil
}

func newClientRmCmd(a *app) *cobra.Command {
	return a.destructive(&cobra.Command{
		Use:     "rm ID|NAME...",
		Aliases: []string{"remove", "delete"},
		Short:   "Delete OAuth clients; if one is missing, none is deleted",
		Long: `Delete OAuth clients. Their tokens become inactive at /introspect and in
keymint token verify. The grants users gave them go too, with the refresh
tokens issued under those. If one of the clients is missing, none is
deleted.`,
		Args:              requireArgs(1, "ID or NAME of the client(s) to delete"),
		ValidArgsFunction: a.completeNames(vault.KindClient),
		RunE: func(_ *cobra.Command, args []string) error {
			return a.runClientRm(args)
		},
	}, nil, deleteQuestion("client"))
}

func (a *app) runClientRm(refs []string) error {
	var removed []*vault.Client
	var groups groupNames
	if err := a.update(func(tx *vault.Tx) (err error) {
		if removed, err = tx.DeleteClients(refs...); err != nil {
			return err
		}
		groups, err = clientGroups(tx, removed...)
		return err
	}); err != nil {
		return notFoundHint(err, "client ls")
	}
	if a.json() {
		return a.writeJSON(clientViews(removed, groups))
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
either: give it a new expiry first (keymint client update --expires),
create a new client instead, or remove it. A disabled client may be
rotated, and stays disabled.

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
	// With no grace the secret in use stops working at once.
	return a.destructive(cmd, func() bool { return o.grace == 0 }, func(args []string) string {
		return fmt.Sprintf("Rotate client %s with no grace, so that its current secret stops working at once?", args[0])
	})
}

func (a *app) runClientRotate(ref string, o clientRotateOptions) error {
	if o.grace < 0 {
		return usagef("--grace must not be negative")
	}
	var c *vault.Client
	var secret string
	var groups groupNames
	err := a.update(func(tx *vault.Tx) error {
		settings, err := tx.Settings()
		if err != nil {
			return err
		}
		if secret, err = apikey.Generate(settings.ClientSecretPrefix); err != nil {
			return err
		}
		if c, err = tx.RotateClient(ref, secret, o.grace); err != nil {
			return err
		}
		groups, err = clientGroups(tx, c)
		return err
	})
	if err != nil {
		return notFoundHint(a.expiredHint(err), "client ls")
	}
	return a.printClientSecret(c, groups, secret, fmt.Sprintf("rotated the secret of client %s; %s", c.Name, oldSecretFor(o.grace)))
}
