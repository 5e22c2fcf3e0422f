package server_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/keymint/keymint/apikey"
	"github.com/keymint/keymint/token"
	"github.com/keymint/keymint/vault"
)

// scrape is one GET /metrics, parsed.
type scrape struct {
	raw      string
	families map[string]*dto.MetricFamily
}

func (e *env) scrape(t testing.TB) scrape {
	t.Helper()
	w := e.do(t, request{method: http.MethodGet, path: "/metrics"})
	if w.Code != http.StatusOK {
		t.Fatalf("/metrics: %d %s", w.Code, w.Body)
	}
	if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("/metrics Content-Type %q, want the text format", ct)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(w.Body.String()))
	if err != nil {
		t.Fatalf("/metrics does not parse: %v\n%s", err, w.Body)
	}
	return scrape{raw: w.Body.String(), families: fams}
}

// value returns the value of the sample of metric name whose labels are
// labels (name=value pairs; others are not compared), summed over the
// samples that match; a histogram's value is its count.
func (s scrape) value(name string, labels ...string) float64 {
	f := s.families[name]
	if f == nil {
		return 0
	}
	var sum float64
	for _, m := range f.GetMetric() {
		match := true
		for i := 0; i+1 < len(labels); i += 2 {
			found := false
			for _, lp := range m.GetLabel() {
				if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
					found = true
				}
			}
			match = match && found
		}
		if !match {
			continue
		}
		switch {
		case m.Counter != nil:
			sum += m.GetCounter().GetValue()
		case m.Gauge != nil:
			sum += m.GetGauge().GetValue()
		case m.Histogram != nil:
			sum += float64(m.GetHistogram().GetSampleCount())
		}
	}
	return sum
}

