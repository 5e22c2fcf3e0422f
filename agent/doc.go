// Package agent keeps one vault's data key in memory for a while, as
// ssh-agent keeps keys, so that the commands run meanwhile need neither the
// identity nor the passphrase (a passphrase costs about a second of scrypt
// on every command).
//
// An agent answers on a Unix socket in $XDG_RUNTIME_DIR/keymint, a
// directory only its user can reach (0700, the socket 0600); on Linux it
// also refuses a peer of another user (SO_PEERCRED). It serves one vault:
// the socket is named after the vault's id, and it hands out the data key
// only to a request that names the vault's id and key check (the [vault.Lock],
// both in the clear in the vault), so it never answers for another vault,
// nor for its own once rekeyed. The key lives outside Go's heap, in memory
// locked against swapping where the OS allows and left out of core dumps;
// the process is not dumpable (cmd/keymint hardens every process). The
// agent ends at its TTL, at a stop request, or when its socket is removed,
// as the login manager removes $XDG_RUNTIME_DIR at logout; it then wipes
// the key.
//
// The protocol is one JSON request line and one JSON response line per
// connection (protocol.go).
package agent
