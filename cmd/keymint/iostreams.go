package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/term"
)

// streams is all of keymint's terminal I/O: the three streams, and whether
// a person is at stdin. keymint prompts only when one is; its output is the
// same in a pipe (usage bars included), so scripts see what people see.
type streams struct {
	In    io.Reader
	Out   io.Writer
	Err   io.Writer
	inFd  int // -1 when In is not a file
	inTTY bool
}

func systemStreams() *streams {
	return &streams{
		In:    os.Stdin,
		Out:   os.Stdout,
		Err:   os.Stderr,
		inFd:  int(os.Stdin.Fd()),
		inTTY: term.IsTerminal(int(os.Stdin.Fd())),
	}
}

// canPrompt reports whether a person can answer a prompt.
func (s *streams) canPrompt() bool { return s.inTTY }

// readSecret prompts on stderr and reads a line with echo off.
func (s *streams) readSecret(prompt string) (string, error) {
	if !s.inTTY {
		return "", errors.New("no terminal to prompt on")
	}
	fmt.Fprint(s.Err, prompt)
	b, err := term.ReadPassword(s.inFd)
	fmt.Fprintln(s.Err)
	if err != nil {
		return "", fmt.Errorf("read from terminal: %w", err)
	}
	return string(b), nil
}

// readLine reads one line of stdin, without its line ending. It reads at
// most 64 KiB so a stray stream cannot exhaust memory.
func (s *streams) readLine() (string, error) {
	r := bufio.NewReader(io.LimitReader(s.In, 64<<10))
	line, err := r.ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read stdin: %w", err)
	}
	return strings.TrimRight(line, "\r\n"), nil
}
