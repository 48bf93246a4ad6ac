package rest

import (
	"context"
	"math"
	"net/http"
	"net/http/httptest"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestParseRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		header string
		want   time.Duration
		ok     bool
	}{
		{"", 0, false},
		{"7", 7 * time.Second, true},
		{" 0 ", 0, true},
		{"1.5", 0, false},
		{"-3", 0, false},
		{"Inf", 0, false},
		{"99999999999999999999", time.Duration(math.MaxInt64), true},
		{"soon", 0, false},
		{"Thu, 26 Nov 2026 12:00:30 GMT", 30 * time.Second, true},
		{"Thu, 26 Nov 2026 11:59:00 GMT", 0, true},
	}
	for _, tc := range cases {
		got, ok := ParseRetryAfter(tc.header, now)
		require.Equal(t, tc.ok, ok, tc.header)
		require.Equal(t, tc.want, got, tc.header)
	}
}

func TestVendorErrorShapes(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, body            string
		code, message, params string
	}{
		{"hubspot", `{"status":"error","message":"Contact already exists. Existing ID: 5","category":"CONFLICT"}`, "CONFLICT", "Contact already exists. Existing ID: 5", ""},
		{"stripe", `{"error":{"type":"invalid_request_error","message":"Invalid currency: zzz","param":"currency"}}`, "invalid_request_error", "Invalid currency: zzz", "currency"},
		{"slack", "invalid_payload", "", "invalid_payload", ""},
		{"empty", "", "", "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Retry-After", "3")
				w.WriteHeader(http.StatusBadRequest)
				_, _ = w.Write([]byte(tc.body))
			}))
			defer ts.Close()
			err := NewClient("x", ts.URL, HTTPClient(time.Second, 0), nil).Do(context.Background(), Request{Method: "POST", Path: "/v1/things", Body: map[string]int{"a": 1}}, nil)
			var e *Error
			require.ErrorAs(t, err, &e)
			require.Equal(t, http.StatusBadRequest, e.StatusCode)
			require.Equal(t, tc.code, e.Code)
			require.Equal(t, tc.message, e.Message)
			require.Equal(t, tc.params, e.Param)
			require.Equal(t, 3*time.Second, e.RetryAfter)
			require.Contains(t, err.Error(), "x POST /v1/things: HTTP 400")
		})
	}
}

func TestRequestCarriesHeadersAndDecodesResponse(t *testing.T) {
	t.Parallel()
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		require.Equal(t, "Bearer t", r.Header.Get("Authorization"))
		require.Equal(t, "k", r.Header.Get("Idempotency-Key"))
		require.Equal(t, "application/json", r.Header.Get("Content-Type"))
		_, _ = w.Write([]byte(`{"id":"9"}`))
	}))
	defer ts.Close()
	c := NewClient("x", ts.URL+"/", HTTPClient(time.Second, 0), http.Header{"Authorization": {"Bearer t"}})
	var out struct{ ID string }
	require.NoError(t, c.Do(context.Background(), Request{Method: "POST", Path: "/a", Header: http.Header{"Idempotency-Key": {"k"}}, Body: struct{}{}}, &out))
	require.Equal(t, "9", out.ID)
}

func TestTransportErrorsHideTheURL(t *testing.T) {
	t.Parallel()
	ts := httptest.NewServer(http.NotFoundHandler())
	ts.Close()
	c := NewClient("chat", "", HTTPClient(time.Second, 0), nil)
	err := c.Do(context.Background(), Request{Method: "POST", Path: ts.URL + "/services/T0/B0/secret-token"}, nil)
	require.Error(t, err)
	require.NotContains(t, err.Error(), "secret-token")
	var e *Error
	require.ErrorAs(t, err, &e)
	require.Zero(t, e.StatusCode)
}

func TestTimeout(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer ts.Close()
	defer close(release)
	err := NewClient("x", ts.URL, HTTPClient(50*time.Millisecond, 0), nil).Do(context.Background(), Request{Method: "GET", Path: "/"}, nil)
	var e *Error
	require.ErrorAs(t, err, &e)
	require.True(t, e.Timeout())
}

func FuzzParseRetryAfter(f *testing.F) {
	for _, seed := range []string{"", "0", "7", "1.5", "-1", "NaN", "Inf", "1e309", "Thu, 26 Nov 2026 12:00:30 GMT", "Mon, 02 Jan 2006"} {
		f.Add(seed)
	}
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, header string) {
		d, ok := ParseRetryAfter(header, now)
		if d < 0 || (!ok && d != 0) {
			t.Fatalf("ParseRetryAfter(%q) = %v, %v", header, d, ok)
		}
	})
}

func TestHTTPClientSpacesRequestsAtItsRate(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var arrivals []time.Time
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		arrivals = append(arrivals, time.Now())
		mu.Unlock()
	}))
	defer ts.Close()
	c := NewClient("x", ts.URL, HTTPClient(time.Second, 20), nil)
	var wg sync.WaitGroup
	for range 6 {
		wg.Go(func() { _ = c.Do(context.Background(), Request{Method: "GET", Path: "/"}, nil) })
	}
	wg.Wait()
	sort.Slice(arrivals, func(i, j int) bool { return arrivals[i].Before(arrivals[j]) })
	require.Len(t, arrivals, 6)
	// 20/s with no burst: six concurrent requests span at least five intervals of 50ms.
	require.GreaterOrEqual(t, arrivals[5].Sub(arrivals[0]), 5*45*time.Millisecond)
}
