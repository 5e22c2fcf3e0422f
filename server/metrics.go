package server

import (
	"errors"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/keymint/keymint/quota"
	"github.com/keymint/keymint/token"
)

// Metrics.
//
// Every [Server] has a registry of its own ([Server.Registry]), never the
// global one, and serves it at GET /metrics in the Prometheus text format.
// Label values are bounded and never name a credential: routes are the
// route table's patterns, status codes are numbers, outcomes and grant
// types are fixed lists here, and store operations are the server's own
// names. No secret, token, client_id, key id, client or key name, or user
// name is ever a label value.
//
// The request path is hot (/verify takes some 5 µs in process): every
// child a request touches is resolved once, at New (routes, outcomes,
// grant types) or on first use of a status code on a route (a fixed array
// per route), never with WithLabelValues per request.

// Metric names.
const (
	metricRequests       = "keymint_http_requests_total"
	metricRequestSeconds = "keymint_http_request_duration_seconds"
	metricTokens         = "keymint_tokens_issued_total"
	metricQuotaRefusals  = "keymint_quota_refusals_total"
	metricVerify         = "keymint_verify_results_total"
	metricLeaseWaits     = "keymint_quota_lease_waits_total"
	metricLeaseRefills   = "keymint_quota_lease_reservations_total"
	metricLeasedUses     = "keymint_quota_leased_uses_total"
	metricReloads        = "keymint_vault_reloads_total"
	metricReloadSeconds  = "keymint_vault_reload_duration_seconds"
	metricGeneration     = "keymint_vault_generation"
	metricWatchLag       = "keymint_vault_watch_lag_seconds"
	metricStoreErrors    = "keymint_vault_errors_total"
	metricReady          = "keymint_ready"
)

// requestBuckets are the request latency buckets, 50 µs to 1 s: /verify
// is some 5 µs in process and tens over a network; /token signs (tens of
// µs to a millisecond); the user grants commit to the vault (milliseconds).
var requestBuckets = []float64{
	50e-6, 100e-6, 250e-6, 500e-6,
	1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3, 100e-3, 250e-3, 500e-3, 1,
}

// reloadBuckets are the buckets of reload durations and of the watch lag:
// a partial reload is a few point reads, a full one reads every record.
var reloadBuckets = []float64{
	100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3,
	100e-3, 250e-3, 500e-3, 1, 2.5, 5, 10,
}

// leaseWaitThreshold is how long counting a use may take before it is
// taken to have waited for a quota lease to be reserved in the vault: a
// use handed out from a lease in memory takes well under a microsecond,
// a reservation at least one vault transaction.
const leaseWaitThreshold = 200 * time.Microsecond

// Store operations, the op label of metricStoreErrors.
const (
	opReload   = "reload"    // a poll or reload of the vault
	opFlush    = "flush"     // last_used_at, written back
	opGiveBack = "give_back" // unused leased uses, given back
	opLease    = "lease"     // a quota lease reserved to count a use
	opRevoke   = "revoke"    // a revocation recorded
	opGrant    = "grant"     // a user grant's transaction (code, refresh)
)

var storeOps = []string{opReload, opFlush, opGiveBack, opLease, opRevoke, opGrant}

// Credential kinds, the kind label of the quota metrics.
const (
	kindClient = "client"
	kindAPIKey = "api_key"
)

// verifyOutcome is how /verify answered, the outcome label of metricVerify.
type verifyOutcome uint8

const (
	verifyAccepted       verifyOutcome = iota
	verifyNoKey                        // no key, an empty one, or another scheme
	verifyMalformed                    // not a key: malformed, mistyped, too long
	verifyInvalidRequest               // ambiguous: repeated or conflicting fields
	verifyUnknown                      // no key has this secret
	verifyRetired                      // a retired secret of a key
	verifyExpired
	verifyDisabled
	verifyRemoved     // removed while the use was being counted
	verifyOverLimit   // the key's usage limit is reached
	verifyThrottled   // too many failed checks from the caller's address
	verifyUnavailable // the use cannot be counted now (the vault)
	verifyMethod      // a method /verify/PATH does not serve
	numVerifyOutcomes
)

var verifyOutcomeNames = [numVerifyOutcomes]string{
	verifyAccepted:       "accepted",
	verifyNoKey:          "no_key",
	verifyMalformed:      "malformed",
	verifyInvalidRequest: "invalid_request",
	verifyUnknown:        "unknown",
	verifyRetired:        "retired",
	verifyExpired:        "expired",
	verifyDisabled:       "disabled",
	verifyRemoved:        "removed",
	verifyOverLimit:      "over_limit",
	verifyThrottled:      "throttled",
	verifyUnavailable:    "unavailable",
	verifyMethod:         "method_not_allowed",
}

