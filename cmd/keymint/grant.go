package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/keymint/keymint/vault"
)

func newGrantCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "grant",
		Short: "List and revoke the authorizations users gave to clients",
		Long: `A grant is a user's authorization of a client: the scopes the user agreed,
on keymint serve's consent page, to let the client have. There is at most
one per user and client; a later consent adds scopes to it. Grants are made
only by users signing in; keymint grant lists and revokes them.`,
	}
	cmd.AddCommand(newGrantLsCmd(a), newGrantRevokeCmd(a))
	return cmd
}

// grantJSON is a grant as -o json shows it, with the names of its user and
// client beside their ids.
type grantJSON struct {
	ID         string     `json:"id"`
	UserID     string     `json:"user_id"`
	User       string     `json:"user"`
	ClientID   string     `json:"client_id"`
	Client     string     `json:"client"`
	Scopes     []string   `json:"scopes"`
	CreatedAt  time.Time  `json:"created_at"`
	UpdatedAt  time.Time  `json:"updated_at"`
	LastUsedAt *time.Time `json:"last_used_at"`
}

// grantNamer finds the names of the users and clients of grants, once
// each.
type grantNamer struct {
	tx      *vault.Tx
	users   map[string]string
	clients map[string]string
}

func newGrantNamer(tx *vault.Tx) *grantNamer {
	return &grantNamer{tx: tx, users: map[string]string{}, clients: map[string]string{}}
}

func (n *grantNamer) view(g *vault.Grant) (grantJSON, error) {
	user, ok := n.users[g.UserID]
	if !ok {
		u, err := n.tx.User(g.UserID)
		if err != nil {
			return grantJSON{}, err
		}
		user = u.Name
		n.users[g.UserID] = user
	}
	client, ok := n.clients[g.ClientID]
	if !ok {
		c, err := n.tx.Client(g.ClientID)
		if err != nil {
			return grantJSON{}, err
		}
		client = c.Name
		n.clients[g.ClientID] = client
	}
	return grantJSON{
		ID:         g.ID,
		UserID:     g.UserID,
		User:       user,
		ClientID:   g.ClientID,
		Client:     client,
		Scopes:     nonNil(g.Scopes),
		CreatedAt:  g.CreatedAt.UTC().Truncate(time.Second),
		UpdatedAt:  g.UpdatedAt.UTC().Truncate(time.Second),
		LastUsedAt: utcPtr(g.LastUsedAt),
	}, nil
}

func (n *grantNamer) views(grants []*vault.Grant) ([]grantJSON, error) {
	out := make([]grantJSON, 0, len(grants))
	for _, g := range grants {
		v, err := n.view(g)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

type grantLsOptions struct {
	client string
	user   string
}

func newGrantLsCmd(a *app) *cobra.Command {
	var o grantLsOptions
	cmd := &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List grants: which user authorized which client, for which scopes, and their last access",
		Long: `List grants, oldest first: the user, the client, the scopes the user agreed
to, when the grant was first given, and its last access (the last time
the client used it to get tokens). --client and --user narrow the list;
both together show at most one grant.`,
		Example: `  keymint grant ls
  keymint grant ls --user alice
  keymint grant ls --client webapp -o json`,
		Args: noArgs,
		RunE: func(*cobra.Command, []string) error {
			return a.runGrantLs(o)
		},
	}
	cmd.Flags().StringVar(&o.client, "client", "", "only the grants of this client (ID or NAME)")
	cmd.Flags().StringVar(&o.user, "user", "", "only the grants of this user (ID or NAME)")
	_ = cmd.RegisterFlagCompletionFunc("client", a.completeNames(vault.KindClient))
	_ = cmd.RegisterFlagCompletionFunc("user", a.completeUsers())
	return cmd
}

func (a *app) runGrantLs(o grantLsOptions) error {
	var views []grantJSON
	if err := a.view(func(tx *vault.Tx) error {
		var f vault.GrantFilter
		if o.client != "" {
			c, err := tx.Client(o.client)
			if err != nil {
				return lookupHint(err, "client ls")
			}
			f.ClientID = c.ID
		}
		if o.user != "" {
			u, err := tx.User(o.user)
			if err != nil {
				return lookupHint(err, "user ls")
			}
			f.UserID = u.ID
		}
		grants, err := tx.Grants(f)
		if err != nil {
			return err
		}
		views, err = newGrantNamer(tx).views(grants)
		return err
	}); err != nil {
		return err
	}
	if a.json() {
		return a.writeJSON(views)
	}
	now := a.now()
	t := newTable(a.io.Out, "ID", "USER", "CLIENT", "SCOPES", "GRANTED", "LAST ACCESS")
	for _, g := range views {
		t.row(g.ID, g.User, g.Client, strings.Join(g.Scopes, " "), relTime(&g.CreatedAt, now, ""), relTime(g.LastUsedAt, now, "never"))
	}
	return t.flush()
}

func newGrantRevokeCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "revoke ID...",
		Short: "Revoke grants: their refresh tokens stop working at once",
		Long: `Revoke grants by their ID (grt_..., as keymint grant ls shows them). The
refresh tokens issued under a grant stop working at once, and its
authorization codes are refused; its access tokens become inactive at
/introspect and in keymint token verify. The user is asked for consent
again the next time the client sends them to sign in. If one of the grants
is missing, none is revoked.`,
		Example:           `  keymint grant revoke grt_4mPq8VhB0xw1cYt7Lr2NsA`,
		Args:              requireArgs(1, "ID of the grant(s) to revoke (see keymint grant ls)"),
		ValidArgsFunction: a.completeGrants(),
		RunE: func(_ *cobra.Command, args []string) error {
			return a.runGrantRevoke(args)
		},
	}
}

func (a *app) runGrantRevoke(ids []string) error {
	var revoked []grantJSON
	if err := a.update(func(tx *vault.Tx) error {
		namer := newGrantNamer(tx)
		seen := map[string]bool{}
		for _, id := range ids {
			if seen[id] {
				continue
			}
			seen[id] = true
			g, err := tx.Grant(id)
			if err != nil {
				return err
			}
			v, err := namer.view(g)
			if err != nil {
				return err
			}
			if err := tx.RevokeGrant(g.ID); err != nil {
				return err
			}
			revoked = append(revoked, v)
		}
		return nil
	}); err != nil {
		return notFoundHint(err, "grant ls")
	}
	if a.json() {
		return a.writeJSON(revoked)
	}
	for _, g := range revoked {
		fmt.Fprintf(a.io.Out, "revoked grant %s of user %s to client %s\n", g.ID, g.User, g.Client)
	}
	return nil
}
