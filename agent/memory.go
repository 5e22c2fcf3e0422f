package agent

// lockedKey holds the data key where the agent keeps it: see newLockedKey
// (memory_linux.go, memory_other.go).
type lockedKey struct {
	b      []byte
	locked bool // mlock succeeded
	free   func()
}

// bytes returns the key; valid until wipe.
func (k *lockedKey) bytes() []byte { return k.b }

// wipe zeroes the key and releases its memory.
func (k *lockedKey) wipe() {
	if k.b == nil {
		return
	}
	clear(k.b)
	if k.free != nil {
		k.free()
	}
	k.b = nil
}
