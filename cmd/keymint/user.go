package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/mail"
	"os"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/keymint/keymint/apikey"
	"github.com/keymint/keymint/password"
	"github.com/keymint/keymint/vault"
)

func newUserCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "user",
		Short: "Manage the people who sign in at /authorize",
		Long: `Manage the people who sign in at keymint serve's /authorize page to let a
client act for them (the authorization-code flow). A user's password is
hashed with argon2id; the vault keeps only the hash, and no command shows
it. Passwords are never taken as arguments: they are typed at a no-echo
prompt, or read from stdin or --password-file.`,
	}
	cmd.AddCommand(newUserAddCmd(a), newUserLsCmd(a), newUserShowCmd(a), newUserRmCmd(a), newUserPasswdCmd(a),
		newUserDisableCmd(a, true), newUserDisableCmd(a, false))
	return cmd
}

// userJSON is a user as -o json shows it: never the password hash. Grants
// is how many clients the user has authorized (see keymint grant ls).
type userJSON struct {
	ID                string    `json:"id"`
	Name              string    `json:"name"`
	Email             string    `json:"email"`
	DisplayName       string    `json:"display_name"`
	Disabled          bool      `json:"disabled"`
	Grants            int       `json:"grants"`
	CreatedAt         time.Time `json:"created_at"`
	PasswordChangedAt time.Time `json:"password_changed_at"`
}

func userView(u *vault.User, grants int) userJSON {
	return userJSON{
		ID:                u.ID,
		Name:              u.Name,
		Email:             u.Email,
		DisplayName:       u.DisplayName,
		Disabled:          u.Disabled,
		Grants:            grants,
		CreatedAt:         u.CreatedAt.UTC().Truncate(time.Second),
		PasswordChangedAt: u.PasswordChangedAt.UTC().Truncate(time.Second),
	}
}

// userStatus is a user's state for people.
func userStatus(u *vault.User) string {
	if u.Disabled {
		return "disabled"
	}
	return "active"
}

// passwordOptions are the flags that say where a new password comes from.
// There is deliberately no --password: refused is a hidden flag that
// catches it, so that a password typed as an argument (visible in ps and
// shell history) gets a message that says what to use instead.
type passwordOptions struct {
	file    string
	refused refusedFlag
}

func (o *passwordOptions) addFlags(f *pflag.FlagSet) {
	f.StringVar(&o.file, "password-file", "", "read the password from the first line of FILE (- for stdin)")
	f.Var(&o.refused, "password", "refused: passwords are never taken as arguments")
	f.Lookup("password").NoOptDefVal = " "
	_ = f.MarkHidden("password")
}

// check refuses --password, before anything else looks at the arguments.
func (o *passwordOptions) check() error {
	if o.refused.set {
		return usagef("there is no --password flag: a password on the command line shows in ps and shell history; type it at the prompt, or give it on stdin or with --password-file FILE")
	}
	return nil
}

// refusedFlag is a flag that takes any value, or none, keeps nothing, and
// records only that it was given.
type refusedFlag struct{ set bool }

func (f *refusedFlag) Set(string) error { f.set = true; return nil }
func (f *refusedFlag) String() string   { return "" }
func (f *refusedFlag) Type() string     { return "string" }

// passwordArgs checks --password first, then the arguments with next.
func passwordArgs(o *passwordOptions, next cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := o.check(); err != nil {
			return err
		}
		return next(cmd, args)
	}
}

const passwordSourcesHelp = `The password is typed twice at a no-echo prompt when stdin is a terminal;
otherwise it is the first line of stdin, or of --password-file FILE (which
wins over the prompt; "-" is stdin). It must be 8 characters or more. There
is no --password flag: a password on the command line would show in ps and
in shell history.`

// newPassword reads a user's new password from --password-file, the
// terminal (asked twice) or stdin, and checks it with password.Check.
func (a *app) newPassword(userName, file string) (string, error) {
	var pw string
	var err error
	switch {
	case file != "" && file != "-":
		pw, err = readPasswordFile(file)
	case a.io.canPrompt():
		return a.promptPassword(userName)
	default:
		pw, err = a.io.readLine()
		if err == nil && pw == "" {
			err = errors.New("no password: give it on the first line of stdin or with --password-file FILE, or run in a terminal to type it")
		}
	}
	if err != nil {
		return "", err
	}
	if err := password.Check(pw); err != nil {
		return "", err
	}
	return pw, nil
}

