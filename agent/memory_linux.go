package agent

import "golang.org/x/sys/unix"

// newLockedKey copies key into its own anonymous mapping, outside Go's heap
// (so no collector copy or free list keeps it), locks it against swapping
// if RLIMIT_MEMLOCK allows, and leaves it out of core dumps.
func newLockedKey(key []byte) (*lockedKey, error) {
	page := unix.Getpagesize()
	size := (len(key) + page - 1) / page * page
	mem, err := unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANON)
	if err != nil {
		return nil, err
	}
	_ = unix.Madvise(mem, unix.MADV_DONTDUMP) // the process is not dumpable anyway
	locked := unix.Mlock(mem) == nil
	k := &lockedKey{b: mem[:len(key)], locked: locked, free: func() {
		clear(mem)
		if locked {
			_ = unix.Munlock(mem)
		}
		_ = unix.Munmap(mem)
	}}
	copy(k.b, key)
	return k, nil
}
