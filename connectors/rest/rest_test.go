package rest

import (
	"context"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
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

// sentAt reads the send time the client stamped on a request.
func sentAt(t *testing.T, r *http.Request) time.Time {
	at, err := time.Parse(time.RFC3339Nano, r.Header.Get(SentAtHeader))
	require.NoError(t, err, "every request carries its send time")
	return at
}

// sendRecorder is a server that records when each request says it was sent;
// sendTimes returns them in order.
func sendRecorder(t *testing.T) (ts *httptest.Server, sendTimes func() []time.Time) {
	var mu sync.Mutex
	var sent []time.Time
	ts = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		sent = append(sent, sentAt(t, r))
		mu.Unlock()
	}))
	t.Cleanup(ts.Close)
	return ts, func() []time.Time {
		mu.Lock()
		defer mu.Unlock()
		out := slices.Clone(sent)
		slices.SortFunc(out, func(a, b time.Time) int { return a.Compare(b) })
		return out
	}
}

func TestHTTPClientSpacesRequestsAtItsRate(t *testing.T) {
	t.Parallel()
	ts, sendTimes := sendRecorder(t)
	c := NewClient("x", ts.URL, HTTPClient(time.Second, 20), nil)
	var wg sync.WaitGroup
	for range 6 {
		wg.Go(func() { require.NoError(t, c.Do(context.Background(), Request{Method: "GET", Path: "/"}, nil)) })
	}
	wg.Wait()
	sent := sendTimes()
	require.Len(t, sent, 6)
	// 20/s with no burst: every send at least 50ms after the one before.
	for i := 1; i < len(sent); i++ {
		require.GreaterOrEqual(t, sent[i].Sub(sent[i-1]), 50*time.Millisecond)
	}
}

// slotsOf is a shared spacing of its own: like two processes' clients, each
// reservation is interval after the one before.
type slotsOf struct {
	mu   sync.Mutex
	last time.Time
}

func (s *slotsOf) Reserve(_ context.Context, interval time.Duration) (time.Time, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	next := s.last.Add(interval)
	if now := time.Now(); now.After(next) {
		next = now
	}
	s.last = next
	return next, nil
}

func TestClientsSharingSlotsStayUnderOneRateTogether(t *testing.T) {
	t.Parallel()
	ts, sendTimes := sendRecorder(t)
	slots := &slotsOf{}
	// Two clients, as in two worker processes, each allowed 20/s.
	clients := []*Client{NewClient("x", ts.URL, SharedHTTPClient(time.Second, 20, slots), nil), NewClient("x", ts.URL, SharedHTTPClient(time.Second, 20, slots), nil)}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			require.NoError(t, clients[i%2].Do(context.Background(), Request{Method: "GET", Path: "/"}, nil))
		})
	}
	wg.Wait()
	sent := sendTimes()
	require.Len(t, sent, 8)
	for i := 1; i < len(sent); i++ {
		// A send leaves a little after its slot (a timer's lateness, more so
		// under -race): two clients may come that much closer than 1/rate.
		require.GreaterOrEqual(t, sent[i].Sub(sent[i-1]), 40*time.Millisecond, "20/s together, not 20/s each")
	}
}

// pausingServer answers its first request with status and Retry-After, and
// every later one 200; it reports when it sent the pause and when each later
// request was sent.
func pausingServer(t *testing.T, status int, retryAfter string) (url string, paused func() time.Time, later <-chan time.Time) {
	var mu sync.Mutex
	var pausedAt time.Time
	sends := make(chan time.Time, 10)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if pausedAt.IsZero() {
			pausedAt = time.Now()
			w.Header().Set("Retry-After", retryAfter)
			w.WriteHeader(status)
			return
		}
		sends <- sentAt(t, r)
	}))
	t.Cleanup(ts.Close)
	return ts.URL, func() time.Time { mu.Lock(); defer mu.Unlock(); return pausedAt }, sends
}

// A Retry-After holds back every request to the target, not only the one it
// answered: the next request is sent no sooner than the target asked.
func TestRetryAfterPausesTheWholeTarget(t *testing.T) {
	t.Parallel()
	for _, status := range []int{http.StatusTooManyRequests, http.StatusServiceUnavailable} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			t.Parallel()
			url, paused, later := pausingServer(t, status, "1")
			c := NewClient("x", url, HTTPClient(5*time.Second, 0), nil)
			var e *Error
			require.ErrorAs(t, c.Do(context.Background(), Request{Method: "POST", Path: "/a"}, nil), &e)
			require.Equal(t, status, e.StatusCode)
			require.NoError(t, c.Do(context.Background(), Request{Method: "GET", Path: "/other"}, nil), "another request waits, then goes")
			sent := <-later
			require.False(t, sent.Before(paused().Add(time.Second)), "sent %s after the pause began, before its second ended", sent.Sub(paused()))
			require.Less(t, sent.Sub(paused()), 3*time.Second, "sent once the pause ended")
		})
	}
}

// A request waiting on the pause gives up with its context, and one whose
// deadline comes before the pause ends is not sent at all: it fails at once,
// saying how long the pause has left.
func TestPausedRequestsRespectTheirContext(t *testing.T) {
	t.Parallel()
	url, _, later := pausingServer(t, http.StatusTooManyRequests, "60")
	c := NewClient("x", url, HTTPClient(0, 0), nil)
	require.Error(t, c.Do(context.Background(), Request{Method: "GET", Path: "/"}, nil))

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Do(ctx, Request{Method: "GET", Path: "/"}, nil) }()
	cancel()
	require.ErrorIs(t, <-done, context.Canceled)

	ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	started := time.Now()
	err := c.Do(ctx, Request{Method: "GET", Path: "/"}, nil)
	require.Less(t, time.Since(started), time.Second, "not held until its 10s timeout")
	var e *Error
	require.ErrorAs(t, err, &e)
	require.Zero(t, e.StatusCode)
	require.True(t, e.RateLimited())
	require.True(t, e.HasRetryAfter)
	require.InDelta(t, 60*time.Second, e.RetryAfter, float64(5*time.Second))
	require.Contains(t, err.Error(), "not sent")
	require.Empty(t, later, "nothing reached the target during the pause")
}

// lateSlots hands out a first slot already well past (as when the process
// stalled before it could send), then slots in the future.
type lateSlots struct {
	mu       sync.Mutex
	reserved []time.Time
}

func (s *lateSlots) Reserve(_ context.Context, interval time.Duration) (time.Time, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	at := time.Now().Add(-3 * interval)
	if len(s.reserved) > 0 {
		at = s.reserved[len(s.reserved)-1].Add(4 * interval)
	}
	s.reserved = append(s.reserved, at)
	return at, nil
}

// A client that comes to its slot late does not send then, close behind
// the next slot's request: it takes a later slot and sends at that.
func TestASendLateForItsSlotTakesAnother(t *testing.T) {
	t.Parallel()
	ts, sendTimes := sendRecorder(t)
	slots := &lateSlots{}
	c := NewClient("x", ts.URL, SharedHTTPClient(time.Second, 20, slots), nil)
	require.NoError(t, c.Do(context.Background(), Request{Method: "GET", Path: "/"}, nil))
	require.Len(t, slots.reserved, 2, "the late slot is given up for another")
	sent := sendTimes()
	require.Len(t, sent, 1)
	require.False(t, sent[0].Before(slots.reserved[1]), "sent at the second slot, not the late first")
}
