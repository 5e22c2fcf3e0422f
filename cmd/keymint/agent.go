package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/keymint/keymint/agent"
	"github.com/keymint/keymint/vault"
)

// defaultAgentTTL is how long an agent unlocks the vault unless told.
const defaultAgentTTL = 8 * time.Hour

func newAgentCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Unlock the vault once for a while: later commands use the agent, as ssh uses ssh-agent",
		Long: `Unlock the vault once and keep its data key in a background process, the
agent, so that the commands run meanwhile need neither the identity nor the
passphrase (a passphrase costs about a second on every command).

The agent answers on a socket in $XDG_RUNTIME_DIR/keymint that only you can
reach, holds the key in memory only (locked against swapping where the system
allows, never in a core dump), answers for the vault it was started for and
no other, and ends at its time to live, at ` + "`keymint agent stop`" + `, or when
your login session ends and $XDG_RUNTIME_DIR is removed.

Commands use the agent when no identity or passphrase is set explicitly
(KEYMINT_IDENTITY, --identity, KEYMINT_PASSPHRASE, --passphrase-file), and
unlock as usual when it is absent. Changing who opens the vault (vault
recipients, rekey, backup) and serve always use the identity itself.`,
	}
	cmd.AddCommand(newAgentStartCmd(a), newAgentStatusCmd(a), newAgentStopCmd(a), newAgentRunCmd(a))
	return cmd
}

type agentStartOptions struct {
	ttl        time.Duration
	foreground bool
}

func newAgentStartCmd(a *app) *cobra.Command {
	var o agentStartOptions
	cmd := &cobra.Command{
		Use:   "start",
		Short: "Unlock the vault and start an agent that keeps it unlocked",
		Long: `Unlock the vault (asking for the passphrase on a terminal if it needs one),
check it, and start an agent that keeps its data key for --ttl. The agent runs
in the background unless --foreground is given (for a service manager).`,
		Args: noArgs,
		RunE: func(*cobra.Command, []string) error { return a.runAgentStart(o) },
	}
	durationVar(cmd.Flags(), &o.ttl, "ttl", defaultAgentTTL, "how long the agent keeps the vault unlocked (such as 30m, 8h or 2d)")
	cmd.Flags().BoolVar(&o.foreground, "foreground", false, "run the agent in this process until it ends, instead of in the background")
	return cmd
}

// agentHandoff is what `agent start` passes to the agent it starts, through
// a pipe: never in argv or the environment.
type agentHandoff struct {
	Vault    string        `json:"vault"`
	VaultID  []byte        `json:"vault_id"`
	KeyCheck []byte        `json:"key_check"`
	DataKey  []byte        `json:"data_key"`
	TTL      time.Duration `json:"ttl"`
	Socket   string        `json:"socket"`
}

func (a *app) runAgentStart(o agentStartOptions) error {
	if o.ttl <= 0 {
		return usagef("--ttl must be positive")
	}
	dir, err := agent.Dir(a.getenv("XDG_RUNTIME_DIR"), true)
	if err != nil {
		return err
	}
	// Say an agent runs before asking for a passphrase for nothing.
	if path, _, err := a.agentSocket(); err == nil {
		if st, err := agent.GetStatus(path); err == nil {
			return a.alreadyRunning(st)
		}
	}
	u, err := a.unlockForAgent()
	if err != nil {
		return err
	}
	defer clear(u.DataKey)
	path := agent.SocketPath(dir, u.Lock)
	sock, err := agent.Listen(path)
	if errors.Is(err, agent.ErrRunning) {
		if st, serr := agent.GetStatus(path); serr == nil {
			return a.alreadyRunning(st)
		}
		return fmt.Errorf("%s: %w", a.cfg.Vault, err)
	}
	if err != nil {
		return fmt.Errorf("the agent's socket: %w", err)
	}
	cfg := agent.Config{Key: *u, Vault: a.cfg.Vault, TTL: o.ttl, Now: a.now}
	if o.foreground {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
		defer stop()
		fmt.Fprintf(a.io.Err, "agent for %s listening on %s until %s\n", a.cfg.Vault, path, a.now().Add(o.ttl).UTC().Format(time.DateTime+" MST"))
		return agentEnded(agent.Serve(ctx, sock, cfg))
	}
	pid, err := a.spawnAgent(sock, agentHandoff{Vault: a.cfg.Vault, VaultID: u.ID, KeyCheck: u.KeyCheck, DataKey: u.DataKey, TTL: o.ttl, Socket: path})
	if err != nil {
		return err
	}
	st, err := agent.GetStatus(path)
	if err != nil {
		return fmt.Errorf("the agent started (pid %d) but does not answer: %w", pid, err)
	}
	if a.json() {
		return a.writeJSON(st)
	}
	_, err = fmt.Fprintf(a.io.Out, "agent started for %s (pid %d); it keeps the vault unlocked until %s (%s)\n",
		a.cfg.Vault, st.PID, st.Expires.Format(time.DateTime+" MST"), shortDuration(o.ttl))
	return err
}

