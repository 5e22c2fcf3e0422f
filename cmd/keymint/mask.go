package main

import (
	"bytes"
	"io"

	"github.com/keymint/keymint/apikey"
)

// keymint takes no secret as an argument, but people paste them there
// anyway: `keymint key verify km_…`. Whatever keymint says about its
// arguments must not repeat one, so every error is printed through
// [maskSecrets], and cobra's own output (the help command's "Unknown help
// topic", completions) goes through a [maskedWriter].

// maskSecrets replaces everything in s shaped like a keymint secret or a
// JWT with a hint that keeps none of it ("km_****", "eyJ****").
func maskSecrets(s string) string { return apikey.Mask(s) }

// maskedWriter masks what is written to it line by line, so that a secret
// split across two writes is still masked whole (a secret or a JWT never
// holds a newline). Flush writes out an unfinished last line.
type maskedWriter struct {
	w       io.Writer
	pending []byte
}

func newMaskedWriter(w io.Writer) *maskedWriter { return &maskedWriter{w: w} }

func (m *maskedWriter) Write(p []byte) (int, error) {
	m.pending = append(m.pending, p...)
	i := bytes.LastIndexByte(m.pending, '\n')
	if i < 0 {
		return len(p), nil
	}
	lines := string(m.pending[:i+1])
	m.pending = append(m.pending[:0], m.pending[i+1:]...)
	if _, err := io.WriteString(m.w, maskSecrets(lines)); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Flush writes whatever is left after the last newline.
func (m *maskedWriter) Flush() error {
	if len(m.pending) == 0 {
		return nil
	}
	rest := string(m.pending)
	m.pending = m.pending[:0]
	_, err := io.WriteString(m.w, maskSecrets(rest))
	return err
}
