package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/keymint/keymint/vault"
)

// location is where the configured vault lives: its file, or, for a vault
// setting of etcd://HOST:PORT,.../PREFIX (etcds:// for TLS), a prefix of an
// etcd cluster reached with the etcd-* settings. The URL carries endpoints
// and the prefix only; TLS material and credentials come from settings, files
// or the environment, never argv.
func (a *app) location() (vault.Location, error) {
	return a.locationOf(a.cfg.Vault)
}

// locationOf is the location s names: a file path or an etcd URL.
func (a *app) locationOf(s string) (vault.Location, error) {
	if !vault.IsEtcdURL(s) {
		return vault.Location{File: s}, nil
	}
	cfg, err := vault.ParseEtcdURL(s)
	if errors.Is(err, vault.ErrEtcdURLCredentials) {
		return vault.Location{}, usagef("the etcd URL must not carry credentials (a user or password): set etcd-username in the config file or KEYMINT_ETCD_USERNAME, and the password in KEYMINT_ETCD_PASSWORD or the file named by etcd-password-file")
	}
	if err != nil {
		return vault.Location{}, usageError{err}
	}
	e := a.cfg.Etcd
	cfg.CAFile, cfg.CertFile, cfg.KeyFile = e.CA, e.Cert, e.Key
	cfg.Username = e.Username
	cfg.MaxTxnOps, cfg.MaxRequestBytes = e.MaxTxnOps, e.MaxRequestBytes
	cfg.Timeout = e.Timeout
	if cfg.Password, err = a.etcdPassword(); err != nil {
		return vault.Location{}, err
	}
	if cfg.Password != "" && cfg.Username == "" {
		return vault.Location{}, usagef("an etcd password is set but no etcd-username")
	}
	return vault.Location{Etcd: &cfg}, nil
}

// etcdPassword is KEYMINT_ETCD_PASSWORD, or the first line of the
// etcd-password-file setting, or "".
func (a *app) etcdPassword() (string, error) {
	if p := a.getenv("KEYMINT_ETCD_PASSWORD"); p != "" {
		return p, nil
	}
	if a.cfg.Etcd.PasswordFile == "" {
		return "", nil
	}
	f, err := os.Open(a.cfg.Etcd.PasswordFile)
	if err != nil {
		return "", fmt.Errorf("etcd password file: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	if !sc.Scan() || sc.Text() == "" {
		return "", fmt.Errorf("etcd password file %s: first line is empty", a.cfg.Etcd.PasswordFile)
	}
	return strings.TrimRight(sc.Text(), "\r"), nil
}

// openAt opens the vault at l and closes it when the command ends: a vault
// in etcd holds a connection.
func (a *app) openAt(l vault.Location, opts vault.Options) (*vault.Vault, error) {
	v, err := vault.OpenAt(l, opts)
	if err != nil {
		return nil, err
	}
	a.atExit = append(a.atExit, v.Close)
	return v, nil
}
