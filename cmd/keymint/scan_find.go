package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/keymint/keymint/apikey"
)

// Finding keymint-format secrets in files and streams, for `keymint scan`:
// every candidate is checked by its checksum (apikey.Parse), so random
// look-alikes are not reported.

// scanPath scans a file, or walks a directory, calling add for each secret.
func scanPath(root string, st *scanStats, add func(file string, line, col int, secret string)) {
	_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			st.unreadable = append(st.unreadable, fmt.Sprintf("%s: %v", p, pathErr(err)))
			if d != nil && d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			if d.Name() == "objects" && filepath.Base(filepath.Dir(p)) == ".git" {
				return fs.SkipDir
			}
			return nil
		}
		// The root itself may be a symbolic link to a file; inside a
		// walk, links are not followed.
		if !d.Type().IsRegular() && (p != root || d.Type()&fs.ModeSymlink == 0) {
			return nil
		}
		scanFile(p, st, add)
		return nil
	})
}

// pathErr is err without the path an *fs.PathError repeats.
func pathErr(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// binarySniff is how much of a file is looked at for a NUL byte: git's
// heuristic for a binary file.
const binarySniff = 8000

func scanFile(p string, st *scanStats, add func(file string, line, col int, secret string)) {
	f, err := os.Open(p)
	if err != nil {
		st.unreadable = append(st.unreadable, fmt.Sprintf("%s: %v", p, pathErr(err)))
		return
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		return
	}
	br := bufio.NewReaderSize(f, 64<<10)
	head, err := br.Peek(binarySniff)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, bufio.ErrBufferFull) {
		st.unreadable = append(st.unreadable, fmt.Sprintf("%s: %v", p, err))
		return
	}
	if bytes.IndexByte(head, 0) >= 0 {
		st.binary++
		return
	}
	st.files++
	if err := scanStream(br, func(line, col int, s string) { add(p, line, col, s) }); err != nil {
		st.unreadable = append(st.unreadable, fmt.Sprintf("%s: %v", p, err))
	}
}

// secretLen is the length of a secret after its prefix's '_'.
const secretLen = apikey.RandomLen + apikey.ChecksumLen

// scanStream calls found for every keymint secret in r whose checksum is
// right, with its line and byte column (both from 1). A secret is a prefix,
// '_' and 49 base62 characters: each '_' followed by 49 base62 characters
// is a candidate, tried with the lowercase letters and digits before it as
// its prefix (longest first, at most [apikey.MaxPrefixLen]), and kept if
// [apikey.Parse] accepts it. Lines of any length are read in pieces, with
// enough of each piece carried over that nothing is missed at a seam.
func scanStream(r io.Reader, found func(line, col int, secret string)) error {
	return scanStreamSize(r, 64<<10, found)
}

// scanStreamSize is scanStream reading pieces of at most size bytes.
func scanStreamSize(r io.Reader, size int, found func(line, col int, secret string)) error {
	br := bufio.NewReaderSize(r, size)
	var carry []byte // the end of the line so far: context for the next piece
	carryCol := 0    // the column (from 0) of carry[0]
	next := 0        // in carry: '_' before this were tried
	line := 1
	for {
		seg, err := br.ReadSlice('\n')
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) && !errors.Is(err, io.EOF) {
			return err
		}
		end := err == nil || errors.Is(err, io.EOF) // the line ends here
		buf := seg
		if len(carry) > 0 {
			buf = append(carry, seg...)
		}
		next = scanPiece(buf, next, end, func(start int, s string) { found(line, carryCol+start+1, s) })
		if end {
			if errors.Is(err, io.EOF) {
				return nil
			}
			line++
			carry, carryCol, next = carry[:0], 0, 0
			continue
		}
		// Keep what the next piece needs: from MaxPrefixLen before the
		// first '_' not yet tried.
		keep := max(next-apikey.MaxPrefixLen, 0)
		carry = append(carry[:0:0], buf[keep:]...)
		carryCol += keep
		next -= keep
	}
}

// scanPiece tries each '_' of buf from index next and returns where the
// next piece must resume: a '_' with fewer than 49 characters after it
// waits for the rest of its line, unless the line ends with this piece.
func scanPiece(buf []byte, next int, end bool, found func(start int, secret string)) int {
	for {
		i := bytes.IndexByte(buf[next:], '_')
		if i < 0 {
			return len(buf)
		}
		u := next + i
		if !end && u+1+secretLen >= len(buf) {
			// Whether 49 characters follow is not known yet (>=: the
			// character after them need not be seen, but one more keeps
			// this simple and is harmless).
			return u
		}
		if start, s, ok := secretAt(buf, u); ok {
			found(start, s)
			next = u + 1 + secretLen
			continue
		}
		next = u + 1
	}
}

// secretAt tries buf[u] == '_' as the separator of a secret: the 49
// base62 characters after it, and a prefix of lowercase letters and
// digits before it that makes the checksum right.
func secretAt(buf []byte, u int) (start int, secret string, ok bool) {
	if u+1+secretLen > len(buf) {
		return 0, "", false
	}
	for _, c := range buf[u+1 : u+1+secretLen] {
		if !isBase62(c) {
			return 0, "", false
		}
	}
	p := u
	for p > 0 && u-p < apikey.MaxPrefixLen && isPrefixChar(buf[p-1]) {
		p--
	}
	for s := p; s < u; s++ {
		if buf[s] < 'a' || buf[s] > 'z' {
			continue
		}
		cand := string(buf[s : u+1+secretLen])
		if _, err := apikey.Parse(cand); err == nil {
			return s, cand, true
		}
	}
	return 0, "", false
}

func isBase62(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z'
}

func isPrefixChar(c byte) bool { return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' }
