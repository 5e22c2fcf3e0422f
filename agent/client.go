package agent

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"syscall"
	"time"

	"github.com/keymint/keymint/vault"
)

// ErrNoAgent reports that no agent answers at the socket: none was started,
// or it ended. Commands then unlock as they would without one.
var ErrNoAgent = errors.New("no agent is running for this vault")

// The agent's refusals of a key request.
var (
	// ErrStaleKey: the agent holds this vault's key from before a rekey.
	ErrStaleKey = errors.New("the agent holds this vault's data key from before a rekey: run keymint agent stop, then keymint agent start")
	// ErrOtherVault: the agent at this socket holds another vault's key.
	ErrOtherVault = errors.New("the agent at this socket holds another vault's key")
)

// clientTimeout bounds a whole exchange with an agent.
const clientTimeout = 5 * time.Second

// Key asks the agent at path for the data key of the vault with lock l.
func Key(path string, l vault.Lock) ([]byte, error) {
	resp, err := exchange(path, request{Op: opKey, VaultID: hex.EncodeToString(l.ID), KeyCheck: hex.EncodeToString(l.KeyCheck)})
	if err != nil {
		return nil, err
	}
	switch resp.Refused {
	case "":
	case refusedStaleKey:
		return nil, ErrStaleKey
	case refusedOtherVault:
		return nil, ErrOtherVault
	default:
		return nil, fmt.Errorf("the agent refused: %.40q", resp.Refused)
	}
	if len(resp.DataKey) != 32 {
		clear(resp.DataKey)
		return nil, errors.New("the agent answered without a key")
	}
	return resp.DataKey, nil
}

// GetStatus asks the agent at path what it holds.
func GetStatus(path string) (*Status, error) {
	return statusOf(exchange(path, request{Op: opStatus}))
}

// Stop tells the agent at path to wipe its key and exit, and returns what
// it held.
func Stop(path string) (*Status, error) {
	return statusOf(exchange(path, request{Op: opStop}))
}

func statusOf(resp *response, err error) (*Status, error) {
	if err != nil {
		return nil, err
	}
	if resp.Status == nil {
		return nil, fmt.Errorf("the agent refused: %.40q", resp.Refused)
	}
	return resp.Status, nil
}

// exchange sends one request to the agent at path and reads its answer.
func exchange(path string, req request) (*response, error) {
	c, err := net.DialTimeout("unix", path, clientTimeout)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ECONNREFUSED) {
		return nil, ErrNoAgent
	}
	if err != nil {
		return nil, fmt.Errorf("reach the agent: %w", err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(clientTimeout))
	b, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	if _, err := c.Write(append(b, '\n')); err != nil {
		return nil, fmt.Errorf("ask the agent: %w", err)
	}
	line, err := readLine(c)
	if err != nil {
		return nil, fmt.Errorf("the agent's answer: %w", err)
	}
	defer clear(line)
	var resp response
	if err := json.Unmarshal(line, &resp); err != nil {
		return nil, fmt.Errorf("the agent's answer: %w", err)
	}
	return &resp, nil
}