// outcomeOf classifies a /verify refusal.
func outcomeOf(e *keyRequestError) verifyOutcome {
	switch {
	case e.status == http.StatusBadRequest:
		return verifyInvalidRequest
	case e.status == http.StatusServiceUnavailable:
		return verifyUnavailable
	case e.status == http.StatusTooManyRequests && e.code == errQuotaExceeded:
		return verifyOverLimit
	case e.status == http.StatusTooManyRequests:
		return verifyThrottled
	}
	for _, c := range []struct {
		err     error
		outcome verifyOutcome
	}{
		{errUnknownKey, verifyUnknown}, {errRetiredKey, verifyRetired},
		{errKeyExpired, verifyExpired}, {errKeyDisabled, verifyDisabled},
		{errKeyRemoved, verifyRemoved}, {errNoKey, verifyNoKey},
		{errNotBearer, verifyNoKey}, {errEmptyKey, verifyNoKey},
	} {
		if errors.Is(e.cause, c.err) {
			return c.outcome
		}
	}
	return verifyMalformed
}

// Labels of requests that matched no route (see routeLabel).
const (
	routeNone  = "(no route)"
	routeOther = "(other)"
)

// metrics are a server's collectors, and the children of them that
// requests use, resolved once.
type metrics struct {
	reg *prometheus.Registry

	requests       *prometheus.CounterVec
	requestSeconds *prometheus.HistogramVec
	// routes holds, by route label (see routeLabel), the children of
	// that route; it is not modified after newMetrics.
	routes map[string]*routeMetrics

	tokens        map[string]prometheus.Counter // by grant type
	quotaRefusals [2]prometheus.Counter         // client, api_key
	verify        [numVerifyOutcomes]prometheus.Counter
	leaseWaits    [2]prometheus.Counter // client, api_key
	// leaseReservations are by mode (on demand, ahead in the background),
	// leasedUses by event (reserved, given back).
	leaseReservations [2]prometheus.Counter
	leasedUses        [2]prometheus.Counter

	reloads       [2]prometheus.Counter // partial, full
	reloadSeconds prometheus.Observer
	generation    prometheus.Gauge
	watchLag      prometheus.Observer
	storeErrors   map[string]prometheus.Counter // by op
}

// routeMetrics are one route's children: its latency histogram, and its
// request counters by status code, made on first use of a code.
type routeMetrics struct {
	label   string
	seconds prometheus.Observer
	byCode  [500]atomic.Pointer[prometheus.Counter] // status 100 to 599
	vec     *prometheus.CounterVec
}

// observe counts a request answered with status in d.
func (rm *routeMetrics) observe(status int, d time.Duration) {
	if status == 0 {
		status = http.StatusOK // nothing written: net/http sends 200
	}
	rm.seconds.Observe(d.Seconds())
	if status < 100 || status > 599 {
		rm.vec.WithLabelValues(rm.label, "other").Inc()
		return
	}
	slot := &rm.byCode[status-100]
	c := slot.Load()
	if c == nil {
		n := rm.vec.WithLabelValues(rm.label, strconv.Itoa(status))
		slot.CompareAndSwap(nil, &n)
		c = slot.Load()
	}
	(*c).Inc()
}

