//go:build unix

package vault

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"filippo.io/age"
)

// permTree is a file in a directory in a parent directory, all in a
// t.TempDir(), whose modes a test sets. t.TempDir() is under os.TempDir(),
// a sticky directory (/tmp) or one of the user's own, so only what the test
// sets can make the check fail.
type permTree struct {
	parent, dir, file string
}

func newPermTree(t *testing.T, parentMode, dirMode, fileMode fs.FileMode) permTree {
	t.Helper()
	parent := filepath.Join(t.TempDir(), "parent")
	pt := permTree{parent: parent, dir: filepath.Join(parent, "dir"), file: filepath.Join(parent, "dir", "vault.db")}
	if err := os.MkdirAll(pt.dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pt.file, []byte("sealed"), 0o600); err != nil {
		t.Fatal(err)
	}
	// Chmod, not the creating mode, which the umask would trim.
	for _, c := range []struct {
		path string
		mode fs.FileMode
	}{{pt.file, fileMode}, {pt.dir, dirMode}, {pt.parent, parentMode}} {
		if err := os.Chmod(c.path, c.mode); err != nil {
			t.Fatal(err)
		}
	}
	return pt
}

func TestPermCheckPrivateFile(t *testing.T) {
	for _, tc := range []struct {
		name                          string
		parentMode, dirMode, fileMode fs.FileMode
		want                          string // "" for no error; else the message after "unsafe permissions: "
	}{
		{name: "private", parentMode: 0o700, dirMode: 0o700, fileMode: 0o600},
		{name: "read-only", parentMode: 0o755, dirMode: 0o700, fileMode: 0o400},
		// The vault is sealed: others reading it is not what this check is for.
		{name: "readable by others", parentMode: 0o755, dirMode: 0o755, fileMode: 0o644},
		{name: "file group-writable", parentMode: 0o700, dirMode: 0o700, fileMode: 0o620,
			want: "vault {file} is writable by its group (mode 0620); run `chmod 600 {file}`"},
		{name: "file world-writable", parentMode: 0o700, dirMode: 0o700, fileMode: 0o602,
			want: "vault {file} is writable by others (mode 0602); run `chmod 600 {file}`"},
		{name: "file writable by all", parentMode: 0o700, dirMode: 0o700, fileMode: 0o666,
			want: "vault {file} is writable by its group and others (mode 0666); run `chmod 600 {file}`"},
		{name: "dir world-writable", parentMode: 0o700, dirMode: 0o777, fileMode: 0o600,
			want: "directory {dir} holds the vault and its group and others can write to it (mode 0777); run `chmod 755 {dir}`"},
		{name: "dir group-writable", parentMode: 0o700, dirMode: 0o770, fileMode: 0o600,
			want: "directory {dir} holds the vault and its group can write to it (mode 0770); run `chmod 750 {dir}`"},
		// Sticky, as /tmp: others may add files but not rename or remove
		// the vault.
		{name: "dir sticky", parentMode: 0o700, dirMode: 0o777 | fs.ModeSticky, fileMode: 0o600},
		{name: "parent world-writable", parentMode: 0o703, dirMode: 0o700, fileMode: 0o600,
			want: "directory {parent} is above the vault and others can write to it (mode 0703); run `chmod 701 {parent}`"},
		{name: "parent sticky", parentMode: 0o777 | fs.ModeSticky, dirMode: 0o700, fileMode: 0o600},
		// The file is looked at before its directories.
		{name: "file and dir unsafe", parentMode: 0o700, dirMode: 0o777, fileMode: 0o666,
			want: "vault {file} is writable by its group and others (mode 0666); run `chmod 600 {file}`"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pt := newPermTree(t, tc.parentMode, tc.dirMode, tc.fileMode)
			err := CheckPrivateFile(pt.file, "vault")
			if tc.want == "" {
				if err != nil {
					t.Fatalf("CheckPrivateFile: %v, want nil", err)
				}
				return
			}
			want := "unsafe permissions: " + strings.NewReplacer("{file}", pt.file, "{dir}", pt.dir, "{parent}", pt.parent).Replace(tc.want)
			if !errors.Is(err, ErrUnsafePerm) || err.Error() != want {
				t.Fatalf("CheckPrivateFile:\n got %v\nwant %s (ErrUnsafePerm)", err, want)
			}
		})
	}
}

// TestPermFollowsLinks checks where the data is, as ssh does:
// a link from a safe directory into an unsafe one is refused, naming the
// unsafe directory, and the same link the other way is fine.
func TestPermFollowsLinks(t *testing.T) {
	unsafe := newPermTree(t, 0o700, 0o777, 0o600)
	safe := newPermTree(t, 0o700, 0o700, 0o600)
	link := filepath.Join(safe.dir, "link.db")
	if err := os.Symlink(unsafe.file, link); err != nil {
		t.Fatal(err)
	}
	err := CheckPrivateFile(link, "vault")
	if !errors.Is(err, ErrUnsafePerm) || !strings.Contains(err.Error(), "directory "+unsafe.dir+" holds the vault") {
		t.Errorf("link into a world-writable directory: %v, want ErrUnsafePerm naming %s", err, unsafe.dir)
	}
	back := filepath.Join(unsafe.parent, "back.db")
	if err := os.Symlink(safe.file, back); err != nil {
		t.Fatal(err)
	}
	if err := CheckPrivateFile(back, "vault"); err != nil {
		t.Errorf("link to a file in a private directory: %v", err)
	}
}

func TestPermMissingFile(t *testing.T) {
	err := CheckPrivateFile(filepath.Join(t.TempDir(), "missing.db"), "vault")
	if !errors.Is(err, fs.ErrNotExist) || errors.Is(err, ErrUnsafePerm) {
		t.Errorf("missing file: %v, want fs.ErrNotExist", err)
	}
}

