//go:build unix

package vault

import (
	"io/fs"
	"syscall"
)

// checksPerms: Unix mode bits and owners say who can change a file.
const checksPerms = true

// fileOwner returns the uid that owns the file fi describes.
func fileOwner(fi fs.FileInfo) int {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return int(st.Uid)
	}
	// Every FileInfo from os on Unix carries a Stat_t; one that does not
	// is treated as another user's, so the check fails closed.
	return -1
}
