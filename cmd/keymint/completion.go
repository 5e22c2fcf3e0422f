package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/keymint/keymint/vault"
)

func newCompletionCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "completion bash|zsh|fish|powershell",
		Short: "Print a shell completion script",
		Long: `Print a completion script for your shell. Names of keys, clients,
users and permission groups, and grant ids, are completed too when the
vault unlocks without a prompt (an identity file or KEYMINT_IDENTITY).`,
		Example: `  source <(keymint completion bash)
  keymint completion zsh > "${fpath[1]}/_keymint"
  keymint completion fish > ~/.config/fish/completions/keymint.fish`,
		Args:      exactArgs(1, "one of bash, zsh, fish, powershell"),
		ValidArgs: []string{"bash", "zsh", "fish", "powershell"},
		// Generating a script must not need a config or a vault.
		PersistentPreRunE: func(*cobra.Command, []string) error { return nil },
		RunE: func(cmd *cobra.Command, args []string) error {
			root := cmd.Root()
			switch args[0] {
			case "bash":
				return root.GenBashCompletionV2(a.io.Out, true)
			case "zsh":
				return root.GenZshCompletion(a.io.Out)
			case "fish":
				return root.GenFishCompletion(a.io.Out, true)
			case "powershell":
				return root.GenPowerShellCompletionWithDesc(a.io.Out)
			}
			return usagef("unknown shell %q: use bash, zsh, fish or powershell", args[0])
		},
	}
}

// completeNames completes the names of keys or clients, or both (in one
// unlock of the vault), but only when the vault unlocks without a prompt:
// completion must never block on input.
func (a *app) completeNames(kinds ...vault.Kind) cobra.CompletionFunc {
	return a.completeFrom(func(tx *vault.Tx) ([]string, error) {
		var names []string
		for _, kind := range kinds {
			switch kind {
			case vault.KindClient:
				cs, err := tx.Clients()
				if err != nil {
					return nil, err
				}
				for _, c := range cs {
					names = append(names, fmt.Sprintf("%s\t%s", c.Name, c.ID))
				}
			default:
				ks, err := tx.Keys()
				if err != nil {
					return nil, err
				}
				for _, k := range ks {
					names = append(names, fmt.Sprintf("%s\t%s", k.Name, k.ID))
				}
			}
		}
		return names, nil
	})
}

// completeUsers completes the names of users, as completeNames does keys.
func (a *app) completeUsers() cobra.CompletionFunc {
	return a.completeFrom(func(tx *vault.Tx) ([]string, error) {
		us, err := tx.Users()
		if err != nil {
			return nil, err
		}
		names := make([]string, 0, len(us))
		for _, u := range us {
			names = append(names, fmt.Sprintf("%s\t%s", u.Name, u.ID))
		}
		return names, nil
	})
}

// completeGroups completes the names of permission groups.
func (a *app) completeGroups() cobra.CompletionFunc {
	return a.completeFrom(func(tx *vault.Tx) ([]string, error) {
		gs, err := tx.PermissionGroups()
		if err != nil {
			return nil, err
		}
		names := make([]string, 0, len(gs))
		for _, g := range gs {
			names = append(names, fmt.Sprintf("%s\t%s", g.Name, strings.Join(g.Scopes, " ")))
		}
		return names, nil
	})
}

// completeGrants completes the ids of grants, described by their user and
// client.
func (a *app) completeGrants() cobra.CompletionFunc {
	return a.completeFrom(func(tx *vault.Tx) ([]string, error) {
		gs, err := tx.Grants(vault.GrantFilter{})
		if err != nil {
			return nil, err
		}
		views, err := newGrantNamer(tx).views(gs)
		if err != nil {
			return nil, err
		}
		ids := make([]string, 0, len(views))
		for _, g := range views {
			ids = append(ids, fmt.Sprintf("%s\tuser %s, client %s", g.ID, g.User, g.Client))
		}
		return ids, nil
	})
}

// completeFrom completes with what list gives ("value\tdescription"), read
// in one view of the vault, but only when the vault unlocks without a
// prompt: completion must never block on input. It completes nothing when
// the vault cannot be read.
func (a *app) completeFrom(list func(*vault.Tx) ([]string, error)) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if err := a.loadConfig(cmd); err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		a.io.inTTY = false // never prompt from inside a completion
		var names []string
		_ = a.view(func(tx *vault.Tx) (err error) {
			names, err = list(tx)
			return err
		})
		var out []cobra.Completion
		for _, n := range names {
			if strings.HasPrefix(n, toComplete) {
				out = append(out, n)
			}
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}
