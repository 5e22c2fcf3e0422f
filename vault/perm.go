package vault

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// ErrUnsafePerm means a file holding secrets, or a directory above it, can
// be changed by someone other than its user or root. The message with it
// says which, and the command that fixes it.
var ErrUnsafePerm = errors.New("unsafe permissions")

// CheckPrivateFile refuses a file holding secrets (what names it in
// messages: "vault", "identity file") that another user could alter or
// replace, as ssh's StrictModes does with keys: the file must not be
// writable by its group or others, and it and every directory from its own
// up to / must belong to the current user or root; no such directory may
// be writable by group or others unless it is sticky (as /tmp is), since
// anyone who can write a directory can rename the file away and put their
// own in its place. Symbolic links are followed: what is checked is where
// the data is. The errors wrap [ErrUnsafePerm] and give the chmod (or
// chown) command that makes the file safe. On systems other than Unix it
// checks nothing (see checksPerms).
func CheckPrivateFile(path, what string) error {
	if !checksPerms {
		return nil
	}
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("check %s: %w", what, err)
	}
	return checkPrivate(path, what, fi, os.Geteuid())
}

// checkPrivate is [CheckPrivateFile] for a file already stat'ed as fi
// (from the open file, so that the file checked is the one read), checked
// on behalf of the user uid.
func checkPrivate(path, what string, fi fs.FileInfo, uid int) error {
	if !checksPerms {
		return nil
	}
	if w := writers(fi.Mode()); w != "" {
		return fmt.Errorf("%w: %s %s is writable by %s (mode %04o); run `chmod 600 %s`",
			ErrUnsafePerm, what, path, w, fi.Mode().Perm(), shellQuote(path))
	}
	if owner := fileOwner(fi); !trustedOwner(owner, uid) {
		return fmt.Errorf("%w: %s %s belongs to another user (uid %d), who can change it; run `chown %d %s` as root",
			ErrUnsafePerm, what, path, owner, uid, shellQuote(path))
	}
	// A pipe (--identity <(...)) or a device lives in no directory where
	// it could be swapped for another file.
	if !fi.Mode().IsRegular() {
		return nil
	}
	resolved, err := filepath.EvalSymlinks(path)
	if err == nil {
		resolved, err = filepath.Abs(resolved)
	}
	if err != nil {
		return fmt.Errorf("check %s: %w", what, err)
	}
	where := "holds"
	for dir := filepath.Dir(resolved); ; dir = filepath.Dir(dir) {
		// EvalSymlinks left no link in the path, so Lstat sees the
		// directory itself.
		st, err := os.Lstat(dir)
		if err != nil {
			return fmt.Errorf("check %s: %w", what, err)
		}
		if w := writers(st.Mode()); w != "" && st.Mode()&fs.ModeSticky == 0 {
			return fmt.Errorf("%w: directory %s %s the %s and %s can write to it (mode %04o); run `chmod %03o %s`",
				ErrUnsafePerm, dir, where, what, w, st.Mode().Perm(), st.Mode().Perm()&^0o022, shellQuote(dir))
		}
		if owner := fileOwner(st); !trustedOwner(owner, uid) {
			return fmt.Errorf("%w: directory %s %s the %s and belongs to another user (uid %d), who can replace it; run `chown %d %s` as root, or move the %s",
				ErrUnsafePerm, dir, where, what, owner, uid, shellQuote(dir), what)
		}
		if parent := filepath.Dir(dir); parent == dir {
			return nil
		}
		where = "is above"
	}
}

// trustedOwner reports whether a file owned by owner is safe for the user
// uid: root can change anything anyway, so a file of root's adds no risk.
func trustedOwner(owner, uid int) bool {
	return owner == uid || owner == 0
}

// writers says who other than the owner can write a file of mode m, or ""
// when no one can.
func writers(m fs.FileMode) string {
	switch m.Perm() & 0o022 {
	case 0o020:
		return "its group"
	case 0o002:
		return "others"
	case 0o022:
		return "its group and others"
	}
	return ""
}

// shellQuote quotes s for a POSIX shell when it needs it, so the command in
// a message can be pasted as is.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/._-+,:=@%") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