func (a *app) alreadyRunning(st *agent.Status) error {
	return fmt.Errorf("an agent is already running for %s (pid %d, until %s): run keymint agent stop first", a.cfg.Vault, st.PID, st.Expires.Format(time.DateTime+" MST"))
}

// agentEnded is the error of an agent run in the foreground: none for the
// ways it is meant to end.
func agentEnded(err error) error {
	for _, ok := range []error{agent.ErrExpired, agent.ErrStopped, agent.ErrSocketGone, context.Canceled} {
		if errors.Is(err, ok) {
			return nil
		}
	}
	return err
}

// unlockForAgent unlocks the vault from the sources a command would use,
// never from an agent, and checks it opens with the key: an agent must not
// hold the key of a vault that would then fail (tampered, rolled back).
func (a *app) unlockForAgent() (*vault.Unlocked, error) {
	loc, err := a.location()
	if err != nil {
		return nil, err
	}
	if err := loc.Exists(); err != nil {
		return nil, err
	}
	ids, source, err := a.identities()
	if err != nil {
		return nil, err
	}
	u, err := vault.Unlock(loc, vault.Options{Identities: ids, LockTimeout: a.cfg.LockTimeout})
	if errors.Is(err, vault.ErrWrongIdentity) {
		return nil, fmt.Errorf("%s: %w", source, err)
	}
	if err != nil {
		return nil, err
	}
	if _, err := a.openAt(loc, a.vaultOptions(func(o *vault.Options) { o.DataKey = u.DataKey })); err != nil {
		clear(u.DataKey)
		return nil, err
	}
	return u, nil
}

// spawnAgent starts `keymint agent run` in its own session, serving on
// sock, and hands it the key through a pipe. Its environment is empty: a
// KEYMINT_PASSPHRASE must not live on in the agent's /proc/PID/environ.
func (a *app) spawnAgent(sock *agent.Socket, h agentHandoff) (int, error) {
	defer sock.Close() // the agent has its own descriptor
	exe, err := os.Executable()
	if err != nil {
		return 0, fmt.Errorf("find keymint's executable to start the agent: %w", err)
	}
	lnFile, err := sock.File()
	if err != nil {
		return 0, err
	}
	defer lnFile.Close()
	r, w, err := os.Pipe()
	if err != nil {
		return 0, err
	}
	defer r.Close()
	cmd := &exec.Cmd{
		Path:        exe,
		Args:        []string{"keymint", "agent", "run"},
		Env:         []string{},
		ExtraFiles:  []*os.File{lnFile, r}, // descriptors 3 and 4
		SysProcAttr: &syscall.SysProcAttr{Setsid: true},
	}
	if err := cmd.Start(); err != nil {
		w.Close()
		return 0, fmt.Errorf("start the agent: %w", err)
	}
	b, err := json.Marshal(h)
	if err == nil {
		_, err = w.Write(b)
	}
	clear(b)
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = cmd.Process.Kill()
		return 0, fmt.Errorf("hand the key to the agent: %w", err)
	}
	pid := cmd.Process.Pid
	return pid, cmd.Process.Release()
}

// newAgentRunCmd is the agent process itself, started by `agent start`:
// hidden, as it reads its socket and key from inherited descriptors.
func newAgentRunCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:    "run",
		Hidden: true,
		Args:   noArgs,
		RunE: func(*cobra.Command, []string) error {
			var h agentHandoff
			in := os.NewFile(4, "handoff")
			err := json.NewDecoder(in).Decode(&h)
			in.Close()
			if err != nil {
				return fmt.Errorf("read the agent's handoff: %w", err)
			}
			sock, err := agent.Inherit(os.NewFile(3, "agent socket"), h.Socket)
			if err != nil {
				clear(h.DataKey)
				return err
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
			defer stop()
			key := vault.Unlocked{Lock: vault.Lock{ID: h.VaultID, KeyCheck: h.KeyCheck}, DataKey: h.DataKey}
			err = agent.Serve(ctx, sock, agent.Config{Key: key, Vault: h.Vault, TTL: h.TTL, Now: a.now})
			clear(h.DataKey)
			return agentEnded(err)
		},
	}
}

func newAgentStatusCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Say whether an agent keeps the vault unlocked, and until when",
		Long: `Say whether an agent keeps the vault unlocked, its process id and until when.
Exit 1 when no agent is running for the vault, or when the one running holds
the key from before the vault was rekeyed.`,
		Args: noArgs,
		RunE: func(*cobra.Command, []string) error { return a.runAgentStatus() },
	}
}

// errNoAgent is `agent status` finding none.
type errNoAgent struct{ vault string }

func (e errNoAgent) Error() string { return "no agent is running for " + e.vault }

// agentSocket is the socket of the configured vault's agent, and the
// vault's Lock.
func (a *app) agentSocket() (string, vault.Lock, error) {
	loc, err := a.location()
	if err != nil {
		return "", vault.Lock{}, err
	}
	return a.agentSocketOf(loc)
}

// agentSocketOf is agentSocket for the vault at loc.
func (a *app) agentSocketOf(loc vault.Location) (string, vault.Lock, error) {
	lock, err := vault.PeekLock(loc, vault.Options{LockTimeout: a.cfg.LockTimeout})
	if err != nil {
		return "", vault.Lock{}, err
	}
	dir, err := agent.Dir(a.getenv("XDG_RUNTIME_DIR"), false)
	if errors.Is(err, os.ErrNotExist) {
		return "", lock, errNoAgent{loc.String()}
	}
	if err != nil {
		return "", lock, err
	}
	return agent.SocketPath(dir, lock), lock, nil
}

func (a *app) runAgentStatus() error {
	path, lock, err := a.agentSocket()
	if err != nil {
		return err
	}
	st, err := agent.GetStatus(path)
	if errors.Is(err, agent.ErrNoAgent) {
		return errNoAgent{a.cfg.Vault}
	}
	if err != nil {
		return err
	}
	if !st.Holds(lock) {
		return fmt.Errorf("the agent for %s (pid %d) %w", a.cfg.Vault, st.PID, errStaleAgent)
	}
	if a.json() {
		return a.writeJSON(st)
	}
	mem := "memory locked"
	if !st.LockedMemory {
		mem = "memory not locked (the system refused: RLIMIT_MEMLOCK)"
	}
	_, err = fmt.Fprintf(a.io.Out, "agent running for %s (pid %d); it keeps the vault unlocked until %s (%s left); %s\n",
		a.cfg.Vault, st.PID, st.Expires.Format(time.DateTime+" MST"), shortDuration(st.Expires.Sub(a.now()).Round(time.Second)), mem)
	return err
}

var errStaleAgent = errors.New("holds the data key from before the vault was rekeyed: run keymint agent stop, then keymint agent start")

func newAgentStopCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "stop",
		Short: "Stop the vault's agent: it wipes the key and exits",
		Long:  `Stop the vault's agent: it wipes the key and exits. Nothing to stop is not an error.`,
		Args:  noArgs,
		RunE:  func(*cobra.Command, []string) error { return a.runAgentStop() },
	}
}

func (a *app) runAgentStop() error {
	path, _, err := a.agentSocket()
	var none errNoAgent
	if errors.As(err, &none) || errors.Is(err, agent.ErrNoRuntimeDir) {
		// Without a runtime directory no agent can be running.
		_, err := fmt.Fprintf(a.io.Out, "no agent was running for %s\n", a.cfg.Vault)
		return err
	}
	if err != nil {
		return err
	}
	st, err := agent.Stop(path)
	if errors.Is(err, agent.ErrNoAgent) {
		_, err := fmt.Fprintf(a.io.Out, "no agent was running for %s\n", a.cfg.Vault)
		return err
	}
	if err != nil {
		return err
	}
	// The agent removes its socket as it ends: wait for that, so that an
	// `agent start` right after does not find it running.
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		if _, err := os.Lstat(path); errors.Is(err, os.ErrNotExist) {
			break
		}
	}
	_, err = fmt.Fprintf(a.io.Out, "agent for %s stopped (pid %d); it wiped the key\n", a.cfg.Vault, st.PID)
	return err
}
