package agent

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/keymint/keymint/vault"
)

// The operations a request may ask for.
const (
	opKey    = "key"    // the data key, for the Lock given
	opStatus = "status" // what the agent holds, without the key
	opStop   = "stop"   // wipe the key and exit
)

// maxLine bounds a request or response line: a request is under 200 bytes.
const maxLine = 4096

// request is what a client sends.
type request struct {
	Op       string `json:"op"`
	VaultID  string `json:"vault_id,omitempty"`  // hex
	KeyCheck string `json:"key_check,omitempty"` // hex
}

// Why an agent refuses to hand out its key.
const (
	refusedOtherVault = "other_vault" // the Lock names another vault
	refusedStaleKey   = "stale_key"   // this vault, under another data key (rekeyed)
	refusedBadRequest = "bad_request"
)

// response is what the agent answers.
type response struct {
	Refused string `json:"refused,omitempty"`
	DataKey []byte `json:"data_key,omitempty"`
	*Status
}

// Status is what an agent says of itself.
type Status struct {
	// Vault is the path of the vault the agent was started for.
	Vault    string    `json:"vault"`
	VaultID  string    `json:"vault_id"`
	KeyCheck string    `json:"key_check"`
	PID      int       `json:"pid"`
	Started  time.Time `json:"started"`
	Expires  time.Time `json:"expires"`
	// LockedMemory says whether the key's memory is locked against
	// swapping (mlock); the OS may refuse (RLIMIT_MEMLOCK).
	LockedMemory bool `json:"locked_memory"`
}

// Holds reports whether the agent holds the data key of l.
func (s *Status) Holds(l vault.Lock) bool {
	return s.lock().Matches(l)
}

func (s *Status) lock() vault.Lock {
	id, _ := hex.DecodeString(s.VaultID)
	check, _ := hex.DecodeString(s.KeyCheck)
	return vault.Lock{ID: id, KeyCheck: check}
}

// ErrBadRequest reports a request line the agent cannot read.
var ErrBadRequest = errors.New("bad agent request")

// readRequest reads one request line from r: at most maxLine bytes, one
// JSON object with known fields, a known operation and, for a key, a
// well-formed Lock.
func readRequest(r io.Reader) (request, vault.Lock, error) {
	line, err := readLine(r)
	if err != nil {
		return request{}, vault.Lock{}, err
	}
	var req request
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return request{}, vault.Lock{}, fmt.Errorf("%w: %v", ErrBadRequest, err)
	}
	if dec.More() {
		return request{}, vault.Lock{}, fmt.Errorf("%w: more than one object", ErrBadRequest)
	}
	switch req.Op {
	case opStatus, opStop:
		return req, vault.Lock{}, nil
	case opKey:
		id, err1 := hex.DecodeString(req.VaultID)
		check, err2 := hex.DecodeString(req.KeyCheck)
		if err1 != nil || err2 != nil || len(id) != 16 || len(check) != 32 {
			return request{}, vault.Lock{}, fmt.Errorf("%w: a key request needs a 16-byte vault_id and a 32-byte key_check in hex", ErrBadRequest)
		}
		return req, vault.Lock{ID: id, KeyCheck: check}, nil
	default:
		return request{}, vault.Lock{}, fmt.Errorf("%w: unknown op %.20q", ErrBadRequest, req.Op)
	}
}

// readLine reads up to and without the first newline, at most maxLine
// bytes.
func readLine(r io.Reader) ([]byte, error) {
	br := bufio.NewReaderSize(io.LimitReader(r, maxLine+1), maxLine+1)
	line, err := br.ReadSlice('\n')
	switch {
	case errors.Is(err, bufio.ErrBufferFull), len(line) > maxLine:
		return nil, fmt.Errorf("%w: line over %d bytes", ErrBadRequest, maxLine)
	case err != nil && !errors.Is(err, io.EOF):
		return nil, err
	case len(line) == 0 || line[len(line)-1] != '\n':
		return nil, fmt.Errorf("%w: no complete line", ErrBadRequest)
	}
	return line[:len(line)-1], nil
}
