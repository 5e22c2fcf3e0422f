package main

import (
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/keymint/keymint/apikey"
	"github.com/keymint/keymint/token"
)

// parseScopes splits each --scope value on spaces and commas, as OAuth
// writes scope lists, drops duplicates and checks each scope token with
// token.ValidScope, the rule the token endpoint and the signer apply; a
// scope shaped like a keymint secret or a JWT is refused.
func parseScopes(values []string) ([]string, error) {
	var out []string
	for _, v := range values {
		for _, s := range strings.FieldsFunc(v, func(r rune) bool { return r == ' ' || r == ',' || r == '\t' }) {
			if !token.ValidScope(s) {
				return nil, usagef("invalid scope %q: use printable ASCII without quotes or backslashes", s)
			}
			if len(apikey.FindSecrets(s)) > 0 {
				// A pasted secret would be stored and shown as the
				// credential's data.
				return nil, usagef("invalid scope %q: it looks like a secret or a token", apikey.Mask(s))
			}
			if !slices.Contains(out, s) {
				out = append(out, s)
			}
		}
	}
	return out, nil
}

// parseAudiences reads --audience values by token.Audiences, the rule the
// token endpoint applies to its audience parameter: each value is one
// audience taken whole, never split on commas or spaces ("urn:x,y" is one
// audience), and a repeated one counts once. The flag repeats for several.
// An empty value, or one shaped like a keymint secret or a JWT, is refused.
func parseAudiences(values []string) ([]string, error) {
	for _, a := range values {
		if a == "" {
			return nil, usagef("invalid --audience \"\": give a URI or a name")
		}
		if len(apikey.FindSecrets(a)) > 0 {
			return nil, usagef("invalid --audience %q: it looks like a secret or a token", apikey.Mask(a))
		}
	}
	return token.Audiences(values), nil
}

// parseExpiry reads --expires: a duration from now (90d, 12h, 1h30m) or an
// RFC 3339 time or date. It must lie in the future.
func parseExpiry(s string, now time.Time) (*time.Time, error) {
	if s == "" {
		return nil, nil
	}
	var t time.Time
	if d, err := parseDuration(s); err == nil {
		t = now.Add(d)
	} else if ts, err := time.Parse(time.RFC3339, s); err == nil {
		t = ts
	} else if ts, err := time.Parse(time.DateOnly, s); err == nil {
		t = ts
	} else {
		return nil, usagef("invalid --expires %q: use a duration such as 90d or 12h, or a date such as 2027-01-31", s)
	}
	if !t.After(now) {
		return nil, usagef("--expires %q is in the past: give a future date or a positive duration", s)
	}
	t = t.UTC()
	return &t, nil
}

// parseDuration is time.ParseDuration plus a whole-number 'd' for days.
func parseDuration(s string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil {
			return 0, fmt.Errorf("invalid duration %q", s)
		}
		if n < 0 || n > 100*365 {
			return 0, fmt.Errorf("duration %q out of range", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q", s)
	}
	return d, nil
}

// durationValue is a duration flag that also takes whole days ("7d"), as
// --expires does; a plain time.Duration flag would refuse them.
type durationValue time.Duration

// durationVar defines a duration flag on f that reads days too.
func durationVar(f *pflag.FlagSet, p *time.Duration, name string, value time.Duration, usage string) {
	*p = value
	f.Var((*durationValue)(p), name, usage)
}

func (d *durationValue) Set(s string) error {
	v, err := parseDuration(s)
	if err != nil {
		return err
	}
	*d = durationValue(v)
	return nil
}

func (d *durationValue) String() string {
	if *d == 0 {
		return "0" // pflag shows no default for "0"
	}
	return shortDuration(time.Duration(*d))
}

func (d *durationValue) Type() string { return "duration" }

// parseURL checks a URL given for a client: absolute, http or https.
func parseURL(flag, s string) error {
	u, err := url.Parse(s)
	if err != nil || !u.IsAbs() || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return usagef("invalid %s %q: give an absolute http or https URL", flag, s)
	}
	return nil
}
