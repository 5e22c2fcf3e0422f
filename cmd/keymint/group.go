package main

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/keymint/keymint/vault"
)

func newPermissionGroupCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "permission-group",
		Short: "Manage permission groups: named sets of scopes clients may ask for",
		Long: `Manage permission groups. A permission group is a named set of scopes; an
authorization_code client made with --permission-group NAME may ask for
the group's scopes instead of scopes of its own, so that clients of one
kind share one list.`,
	}
	cmd.AddCommand(newGroupNewCmd(a), newGroupLsCmd(a), newGroupRmCmd(a))
	return cmd
}

// groupJSON is a permission group as -o json shows it. Clients are the
// names of the clients that use it.
type groupJSON struct {
	ID          string    `json:"id"`
	Name        string    `json:"name"`
	Scopes      []string  `json:"scopes"`
	Description string    `json:"description,omitempty"`
	Clients     []string  `json:"clients"`
	CreatedAt   time.Time `json:"created_at"`
}

func groupView(g *vault.PermissionGroup, clients []string) groupJSON {
	return groupJSON{
		ID:          g.ID,
		Name:        g.Name,
		Scopes:      nonNil(g.Scopes),
		Description: g.Description,
		Clients:     nonNil(clients),
		CreatedAt:   g.CreatedAt.UTC().Truncate(time.Second),
	}
}

type groupNewOptions struct {
	scopes      []string
	description string
}

func newGroupNewCmd(a *app) *cobra.Command {
	var o groupNewOptions
	cmd := &cobra.Command{
		Use:   "new NAME",
		Short: "Create a permission group",
		Long: `Create a permission group named NAME with the scopes given by --scope (at
least one). Clients then name it with keymint client new --permission-group.`,
		Example: `  keymint permission-group new staff --scope "openid profile invoices:read" --description "Office staff"`,
		Args:    exactArgs(1, "one NAME"),
		RunE: func(_ *cobra.Command, args []string) error {
			return a.runGroupNew(args[0], o)
		},
	}
	cmd.Flags().StringArrayVar(&o.scopes, "scope", nil, "scope the group's clients may ask for (repeatable; space- or comma-separated)")
	cmd.Flags().StringVar(&o.description, "description", "", "what the group is for")
	return cmd
}

func (a *app) runGroupNew(name string, o groupNewOptions) error {
	if err := vault.ValidateName(name); err != nil {
		return usageError{err}
	}
	scopes, err := parseScopes(o.scopes)
	if err != nil {
		return err
	}
	if len(scopes) == 0 {
		return usagef("a permission group needs at least one --scope")
	}
	if err := checkNotSecret("--description", o.description); err != nil {
		return err
	}
	g := &vault.PermissionGroup{Name: name, Scopes: scopes, Description: o.description}
	if err := a.update(func(tx *vault.Tx) error { return tx.CreatePermissionGroup(g) }); err != nil {
		return err
	}
	if a.json() {
		return a.writeJSON(groupView(g, nil))
	}
	fmt.Fprintf(a.io.Out, "created permission group %s (%s): %s\n", g.Name, g.ID, strings.Join(g.Scopes, " "))
	return nil
}

func newGroupLsCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List permission groups and the clients that use them",
		Args:    noArgs,
		RunE: func(*cobra.Command, []string) error {
			return a.runGroupLs()
		},
	}
}

func (a *app) runGroupLs() error {
	var groups []*vault.PermissionGroup
	clients := map[string][]string{}
	if err := a.view(func(tx *vault.Tx) error {
		var err error
		if groups, err = tx.PermissionGroups(); err != nil {
			return err
		}
		return tx.EachClient(func(c *vault.Client) error {
			if c.PermissionGroup != "" {
				clients[c.PermissionGroup] = append(clients[c.PermissionGroup], c.Name)
			}
			return nil
		})
	}); err != nil {
		return err
	}
	if a.json() {
		out := make([]groupJSON, 0, len(groups))
		for _, g := range groups {
			out = append(out, groupView(g, sortedCopy(clients[g.ID])))
		}
		return a.writeJSON(out)
	}
	now := a.now()
	t := newTable(a.io.Out, "NAME", "ID", "SCOPES", "CLIENTS", "CREATED", "DESCRIPTION")
	for _, g := range groups {
		t.row(g.Name, g.ID, strings.Join(g.Scopes, " "), strings.Join(sortedCopy(clients[g.ID]), ","), relTime(&g.CreatedAt, now, ""), g.Description)
	}
	return t.flush()
}

func newGroupRmCmd(a *app) *cobra.Command {
	return a.destructive(&cobra.Command{
		Use:     "rm ID|NAME...",
		Aliases: []string{"remove", "delete"},
		Short:   "Delete permission groups no client uses; if one is missing or in use, none is deleted",
		Long: `Delete permission groups. A group that a client still uses is not removed,
and the message names those clients: remove them first (keymint client rm).
If one of the groups is missing or in use, none is deleted.`,
		Args:              requireArgs(1, "ID or NAME of the permission group(s) to delete"),
		ValidArgsFunction: a.completeGroups(),
		RunE: func(_ *cobra.Command, args []string) error {
			return a.runGroupRm(args)
		},
	}, nil, deleteQuestion("permission group"))
}

func (a *app) runGroupRm(refs []string) error {
	var removed []*vault.PermissionGroup
	if err := a.update(func(tx *vault.Tx) (err error) {
		removed, err = tx.DeletePermissionGroups(refs...)
		return err
	}); err != nil {
		var inUse *vault.GroupInUseError
		if errors.As(err, &inUse) {
			return fmt.Errorf("permission group %s is used by %s %s; nothing was deleted: remove %s first (keymint client rm %s)",
				inUse.Name, pluralWord(len(inUse.Clients), "client"), strings.Join(inUse.Clients, ", "),
				pluralWord(len(inUse.Clients), "that client", "those clients"), strings.Join(inUse.Clients, " "))
		}
		return notFoundHint(err, "permission-group ls")
	}
	if a.json() {
		out := make([]groupJSON, 0, len(removed))
		for _, g := range removed {
			out = append(out, groupView(g, nil))
		}
		return a.writeJSON(out)
	}
	for _, g := range removed {
		fmt.Fprintf(a.io.Out, "deleted permission group %s (%s)\n", g.Name, g.ID)
	}
	return nil
}

// pluralWord is word for one, and words[0], or word+"s", for more.
func pluralWord(n int, word string, words ...string) string {
	if n == 1 {
		return word
	}
	if len(words) > 0 {
		return words[0]
	}
	return word + "s"
}

// sortedCopy returns s sorted, leaving s as it was.
func sortedCopy(s []string) []string {
	out := append([]string(nil), s...)
	slices.Sort(out)
	return out
}
