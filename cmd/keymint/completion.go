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
		Long: `Print a completion script for your shell. Names of keys and clients are
completed too when the vault unlocks without a prompt (an identity file or
KEYMINT_IDENTITY).`,
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
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if err := a.loadConfig(cmd); err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		a.io.inTTY = false // never prompt from inside a completion
		var names []string
		_ = a.view(func(tx *vault.Tx) error {
			for _, kind := range kinds {
				switch kind {
				case vault.KindClient:
					cs, err := tx.Clients()
					if err != nil {
						return err
					}
					for _, c := range cs {
						names = append(names, fmt.Sprintf("%s\t%s", c.Name, c.ID))
					}
				default:
					ks, err := tx.Keys()
					if err != nil {
						return err
					}
					for _, k := range ks {
						names = append(names, fmt.Sprintf("%s\t%s", k.Name, k.ID))
					}
				}
			}
			return nil
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
