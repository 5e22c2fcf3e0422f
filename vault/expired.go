package vault

import (
	"errors"
	"fmt"
	"time"
)

// ErrExpired means a credential's expiry has passed, so it can no longer be
// used, nor given a new secret. It is wrapped by [ExpiredError].
var ErrExpired = errors.New("credential has expired")

// ExpiredError names the credential that has expired, and when.
type ExpiredError struct {
	Kind      Kind
	ID, Name  string
	ExpiresAt time.Time
}

func (e *ExpiredError) Error() string {
	return fmt.Sprintf("%s %s expired %s", e.Kind, e.Name, e.ExpiresAt.UTC().Format(time.RFC3339))
}

func (e *ExpiredError) Unwrap() error { return ErrExpired }
