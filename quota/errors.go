package quota

import "errors"

// Sentinel errors of package quota. Errors returned by this package wrap one
// or more of them; test with [errors.Is]. Their own text is never shown: the
// wrapping error carries a full sentence about the input at fault.
var (
	// ErrInvalidPeriod means a period name is not one of second, minute,
	// hour, day or month (or a short form of one).
	ErrInvalidPeriod = errors.New("invalid period")

	// ErrInvalidLimit means a limit is not a positive count per valid
	// period, as in 8000/month.
	ErrInvalidLimit = errors.New("invalid limit")

	// ErrDuplicatePeriod means two limits share a period. Counts are kept
	// per period, so two such limits would contradict each other.
	ErrDuplicatePeriod = errors.New("two limits for the same period")

	// ErrNegativeCount means a used or extra count below zero was given;
	// counts only grow, so such a value points at a bug or damaged data.
	ErrNegativeCount = errors.New("negative count")

	// ErrNoLimit means a credential has no limit where one is needed, as
	// for a top-up, which adds to the current period of a limit.
	ErrNoLimit = errors.New("credential has no limit")

	// ErrInvalidPeriodKey means a period key, such as the 2026-11 of
	// "usage show --period 2026-11", is not one [Period.Key] makes.
	ErrInvalidPeriodKey = errors.New("invalid period key")

	// ErrLeaserClosed means [Leaser.Take] was called after [Leaser.Close].
	ErrLeaserClosed = errors.New("leaser is closed")
)

// detailError is an error whose message is written for a person and which
// still matches the sentinels (and any underlying error) it wraps.
// fmt.Errorf("...: %w", sentinel) would append the sentinel's terse text to
// every message; this keeps messages to the one sentence we mean.
type detailError struct {
	msg   string
	wraps []error
}

func (e *detailError) Error() string   { return e.msg }
func (e *detailError) Unwrap() []error { return e.wraps }

// newDetailError returns an error reading msg that matches every error in
// wraps under [errors.Is] and [errors.As].
func newDetailError(msg string, wraps ...error) error {
	return &detailError{msg: msg, wraps: wraps}
}
