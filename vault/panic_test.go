package vault

import (
	"errors"
	"os"
	"strings"
	"testing"
)

// TestPanicInTransactionPropagates: a panic in the caller's function is a
// bug, not a damaged file. It must reach the caller as the same panic, not
// as ErrNotVault, and leave the vault usable.
func TestPanicInTransactionPropagates(t *testing.T) {
	f := buildTamperFixture(t)
	path := copyFile(t, f.newer)
	v := f.open(t, path)
	type bug struct{ msg string }
	for name, run := range map[string]func(fn func(*Tx) error) error{"Update": v.Update, "View": v.View} {
		t.Run(name, func(t *testing.T) {
			var got any
			func() {
				defer func() { got = recover() }()
				_ = run(func(tx *Tx) error {
					if _, err := tx.Keys(); err != nil {
						return err
					}
					panic(bug{"a bug of ours"})
				})
			}()
			if b, ok := got.(bug); !ok || b.msg != "a bug of ours" {
				t.Fatalf("recovered %v (%T), want the original panic", got, got)
			}
			// The file lock was released and the vault still reads.
			if _, err := v.Verify(); err != nil {
				t.Errorf("after the panic: %v", err)
			}
		})
	}
}

// TestTruncatedFileIsDamage: a fault reading the mapped file is reported as
// a damaged vault, with the cause, and does not crash the process.
func TestTruncatedFileIsDamage(t *testing.T) {
	f := buildTamperFixture(t)
	path := copyFile(t, f.newer)
	v := f.open(t, path)
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, st.Size()/2); err != nil {
		t.Fatal(err)
	}
	_, err = v.Verify()
	if !errors.Is(err, ErrNotVault) || !strings.Contains(err.Error(), path) {
		t.Errorf("Verify of a truncated file = %v, want ErrNotVault naming the file", err)
	}
}
