package agent

import (
	"fmt"
	"net"
	"os"

	"golang.org/x/sys/unix"
)

// checkPeer refuses a peer of another user. The socket's directory is
// 0700 already; this also stops root-owned or leaked descriptors being
// used by another user's process, and says who tried.
func checkPeer(c *net.UnixConn) error {
	raw, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var cred *unix.Ucred
	var credErr error
	if err := raw.Control(func(fd uintptr) {
		cred, credErr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return err
	}
	if credErr != nil {
		return credErr
	}
	return peerAllowed(int(cred.Uid), os.Getuid())
}

func peerAllowed(peer, own int) error {
	if peer != own {
		return fmt.Errorf("a process of uid %d asked; the agent answers only uid %d", peer, own)
	}
	return nil
}