// TestMetrics: GET /metrics serves the server's own registry in the text
// format, and its counters move with the requests: tokens issued, 429s
// over a limit by credential kind, /verify by outcome, requests by route
// and code with their latency, reloads and the generation served. No
// secret, client_id of a failed authentication, key or client name or
// token shows in it.
func TestMetrics(t *testing.T) {
	se := newStoreEnv(t)
	defer se.stop(t)
	before := se.scrape(t)
	for _, name := range []string{"keymint_http_request_duration_seconds", "keymint_verify_results_total", "keymint_tokens_issued_total",
		"keymint_vault_reloads_total", "keymint_vault_generation", "keymint_vault_errors_total", "keymint_quota_refusals_total"} {
		if before.families[name] == nil {
			t.Errorf("/metrics lacks %s", name)
		}
	}
	if got := before.value("keymint_verify_results_total", "outcome", "accepted"); got != 0 {
		t.Errorf("accepted before any /verify: %v", got)
	}

	// A credential of each kind with a limit of one use a day.
	one := []vault.Limit{{Count: 1, Period: "day"}}
	tiny := se.addKey(t, nil, vault.Key{Credential: vault.Credential{Name: "tiny", Scopes: []string{"api:read"}, Limits: one}})
	tinySecret := se.newSecret(t)
	tinyClient := vault.Client{Credential: vault.Credential{Name: "tinyclient", Scopes: []string{"api:read"}, Limits: one},
		GrantTypes: []string{token.GrantClientCredentials}, TokenTTL: time.Hour}
	if err := se.vault.Update(func(tx *vault.Tx) error { return tx.CreateClient(&tinyClient, tinySecret) }); err != nil {
		t.Fatal(err)
	}
	se.reload(t)

	accessToken := se.token(t, "metered", nil)
	form := url.Values{"grant_type": {"client_credentials"}}
	for i, want := range []int{http.StatusOK, http.StatusTooManyRequests} {
		if w := se.do(t, request{path: "/token", form: form, header: basic(tinyClient.ID, tinySecret)}); w.Code != want {
			t.Fatalf("/token of the tiny client, %d: %d, want %d", i, w.Code, want)
		}
	}
	// A failed authentication with a client_id nobody has.
	const strangerID = "stranger-client-id-4711"
	if w := se.do(t, request{path: "/token", form: form, header: basic(strangerID, "wrong-secret-0815")}); w.Code != http.StatusUnauthorized {
		t.Fatalf("/token of a stranger: %d", w.Code)
	}
	for i, want := range []int{http.StatusOK, http.StatusTooManyRequests} {
		if code, _ := se.verifyStatus(t, tiny.secret); code != want {
			t.Fatalf("/verify of the tiny key, %d: %d, want %d", i, code, want)
		}
	}
	if code, _ := se.verifyStatus(t, se.meterKey.secret); code != http.StatusOK {
		t.Fatalf("/verify: %d", code)
	}
	unknown, err := apikey.Generate("km")
	if err != nil {
		t.Fatal(err)
	}
	if code, _ := se.verifyStatus(t, unknown); code != http.StatusUnauthorized {
		t.Fatalf("/verify of an unknown key: %d", code)
	}
	// The unknown key mistyped: its checksum fails.
	last := byte('A')
	if unknown[len(unknown)-1] == last {
		last = 'B'
	}
	mistyped := unknown[:len(unknown)-1] + string(last)
	if code, _ := se.verifyStatus(t, mistyped); code != http.StatusUnauthorized {
		t.Fatalf("/verify of a mistyped key: %d", code)
	}
	if w := se.do(t, request{method: http.MethodGet, path: "/no/such/path?token=" + accessToken}); w.Code != http.StatusNotFound {
		t.Fatalf("unknown path: %d", w.Code)
	}

	after := se.scrape(t)
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"keymint_tokens_issued_total", []string{"grant_type", "client_credentials"}, 2},
		{"keymint_tokens_issued_total", []string{"grant_type", "refresh_token"}, 0},
		{"keymint_quota_refusals_total", []string{"kind", "client"}, 1},
		{"keymint_quota_refusals_total", []string{"kind", "api_key"}, 1},
		{"keymint_verify_results_total", []string{"outcome", "accepted"}, 2},
		{"keymint_verify_results_total", []string{"outcome", "over_limit"}, 1},
		{"keymint_verify_results_total", []string{"outcome", "unknown"}, 1},
		{"keymint_verify_results_total", []string{"outcome", "malformed"}, 1},
		{"keymint_http_requests_total", []string{"route", "POST /token", "code", "200"}, 2},
		{"keymint_http_requests_total", []string{"route", "POST /token", "code", "429"}, 1},
		{"keymint_http_requests_total", []string{"route", "POST /token", "code", "401"}, 1},
		{"keymint_http_requests_total", []string{"route", "GET /verify", "code", "200"}, 2},
		{"keymint_http_requests_total", []string{"route", "GET /verify", "code", "401"}, 2},
		{"keymint_http_requests_total", []string{"route", "(no route)", "code", "404"}, 1},
		{"keymint_http_requests_total", []string{"route", "GET /metrics", "code", "200"}, 1},
		{"keymint_http_request_duration_seconds", []string{"route", "GET /verify"}, 5},
		{"keymint_http_request_duration_seconds", []string{"route", "POST /token"}, 4},
		{"keymint_vault_reloads_total", []string{"kind", "partial"}, 1},
	} {
		if got := after.value(c.name, c.labels...) - before.value(c.name, c.labels...); got != c.want {
			t.Errorf("%s%v moved by %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	gen, err := se.vault.Generation()
	if err != nil {
		t.Fatal(err)
	}
	if got := after.value("keymint_vault_generation"); got != float64(gen) {
		t.Errorf("keymint_vault_generation = %v, want %d", got, gen)
	}
	if after.value("keymint_vault_reload_duration_seconds") < 1 {
		t.Error("no reload duration observed")
	}
	// The tiny client and key, and the metered ones, each reserved a
	// block of uses in the vault on demand; none was given back yet.
	if got := after.value("keymint_quota_lease_reservations_total", "mode", "on_demand") -
		before.value("keymint_quota_lease_reservations_total", "mode", "on_demand"); got < 4 {
		t.Errorf("lease reservations on demand moved by %v, want at least 4", got)
	}
	if got := after.value("keymint_quota_leased_uses_total", "event", "reserved") -
		before.value("keymint_quota_leased_uses_total", "event", "reserved"); got < 4 {
		t.Errorf("leased uses reserved moved by %v, want at least 4", got)
	}

	// Nothing that names or opens a credential.
	leaks := append([]string{accessToken, strangerID, "wrong-secret-0815", unknown, mistyped,
		tiny.id, tiny.name, tinyClient.ID, tinyClient.Name, se.metered.id, "metered", se.meterKey.id, "meter\""}, se.secrets...)
	for _, s := range leaks {
		if strings.Contains(after.raw, s) {
			t.Errorf("/metrics shows %q", s)
		}
	}
}

// TestMetricsRegistryIsTheServers: each server has its own registry, and
// collectors registered in it are served.
func TestMetricsRegistryIsTheServers(t *testing.T) {
	a, b := newStoreEnv(t), newStoreEnv(t)
	defer a.stop(t)
	defer b.stop(t)
	if a.srv.Registry() == b.srv.Registry() {
		t.Fatal("two servers share a registry")
	}
	if code, _ := a.verifyStatus(t, a.meterKey.secret); code != http.StatusOK {
		t.Fatalf("/verify: %d", code)
	}
	if got := b.scrape(t).value("keymint_verify_results_total", "outcome", "accepted"); got != 0 {
		t.Errorf("the other server's /metrics counted a /verify: %v", got)
	}
}
