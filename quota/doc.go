// Package quota decides how many uses a credential has left.
//
// A credential (an API key or an OAuth client) may carry several limits, each
// N uses per calendar period in UTC: 10/second, 8000/month. A use is a token
// issued or a key verified. This package holds the pure logic of that rule:
//
//   - [Period] names a period length and finds the calendar period that
//     contains a moment ([Period.Start], [Period.End], [Period.Key]).
//   - [Limit] is one "N/period" rule; [ParseLimit] and [ParseLimits] read what
//     a person types after --limit, and [IsNone] recognises the word that
//     lifts a limit.
//   - [Statuses] turns limits and counted uses into a [Status] per limit;
//     [Allow] decides whether one more use fits, and [Tightest] picks the
//     status to advertise.
//   - [WriteHeaders] and [RetryAfter] render a status as the RateLimit-*
//     response fields and the Retry-After of a 429.
//
// # Time
//
// Nothing here reads the clock: every function that depends on the time of
// day takes it as an argument, so callers decide what "now" is and tests can
// pin it. All periods are calendar periods in UTC, whatever the location of
// the time passed in, so daylight saving never stretches or shrinks one.
//
// # What comes later
//
// Counting uses durably, and the leases through which keymint serve takes
// quota from the vault in small blocks inside a transaction, belong in this
// package too; they will be added here once the vault interface exists. Until
// then the package depends on the standard library alone.
package quota