// promptPassword asks for a new password twice, with echo off.
func (a *app) promptPassword(userName string) (string, error) {
	pw, err := a.io.readSecret(fmt.Sprintf("New password for %s: ", userName))
	if err != nil {
		return "", err
	}
	if err := password.Check(pw); err != nil {
		return "", err
	}
	again, err := a.io.readSecret("Repeat password: ")
	if err != nil {
		return "", err
	}
	if again != pw {
		return "", errors.New("the passwords do not match; nothing was changed, run the command again")
	}
	return pw, nil
}

// readPasswordFile returns the first line of path, without its line ending.
func readPasswordFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("password file: %w", err)
	}
	defer f.Close()
	line, err := bufio.NewReader(io.LimitReader(f, 64<<10)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("password file %s: %w", path, err)
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", fmt.Errorf("password file %s: first line is empty", path)
	}
	return line, nil
}

// hashPassword hashes a checked password for the vault.
func hashPassword(pw string) (string, error) {
	h, err := password.Hash(pw, password.Default)
	if err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	return h, nil
}

// checkEmail accepts a bare address such as alice@example.com, or "".
func checkEmail(s string) error {
	if s == "" {
		return nil
	}
	addr, err := mail.ParseAddress(s)
	if err != nil || addr.Name != "" || addr.Address != s || len(s) > 254 {
		return usagef("invalid --email %q: give an address such as alice@example.com", s)
	}
	return checkNotSecret("--email", s)
}

// checkDisplayName accepts up to 200 printable characters, or "".
func checkDisplayName(s string) error {
	if !utf8.ValidString(s) || utf8.RuneCountInString(s) > 200 || strings.IndexFunc(s, unicode.IsControl) >= 0 {
		return usagef("invalid --name: use up to 200 printable characters")
	}
	return checkNotSecret("--name", s)
}

// checkNotSecret refuses a value shaped like a keymint secret or a JWT: it
// would be stored and shown as the record's data.
func checkNotSecret(flag, s string) error {
	if len(apikey.FindSecrets(s)) > 0 {
		return usagef("invalid %s %q: it looks like a secret or a token", flag, apikey.Mask(s))
	}
	return nil
}

type userAddOptions struct {
	email       string
	displayName string
	password    passwordOptions
}

func newUserAddCmd(a *app) *cobra.Command {
	var o userAddOptions
	cmd := &cobra.Command{
		Use:   "add NAME",
		Short: "Add a user who can sign in at /authorize",
		Long: `Add a user who signs in at /authorize with NAME and a password. The
user's id (usr_...) is the sub of the tokens issued to them; it never
changes.

` + passwordSourcesHelp,
		Example: `  keymint user add alice --email alice@example.com --name "Alice Smith"   # prompts twice
  keymint user add bob --password-file bob.pass
  printf '%s\n' "$PASSWORD" | keymint user add carol`,
		Args: passwordArgs(&o.password, exactArgs(1, "one NAME")),
		RunE: func(_ *cobra.Command, args []string) error {
			return a.runUserAdd(args[0], o)
		},
	}
	cmd.Flags().StringVar(&o.email, "email", "", "the user's email address")
	cmd.Flags().StringVar(&o.displayName, "name", "", `the user's display name, such as "Alice Smith"`)
	o.password.addFlags(cmd.Flags())
	return cmd
}

func (a *app) runUserAdd(name string, o userAddOptions) error {
	if err := vault.ValidateName(name); err != nil {
		return usageError{err}
	}
	if err := checkEmail(o.email); err != nil {
		return err
	}
	if err := checkDisplayName(o.displayName); err != nil {
		return err
	}
	v, err := a.openVault()
	if err != nil {
		return err
	}
	// Say the name is taken before asking for a password.
	if err := v.View(func(tx *vault.Tx) error {
		_, err := tx.User(name)
		if err == nil {
			return fmt.Errorf("user %q: %w; pick another name or remove the existing user", name, vault.ErrNameTaken)
		}
		if errors.Is(err, vault.ErrNotFound) {
			return nil
		}
		return err
	}); err != nil {
		return err
	}
	pw, err := a.newPassword(name, o.password.file)
	if err != nil {
		return err
	}
	hash, err := hashPassword(pw)
	if err != nil {
		return err
	}
	u := &vault.User{Name: name, Email: o.email, DisplayName: o.displayName, PasswordHash: hash}
	if err := v.Update(func(tx *vault.Tx) error { return tx.CreateUser(u) }); err != nil {
		return err
	}
	if a.json() {
		return a.writeJSON(userView(u, 0))
	}
	fmt.Fprintf(a.io.Out, "created user %s (%s)\n", u.Name, u.ID)
	return nil
}

func newUserLsCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List users (never their passwords)",
		Args:    noArgs,
		RunE: func(*cobra.Command, []string) error {
			return a.runUserLs()
		},
	}
}

func (a *app) runUserLs() error {
	var users []*vault.User
	grants := map[string]int{}
	if err := a.view(func(tx *vault.Tx) error {
		var err error
		if users, err = tx.Users(); err != nil {
			return err
		}
		gs, err := tx.Grants(vault.GrantFilter{})
		if err != nil {
			return err
		}
		for _, g := range gs {
			grants[g.UserID]++
		}
		return nil
	}); err != nil {
		return err
	}
	if a.json() {
		out := make([]userJSON, 0, len(users))
		for _, u := range users {
			out = append(out, userView(u, grants[u.ID]))
		}
		return a.writeJSON(out)
	}
	now := a.now()
	t := newTable(a.io.Out, "NAME", "ID", "EMAIL", "DISPLAY NAME", "GRANTS", "STATUS", "CREATED")
	for _, u := range users {
		t.row(u.Name, u.ID, u.Email, u.DisplayName, fmt.Sprint(grants[u.ID]), userStatus(u), relTime(&u.CreatedAt, now, ""))
	}
	return t.flush()
}

func newUserShowCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:               "show ID|NAME",
		Short:             "Show one user (never their password)",
		Args:              exactArgs(1, "one user ID or NAME"),
		ValidArgsFunction: a.completeUsers(),
		RunE: func(_ *cobra.Command, args []string) error {
			return a.runUserShow(args[0])
		},
	}
}

// userGrants returns how many grants the user with this id has.
func userGrants(tx *vault.Tx, id string) (int, error) {
	gs, err := tx.Grants(vault.GrantFilter{UserID: id})
	return len(gs), err
}

func (a *app) runUserShow(ref string) error {
	var u *vault.User
	var grants int
	if err := a.view(func(tx *vault.Tx) (err error) {
		if u, err = tx.User(ref); err != nil {
			return err
		}
		grants, err = userGrants(tx, u.ID)
		return err
	}); err != nil {
		return lookupHint(err, "user ls")
	}
	if a.json() {
		return a.writeJSON(userView(u, grants))
	}
	now := a.now()
	t := newTable(a.io.Out, "FIELD", "VALUE")
	t.row("name", u.Name)
	t.row("id", u.ID)
	t.row("email", u.Email)
	t.row("display name", u.DisplayName)
	t.row("status", userStatus(u))
	t.row("created", timeAndRel(&u.CreatedAt, now, ""))
	t.row("password changed", timeAndRel(&u.PasswordChangedAt, now, ""))
	t.row("grants", fmt.Sprintf("%d (see keymint grant ls --user %s)", grants, u.Name))
	return t.flush()
}

func newUserRmCmd(a *app) *cobra.Command {
	return a.destructive(&cobra.Command{
		Use:     "rm ID|NAME...",
		Aliases: []string{"remove", "delete"},
		Short:   "Delete users, with their grants and refresh tokens; if one is missing, none is deleted",
		Long: `Delete users. Everything they allowed goes with them: their grants (see
keymint grant ls) and the refresh tokens issued under those, which stop
working at once; their access tokens become inactive at /introspect and in
keymint token verify. If one of the users is missing, none is deleted.`,
		Args:              requireArgs(1, "ID or NAME of the user(s) to delete"),
		ValidArgsFunction: a.completeUsers(),
		RunE: func(_ *cobra.Command, args []string) error {
			return a.runUserRm(args)
		},
	}, nil, deleteQuestion("user"))
}

func (a *app) runUserRm(refs []string) error {
	var removed []*vault.User
	grants := map[string]int{}
	if err := a.update(func(tx *vault.Tx) (err error) {
		// Count the grants first: removing the users removes them.
		for _, ref := range refs {
			u, err := tx.User(ref)
			if err != nil {
				return err
			}
			if grants[u.ID], err = userGrants(tx, u.ID); err != nil {
				return err
			}
		}
		removed, err = tx.DeleteUsers(refs...)
		return err
	}); err != nil {
		return notFoundHint(err, "user ls")
	}
	if a.json() {
		out := make([]userJSON, 0, len(removed))
		for _, u := range removed {
			out = append(out, userView(u, grants[u.ID]))
		}
		return a.writeJSON(out)
	}
	for _, u := range removed {
		if n := grants[u.ID]; n > 0 {
			fmt.Fprintf(a.io.Out, "deleted user %s (%s) and their %s\n", u.Name, u.ID, plural(n, "grant"))
		} else {
			fmt.Fprintf(a.io.Out, "deleted user %s (%s)\n", u.Name, u.ID)
		}
	}
	return nil
}