// TestPermOwner needs files owned by a user other than the
// one checking them, so it runs as root, as CI does (scripts/test runs
// as root there): root gives a file to nobody (uid 65534), then checks as
// root (the file is another user's) and as nobody (root's directories are
// trusted). checkPrivate takes the checking uid for the second half.
func TestPermOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatalf("this test gives files to another user and so must run as root, as CI does; run it as root (euid is %d)", os.Geteuid())
	}
	const nobody = 65534
	check := func(t *testing.T, path string, uid int) error {
		t.Helper()
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		return checkPrivate(path, "vault", fi, uid)
	}
	chown := func(t *testing.T, path string) {
		t.Helper()
		if err := os.Chown(path, nobody, nobody); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("file of another user", func(t *testing.T) {
		pt := newPermTree(t, 0o700, 0o700, 0o600)
		chown(t, pt.file)
		want := "unsafe permissions: vault " + pt.file + " belongs to another user (uid 65534), who can change it; run `chown 0 " + pt.file + "` as root"
		if err := CheckPrivateFile(pt.file, "vault"); !errors.Is(err, ErrUnsafePerm) || err.Error() != want {
			t.Errorf("CheckPrivateFile:\n got %v\nwant %s", err, want)
		}
		// For nobody it is their own file, in root's directories.
		if err := check(t, pt.file, nobody); err != nil {
			t.Errorf("as its owner: %v", err)
		}
	})
	t.Run("dir of another user", func(t *testing.T) {
		pt := newPermTree(t, 0o700, 0o700, 0o600)
		chown(t, pt.dir)
		want := "unsafe permissions: directory " + pt.dir + " holds the vault and belongs to another user (uid 65534), who can replace it; run `chown 0 " + pt.dir + "` as root, or move the vault"
		if err := CheckPrivateFile(pt.file, "vault"); !errors.Is(err, ErrUnsafePerm) || err.Error() != want {
			t.Errorf("CheckPrivateFile:\n got %v\nwant %s", err, want)
		}
	})
	t.Run("parent of another user", func(t *testing.T) {
		pt := newPermTree(t, 0o700, 0o700, 0o600)
		chown(t, pt.parent)
		if err := CheckPrivateFile(pt.file, "vault"); !errors.Is(err, ErrUnsafePerm) || !strings.Contains(err.Error(), "directory "+pt.parent+" is above the vault and belongs to another user (uid 65534)") {
			t.Errorf("CheckPrivateFile: %v, want ErrUnsafePerm naming %s", err, pt.parent)
		}
	})
	t.Run("root's dirs for another user", func(t *testing.T) {
		pt := newPermTree(t, 0o755, 0o755, 0o600)
		chown(t, pt.file)
		// Every directory up to / is root's: trusted by nobody too.
		if err := check(t, pt.file, nobody); err != nil {
			t.Errorf("as nobody, in root's directories: %v", err)
		}
		// Root's directory that nobody's group could write is still unsafe.
		if err := os.Chmod(pt.dir, 0o775); err != nil {
			t.Fatal(err)
		}
		if err := check(t, pt.file, nobody); !errors.Is(err, ErrUnsafePerm) {
			t.Errorf("as nobody, group-writable directory: %v, want ErrUnsafePerm", err)
		}
	})
}

// TestPermReadIdentityFile: on top of the rule that others may not read an
// identity (TestReadIdentityFile), one in a directory others can write is
// refused, and one read from a pipe, as --identity <(...) gives, is not.
func TestPermReadIdentityFile(t *testing.T) {
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	pt := newPermTree(t, 0o700, 0o777, 0o600)
	if err := os.WriteFile(pt.file, []byte(id.String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = ReadIdentityFile(pt.file, nil)
	want := "unsafe permissions: directory " + pt.dir + " holds the identity file and its group and others can write to it (mode 0777); run `chmod 755 " + pt.dir + "`"
	if !errors.Is(err, ErrUnsafePerm) || err.Error() != want {
		t.Errorf("identity in a world-writable directory:\n got %v\nwant %s", err, want)
	}
	// Readable by others is still its own error, whatever the directory.
	if err := os.Chmod(pt.file, 0o666); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadIdentityFile(pt.file, nil); !errors.Is(err, ErrIdentityPerm) {
		t.Errorf("mode 0666: %v, want ErrIdentityPerm", err)
	}
	if err := os.Chmod(pt.file, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(pt.dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if ids, err := ReadIdentityFile(pt.file, nil); err != nil || len(ids) != 1 {
		t.Errorf("private identity: %d identities, %v; want 1", len(ids), err)
	}

	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := w.WriteString(id.String() + "\n"); err != nil {
		t.Fatal(err)
	}
	w.Close()
	if ids, err := ReadIdentityFile("/dev/fd/"+strconv.Itoa(int(r.Fd())), nil); err != nil || len(ids) != 1 {
		t.Errorf("identity from a pipe: %d identities, %v; want 1", len(ids), err)
	}
}

func TestPermShellQuote(t *testing.T) {
	for in, want := range map[string]string{
		"/x/vault.db":           "/x/vault.db",
		"/home/a b/v.db":        "'/home/a b/v.db'",
		"/x/it's":               `'/x/it'\''s'`,
		"/x/$(rm -rf ~)":        "'/x/$(rm -rf ~)'",
		"":                      "''",
		"/srv/key_mint-1.2+x@h": "/srv/key_mint-1.2+x@h",
	} {
		if got := shellQuote(in); got != want {
			t.Errorf("shellQuote(%q) = %s, want %s", in, got, want)
		}
	}
}
