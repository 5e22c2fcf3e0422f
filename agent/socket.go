package agent

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"syscall"

	"github.com/keymint/keymint/vault"
)

// ErrNoRuntimeDir reports that $XDG_RUNTIME_DIR is not set: there is no
// directory the login manager keeps private and removes at logout.
var ErrNoRuntimeDir = errors.New("XDG_RUNTIME_DIR is not set: the agent's socket belongs in the private directory your login session provides")

// Dir returns the directory of agents' sockets under runtimeDir (the value
// of $XDG_RUNTIME_DIR), creating it 0700 if create is set. runtimeDir must
// be absolute, and neither it nor the directory may be reachable by others
// or owned by another user.
func Dir(runtimeDir string, create bool) (string, error) {
	if runtimeDir == "" {
		return "", ErrNoRuntimeDir
	}
	if !filepath.IsAbs(runtimeDir) {
		return "", fmt.Errorf("XDG_RUNTIME_DIR %q is not an absolute path", runtimeDir)
	}
	if err := checkPrivateDir(runtimeDir); err != nil {
		return "", fmt.Errorf("XDG_RUNTIME_DIR: %w", err)
	}
	dir := filepath.Join(runtimeDir, "keymint")
	if create {
		if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
			return "", err
		}
	}
	if err := checkPrivateDir(dir); err != nil {
		return "", err
	}
	return dir, nil
}

// checkPrivateDir refuses a path that is not a directory of this user
// that only this user can reach (not a symlink: Lstat).
func checkPrivateDir(dir string) error {
	fi, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s is not a directory", dir)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return fmt.Errorf("%s is reachable by others (mode %04o): it must be 0700", dir, perm)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Getuid() {
		return fmt.Errorf("%s belongs to uid %d, not to you", dir, st.Uid)
	}
	return nil
}

// AnyIn reports whether dir holds any agent's socket: a command with no
// agent running then skips reading its vault's Lock to look for one.
func AnyIn(dir string) bool {
	matches, _ := filepath.Glob(filepath.Join(dir, "agent-*.sock"))
	return len(matches) > 0
}

// SocketPath is where the agent of the vault with lock l listens, in dir.
// Half the vault's random id names it; the request names the whole Lock.
func SocketPath(dir string, l vault.Lock) string {
	return filepath.Join(dir, "agent-"+hex.EncodeToString(l.ID[:8])+".sock")
}

// ErrRunning reports that an agent already answers on the socket.
var ErrRunning = errors.New("an agent is already running for this vault")

// Socket is an agent's listening socket, and the file it made, so that
// the agent can tell when that file is removed or replaced.
type Socket struct {
	ln   *net.UnixListener
	path string
	own  os.FileInfo
}

// Path is where the socket is.
func (s *Socket) Path() string { return s.path }

// Close stops listening; the file stays (Serve removes it).
func (s *Socket) Close() error { return s.ln.Close() }

// File returns a descriptor of the listening socket, for a child process
// to serve on (Inherit).
func (s *Socket) File() (*os.File, error) { return s.ln.File() }

// Inherit is the socket a parent made at path, passed as f.
func Inherit(f *os.File, path string) (*Socket, error) {
	l, err := net.FileListener(f)
	f.Close()
	if err != nil {
		return nil, err
	}
	ln, ok := l.(*net.UnixListener)
	if !ok {
		l.Close()
		return nil, fmt.Errorf("descriptor %d is not a Unix socket", f.Fd())
	}
	ln.SetUnlinkOnClose(false)
	own, err := os.Lstat(path)
	if err != nil {
		ln.Close()
		return nil, err
	}
	return &Socket{ln: ln, path: path, own: own}, nil
}

// Listen makes the socket at path, 0600. A socket left by an agent that
// died is replaced; one that answers is not (ErrRunning).
func Listen(path string) (*Socket, error) {
	if _, err := os.Lstat(path); err == nil {
		if c, err := net.Dial("unix", path); err == nil {
			c.Close()
			return nil, ErrRunning
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("remove the stale agent socket: %w", err)
		}
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, err
	}
	// Serve removes the socket itself, only if it is still its own.
	ln.SetUnlinkOnClose(false)
	// The directory is 0700 already; the socket is made private too, so
	// that moving it out of the directory exposes nothing.
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, err
	}
	own, err := os.Lstat(path)
	if err != nil {
		ln.Close()
		return nil, err
	}
	return &Socket{ln: ln, path: path, own: own}, nil
}

// removeIfOwn removes the socket file if it is still the one s made.
func (s *Socket) removeIfOwn() {
	if fi, err := os.Lstat(s.path); err == nil && os.SameFile(fi, s.own) {
		os.Remove(s.path)
	}
}

// gone reports whether the socket file was removed or replaced.
func (s *Socket) gone() bool {
	fi, err := os.Lstat(s.path)
	return err != nil || !os.SameFile(fi, s.own)
}