func newMetrics(s *Server) *metrics {
	reg := prometheus.NewRegistry()
	f := func(c prometheus.Collector) { reg.MustRegister(c) }
	m := &metrics{reg: reg}

	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{Name: metricRequests,
		Help: "HTTP requests answered, by route (the route table's pattern, \"(no route)\" for an unknown path) and status code."},
		[]string{"route", "code"})
	m.requestSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: metricRequestSeconds,
		Help: "Time to answer an HTTP request, by route.", Buckets: requestBuckets}, []string{"route"})
	f(m.requests)
	f(m.requestSeconds)
	m.routes = map[string]*routeMetrics{}
	for _, label := range routeLabels() {
		m.routes[label] = &routeMetrics{label: label, vec: m.requests, seconds: m.requestSeconds.WithLabelValues(label)}
	}

	tokens := prometheus.NewCounterVec(prometheus.CounterOpts{Name: metricTokens,
		Help: "Access tokens issued by /token, by grant type."}, []string{"grant_type"})
	f(tokens)
	m.tokens = map[string]prometheus.Counter{}
	for _, g := range []string{token.GrantClientCredentials, token.GrantAuthorizationCode, token.GrantRefreshToken} {
		m.tokens[g] = tokens.WithLabelValues(g)
	}

	kinds := []string{kindClient, kindAPIKey}
	refusals := prometheus.NewCounterVec(prometheus.CounterOpts{Name: metricQuotaRefusals,
		Help: "Uses refused (429) because the credential's usage limit is reached, by credential kind."}, []string{"kind"})
	waits := prometheus.NewCounterVec(prometheus.CounterOpts{Name: metricLeaseWaits,
		Help: "Uses whose count waited for a quota lease to be reserved in the vault (a refill on the request's path, " +
			"the request's own or another's for the same credential), by credential kind. Refills made in the background are not counted."},
		[]string{"kind"})
	f(refusals)
	f(waits)
	for i, k := range kinds {
		m.quotaRefusals[i] = refusals.WithLabelValues(k)
		m.leaseWaits[i] = waits.WithLabelValues(k)
	}

	reservations := prometheus.NewCounterVec(prometheus.CounterOpts{Name: metricLeaseRefills,
		Help: "Blocks of uses reserved in the vault (quota lease refills), by mode: on_demand (a request waited for it) or ahead (in the background, before the lease ran out)."},
		[]string{"mode"})
	leased := prometheus.NewCounterVec(prometheus.CounterOpts{Name: metricLeasedUses,
		Help: "Uses reserved in the vault by quota leases, and unused ones given back, by event: reserved or given_back. Reserved minus given back is what was handed out, plus what is held now."},
		[]string{"event"})
	f(reservations)
	f(leased)
	m.leaseReservations[0], m.leaseReservations[1] = reservations.WithLabelValues("on_demand"), reservations.WithLabelValues("ahead")
	m.leasedUses[0], m.leasedUses[1] = leased.WithLabelValues("reserved"), leased.WithLabelValues("given_back")

	verify := prometheus.NewCounterVec(prometheus.CounterOpts{Name: metricVerify,
		Help: "Answers of /verify (and /verify/PATH), by outcome."}, []string{"outcome"})
	f(verify)
	for o, name := range verifyOutcomeNames {
		m.verify[o] = verify.WithLabelValues(name)
	}

	reloads := prometheus.NewCounterVec(prometheus.CounterOpts{Name: metricReloads,
		Help: "Snapshots of the vault built after a change, by kind: partial (the changed records) or full (everything)."},
		[]string{"kind"})
	f(reloads)
	m.reloads[0], m.reloads[1] = reloads.WithLabelValues("partial"), reloads.WithLabelValues("full")
	reloadSeconds := prometheus.NewHistogram(prometheus.HistogramOpts{Name: metricReloadSeconds,
		Help: "Time to read the changed records and build the next snapshot.", Buckets: reloadBuckets})
	m.generation = prometheus.NewGauge(prometheus.GaugeOpts{Name: metricGeneration,
		Help: "The vault generation the snapshot serves."})
	watchLag := prometheus.NewHistogram(prometheus.HistogramOpts{Name: metricWatchLag,
		Help:    "Time from a change notification (Options.Changes) to the snapshot with the change being served.",
		Buckets: reloadBuckets})
	f(reloadSeconds)
	f(m.generation)
	f(watchLag)
	m.reloadSeconds, m.watchLag = reloadSeconds, watchLag

	storeErrors := prometheus.NewCounterVec(prometheus.CounterOpts{Name: metricStoreErrors,
		Help: "Failed reads and writes of the vault, by operation: reload, flush (last_used_at), give_back " +
			"(unused leased uses), lease (counting a use), revoke, grant (a user grant's transaction)."},
		[]string{"op"})
	f(storeErrors)
	m.storeErrors = map[string]prometheus.Counter{}
	for _, op := range storeOps {
		m.storeErrors[op] = storeErrors.WithLabelValues(op)
	}

	f(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: metricReady,
		Help: "1 while /readyz answers 200, else 0."}, func() float64 {
		if s.readiness(s.now()) == "" {
			return 1
		}
		return 0
	}))
	return m
}

// routeLabels are every value of the route label: the patterns the mux
// and ServeHTTP set, the known paths a 405 is logged under, and
// routeNone and routeOther.
func routeLabels() []string {
	labels := []string{routeNone, routeOther, verifySubtreePattern}
	for _, r := range routeTable {
		if r.handle != nil {
			labels = append(labels, r.Method+" "+r.Path)
		}
	}
	for p := range knownPaths {
		labels = append(labels, p)
	}
	return labels
}

// route returns the children of the route labelled label.
func (m *metrics) route(label string) *routeMetrics {
	if rm := m.routes[label]; rm != nil {
		return rm
	}
	return m.routes[routeOther]
}

func kindIndex(kind string) int {
	if kind == kindAPIKey {
		return 1
	}
	return 0
}

// storeError counts a failed vault operation.
func (m *metrics) storeError(op string) { m.storeErrors[op].Inc() }

// leaseEvent counts what a quota lease reserved or gave back (the
// Leaser's Observe).
func (m *metrics) leaseEvent(e quota.LeaseEvent) {
	if e.Reserved > 0 {
		mode := 0
		if e.Refill {
			mode = 1
		}
		m.leaseReservations[mode].Inc()
		m.leasedUses[0].Add(float64(e.Reserved))
	}
	if e.GivenBack > 0 {
		m.leasedUses[1].Add(float64(e.GivenBack))
	}
}

// Registry returns the server's metrics registry, which GET /metrics
// serves. Register more collectors in it before serving, such as the Go
// runtime's and the process's (collectors.NewGoCollector,
// collectors.NewProcessCollector); it is the server's own, never
// prometheus.DefaultRegisterer.
func (s *Server) Registry() *prometheus.Registry { return s.metrics.reg }

// handler serves the registry in the Prometheus text format (or
// what the scraper negotiates).
func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// handleMetrics is GET /metrics.
func (s *Server) handleMetrics(w http.ResponseWriter, r *http.Request) {
	w.Header()["Cache-Control"] = noStoreValue
	s.metricsHandler.ServeHTTP(w, r)
}