type userPasswdOptions struct {
	password passwordOptions
}

func newUserPasswdCmd(a *app) *cobra.Command {
	var o userPasswdOptions
	cmd := &cobra.Command{
		Use:   "passwd ID|NAME",
		Short: "Set a user's password",
		Long: `Set a new password for a user.

` + passwordSourcesHelp + `

The user's grants and the refresh tokens issued under them keep working;
to sign the user out of every client, revoke their grants too (keymint
grant ls --user NAME, then keymint grant revoke ID).`,
		Example: `  keymint user passwd alice                       # prompts twice
  keymint user passwd alice --password-file new.pass`,
		Args:              passwordArgs(&o.password, exactArgs(1, "one user ID or NAME")),
		ValidArgsFunction: a.completeUsers(),
		RunE: func(_ *cobra.Command, args []string) error {
			return a.runUserPasswd(args[0], o)
		},
	}
	o.password.addFlags(cmd.Flags())
	return cmd
}

func (a *app) runUserPasswd(ref string, o userPasswdOptions) error {
	v, err := a.openVault()
	if err != nil {
		return err
	}
	// Find the user before asking for a password.
	var u *vault.User
	if err := v.View(func(tx *vault.Tx) (err error) {
		u, err = tx.User(ref)
		return err
	}); err != nil {
		return lookupHint(err, "user ls")
	}
	pw, err := a.newPassword(u.Name, o.password.file)
	if err != nil {
		return err
	}
	hash, err := hashPassword(pw)
	if err != nil {
		return err
	}
	var grants int
	if err := v.Update(func(tx *vault.Tx) error {
		// By id: the user read above, unless removed since.
		cur, err := tx.User(u.ID)
		if err != nil {
			return err
		}
		cur.PasswordHash = hash
		if err := tx.SaveUser(cur); err != nil {
			return err
		}
		u = cur
		grants, err = userGrants(tx, u.ID)
		return err
	}); err != nil {
		return notFoundHint(err, "user ls")
	}
	if a.json() {
		return a.writeJSON(userView(u, grants))
	}
	fmt.Fprintf(a.io.Out, "changed the password of user %s (%s)\n", u.Name, u.ID)
	return nil
}

// newUserDisableCmd is user disable, or user enable.
func newUserDisableCmd(a *app, disable bool) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "disable ID|NAME...",
		Short: "Stop users signing in; what was issued to them stops working while they stay disabled",
		Long: `Disable users: they cannot sign in at /authorize, their authorization codes
and refresh tokens are refused, and their access tokens are inactive at
/introspect and in keymint token verify, for as long as they stay
disabled. Their grants are kept, so keymint user enable makes all of that
work again; to end it for good, revoke the grants (keymint grant revoke)
or remove the user. If one of the users is missing, none is changed.`,
		Args:              requireArgs(1, "ID or NAME of the user(s)"),
		ValidArgsFunction: a.completeUsers(),
		RunE: func(_ *cobra.Command, args []string) error {
			return a.runUserDisable(args, disable)
		},
	}
	if !disable {
		cmd.Use = "enable ID|NAME..."
		cmd.Short = "Let disabled users sign in again"
		cmd.Long = `Enable users that keymint user disable stopped: they can sign in again, and
the refresh and access tokens issued under the grants they still have work
again. If one of the users is missing, none is changed.`
	}
	return cmd
}

func (a *app) runUserDisable(refs []string, disable bool) error {
	var changed []*vault.User
	grants := map[string]int{}
	if err := a.update(func(tx *vault.Tx) error {
		seen := map[string]bool{}
		for _, ref := range refs {
			u, err := tx.User(ref)
			if err != nil {
				return err
			}
			if seen[u.ID] {
				continue
			}
			seen[u.ID] = true
			u.Disabled = disable
			if err := tx.SaveUser(u); err != nil {
				return err
			}
			if grants[u.ID], err = userGrants(tx, u.ID); err != nil {
				return err
			}
			changed = append(changed, u)
		}
		return nil
	}); err != nil {
		return notFoundHint(err, "user ls")
	}
	if a.json() {
		out := make([]userJSON, 0, len(changed))
		for _, u := range changed {
			out = append(out, userView(u, grants[u.ID]))
		}
		return a.writeJSON(out)
	}
	verb := "enabled"
	if disable {
		verb = "disabled"
	}
	for _, u := range changed {
		fmt.Fprintf(a.io.Out, "%s user %s (%s)\n", verb, u.Name, u.ID)
	}
	return nil
}
