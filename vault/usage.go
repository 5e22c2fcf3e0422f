package vault

import (
	"bytes"
	"fmt"
)

// usageKey is the usage bucket's key for a credential's count in a period.
func usageKey(id, period string) []byte {
	return []byte(id + "\x00" + period)
}

// deleteUsage drops every counter of a removed credential.
func (tx *Tx) deleteUsage(id string) error {
	prefix := []byte(id + "\x00")
	c := tx.bucket(bucketUsage).Cursor()
	var doomed [][]byte
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		doomed = append(doomed, bytes.Clone(k))
	}
	for _, k := range doomed {
		if err := tx.delete(bucketUsage, k); err != nil {
			return fmt.Errorf("delete usage: %w", err)
		}
	}
	return nil
}
