// Package quota decides how many uses a credential has left.
//
// A credential (an API key or an OAuth client) may carry several limits, each
// N uses per calendar period in UTC: 10/second, 8000/month. A use is a token
// issued or a key verified. The rule itself is pure logic, with no storage:
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
// Nothing here reads the clock on its own: every function that depends on
// the time of day takes it as an argument, and a [Leaser] takes a clock, so
// callers decide what "now" is and tests can pin it. All periods are calendar periods in UTC, whatever the location of
// the time passed in, so daylight saving never stretches or shrinks one.
//
// # Counting
//
// Uses are counted in the vault, in the caller's transaction:
//
//   - [Consume] asks for one use of a credential, counts it if every limit
//     allows it and reports a [Decision]; it is what "keymint key verify"
//     and "keymint token issue" call, each in its one write transaction.
//   - [Current] reports where a credential's limits stand, [TopUp] adds
//     extra uses to the current period of its longest limit, and [History]
//     reads its per-day counts.
//   - [LimitsOf] and [StoredLimits] convert between [Limit] and the
//     [vault.Limit] a credential stores; [ParsePeriodKey] reads the name of
//     a past period, such as 2026-11.
//
// A [Leaser] serves a long-running server: it reserves uses in small blocks
// inside a vault transaction and hands them out from memory, so counts stay
// exact and no crash or concurrent process lets a credential exceed a limit.
//
// Every use is counted in the current day and month as well as in the
// periods of the credential's limits, so "keymint usage show" can report a
// credential's use with or without a limit, and per day.
package quota
