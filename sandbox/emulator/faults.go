package emulator

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"math"
	"net/http"
	"path"
	"sort"
	"strings"
	"time"
)

// Duration is a time.Duration that reads and writes JSON as "1.5s".
type Duration time.Duration

// UnmarshalJSON accepts "250ms"-style strings and plain numbers of seconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		v, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("%q is not a duration like 250ms or 2s", s)
		}
		*d = Duration(v)
		return nil
	}
	var secs float64
	if err := json.Unmarshal(b, &secs); err != nil {
		return fmt.Errorf("%s is not a duration like \"250ms\" or a number of seconds", b)
	}
	*d = Duration(secs * float64(time.Second))
	return nil
}

// MarshalJSON writes the duration as a string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// Fault says how often an endpoint misbehaves, and how. Rates are fractions of
// requests, 0 to 1; together they must not exceed 1.
type Fault struct {
	// Rate429 answers 429 with Retry-After: RetryAfter (as seconds, or as an HTTP
	// date when RetryAfterDate is set).
	Rate429        float64  `json:"rate429,omitempty"`
	RetryAfter     Duration `json:"retryAfter,omitempty"`
	RetryAfterDate bool     `json:"retryAfterDate,omitempty"`
	// Rate5xx answers 500, 502 or 503.
	Rate5xx float64 `json:"rate5xx,omitempty"`
	// RateHang holds the request open until the client gives up.
	RateHang float64 `json:"rateHang,omitempty"`
	// RateReset closes the connection without a response.
	RateReset float64 `json:"rateReset,omitempty"`
	// AfterEffect is the share of 5xx, hang and reset faults that strike after the
	// request took effect: the case that tests a client's idempotency.
	AfterEffect float64 `json:"afterEffect,omitempty"`
	// Latency is added to every request.
	Latency Duration `json:"latency,omitempty"`
	// Unauthorized answers every request 401, as after a revoked token.
	Unauthorized bool `json:"unauthorized,omitempty"`
	// Down answers every request 503.
	Down bool `json:"down,omitempty"`
}

func (f Fault) validate() error {
	for name, r := range map[string]float64{"rate429": f.Rate429, "rate5xx": f.Rate5xx, "rateHang": f.RateHang, "rateReset": f.RateReset, "afterEffect": f.AfterEffect} {
		if r < 0 || r > 1 || math.IsNaN(r) {
			return fmt.Errorf("%s must be between 0 and 1, got %v", name, r)
		}
	}
	if sum := f.Rate429 + f.Rate5xx + f.RateHang + f.RateReset; sum > 1 {
		return fmt.Errorf("rates add up to %v; they must not exceed 1", sum)
	}
	if f.Latency < 0 || f.RetryAfter < 0 {
		return fmt.Errorf("latency and retryAfter must not be negative")
	}
	return nil
}

// Plan maps endpoint patterns to faults. A pattern is an endpoint name
// ("crm.create"), a glob ("crm.*") or "*"; the most specific match wins.
type Plan map[string]Fault

// ParsePlan reads a plan from JSON, checking every pattern and rate.
func ParsePlan(raw []byte) (Plan, error) {
	plan := Plan{}
	if len(strings.TrimSpace(string(raw))) == 0 {
		return plan, nil
	}
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&plan); err != nil {
		return nil, fmt.Errorf("fault plan: %w", err)
	}
	for pattern, f := range plan {
		if _, err := path.Match(pattern, ""); err != nil {
			return nil, fmt.Errorf("fault plan: pattern %q: %w", pattern, err)
		}
		if !matchesAny(pattern) {
			return nil, fmt.Errorf("fault plan: pattern %q matches no endpoint (endpoints: %s)", pattern, strings.Join(endpoints(), ", "))
		}
		if err := f.validate(); err != nil {
			return nil, fmt.Errorf("fault plan: %q: %w", pattern, err)
		}
	}
	return plan, nil
}

func matchesAny(pattern string) bool {
	for _, e := range endpoints() {
		if ok, _ := path.Match(pattern, e); ok {
			return true
		}
	}
	return false
}

// For returns the fault of an endpoint: the exact name first, then the longest
// matching glob.
func (p Plan) For(endpoint string) Fault {
	if f, ok := p[endpoint]; ok {
		return f
	}
	patterns := make([]string, 0, len(p))
	for pattern := range p {
		patterns = append(patterns, pattern)
	}
	sort.Slice(patterns, func(i, j int) bool { return len(patterns[i]) > len(patterns[j]) })
	for _, pattern := range patterns {
		if ok, _ := path.Match(pattern, endpoint); ok {
			return p[pattern]
		}
	}
	return Fault{}
}

// Injection is what the sandbox does to one request.
type Injection struct {
	Kind        string // "", "429", "5xx", "hang", "reset", "401", "down"
	Status      int
	AfterEffect bool
}

// decide picks the injection for the attempt-th request of identity at endpoint.
// It hashes the seed with those, so a request's fate does not depend on how
// concurrent requests interleave: the same seed reproduces the same faults.
func decide(seed int64, endpoint, identity string, attempt int, f Fault) Injection {
	if f.Unauthorized {
		return Injection{Kind: "401", Status: http.StatusUnauthorized}
	}
	if f.Down {
		return Injection{Kind: "down", Status: http.StatusServiceUnavailable}
	}
	u := unit(seed, endpoint, identity, attempt, "fault")
	after := unit(seed, endpoint, identity, attempt, "after") < f.AfterEffect
	switch {
	case u < f.Rate429:
		return Injection{Kind: "429", Status: http.StatusTooManyRequests}
	case u < f.Rate429+f.Rate5xx:
		codes := []int{http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable}
		pick := int(unit(seed, endpoint, identity, attempt, "code") * float64(len(codes)))
		return Injection{Kind: "5xx", Status: codes[pick], AfterEffect: after}
	case u < f.Rate429+f.Rate5xx+f.RateHang:
		return Injection{Kind: "hang", AfterEffect: after}
	case u < f.Rate429+f.Rate5xx+f.RateHang+f.RateReset:
		return Injection{Kind: "reset", AfterEffect: after}
	}
	return Injection{}
}

// unit hashes its inputs to a number in [0, 1).
func unit(seed int64, endpoint, identity string, attempt int, salt string) float64 {
	h := fnv.New64a()
	var buf [8]byte
	binary.LittleEndian.PutUint64(buf[:], uint64(seed))
	h.Write(buf[:])
	fmt.Fprintf(h, "\x00%s\x00%s\x00%d\x00%s", endpoint, identity, attempt, salt)
	return float64(h.Sum64()>>11) / (1 << 53)
}
