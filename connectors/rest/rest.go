// Package rest is the one JSON-over-HTTP client that signalbox's connectors
// share, so every external call gets the same timeouts, headers and typed errors.
package rest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// maxBody bounds how much of a response is read.
const maxBody = 1 << 20

// Client calls one external system.
type Client struct {
	// Target names the system in errors: "crm", "chat".
	Target string
	// BaseURL prefixes relative paths.
	BaseURL string
	// HTTP sends the requests; its Timeout bounds each call.
	HTTP *http.Client
	// Header is sent with every request (for example Authorization).
	Header http.Header
	// Now tells the time for Retry-After dates. Default: time.Now.
	Now func() time.Time
}

// NewClient returns a client for one target over hc (see HTTPClient).
func NewClient(target, baseURL string, hc *http.Client, header http.Header) *Client {
	return &Client{Target: target, BaseURL: strings.TrimSuffix(baseURL, "/"), HTTP: hc, Header: header}
}

// HTTPClient returns an http.Client of its own for one target: each request
// bounded by timeout and sent through a gate (see gate) that spaces this
// process's requests at perSecond (when > 0) and pauses them all while the
// target has asked us to wait.
func HTTPClient(timeout time.Duration, perSecond float64) *http.Client {
	return &http.Client{Timeout: timeout, Transport: newGate(http.DefaultTransport.(*http.Transport).Clone(), perSecond)}
}

// SharedHTTPClient is HTTPClient whose sends are also spaced with every
// other process that reserves from slots: at most perSecond in all.
func SharedHTTPClient(timeout time.Duration, perSecond float64, slots Slots) *http.Client {
	g := newGate(http.DefaultTransport.(*http.Transport).Clone(), perSecond)
	g.slots = slots
	return &http.Client{Timeout: timeout, Transport: g}
}

// Observed makes hc, a client of HTTPClient or SharedHTTPClient, tell
// observer of every request's wait and answer; it returns hc.
func Observed(hc *http.Client, observer Observer) *http.Client {
	if g, ok := hc.Transport.(*gate); ok && observer != nil {
		g.observer = observer
	}
	return hc
}

// Request is one call.
type Request struct {
	Method string
	// Path is relative to BaseURL, or an absolute URL.
	Path string
	// Header adds to the client's headers.
	Header http.Header
	// Body is sent as JSON when not nil.
	Body any
}

// Do sends req and decodes a 2xx JSON response into out (when out is not nil).
// Any failure is returned as *Error.
func (c *Client) Do(ctx context.Context, req Request, out any) error {
	op := req.Method + " " + pathOnly(req.Path)
	fail := func(status int, err error) *Error {
		return &Error{Target: c.Target, Op: op, StatusCode: status, Err: err}
	}
	target := req.Path
	if !strings.HasPrefix(target, "http://") && !strings.HasPrefix(target, "https://") {
		target = c.BaseURL + target
	}
	var body io.Reader
	if req.Body != nil {
		b, err := json.Marshal(req.Body)
		if err != nil {
			return fail(0, fmt.Errorf("encode request: %w", err))
		}
		body = bytes.NewReader(b)
	}
	hreq, err := http.NewRequestWithContext(ctx, req.Method, target, body)
	if err != nil {
		return fail(0, err)
	}
	for k, vs := range c.Header {
		hreq.Header[k] = vs
	}
	for k, vs := range req.Header {
		hreq.Header[k] = vs
	}
	hreq.Header.Set("Accept", "application/json")
	hreq.Header.Set("User-Agent", "signalbox/1")
	if body != nil {
		hreq.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.HTTP.Do(hreq)
	if err != nil {
		return TransportError(c.Target, op, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return fail(resp.StatusCode, fmt.Errorf("read response: %w", err))
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		e := &Error{Target: c.Target, Op: op, StatusCode: resp.StatusCode}
		e.Code, e.Message, e.Param = vendorMessage(raw)
		e.RetryAfter, e.HasRetryAfter = ParseRetryAfter(resp.Header.Get("Retry-After"), c.now())
		return e
	}
	if out == nil || len(raw) == 0 {
		return nil
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fail(resp.StatusCode, fmt.Errorf("decode response: %w", err))
	}
	return nil
}

func (c *Client) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

// pathOnly keeps the path of a URL so that errors never carry a webhook's secret
// path segments or query parameters: "/services/…" stays generic.
func pathOnly(p string) string {
	u, err := url.Parse(p)
	if err != nil {
		return "?"
	}
	if u.Host != "" {
		return u.Host
	}
	return u.Path
}

// vendorMessage pulls a code, message and parameter out of the JSON error shapes
// of HubSpot ({"category","message"}), Stripe ({"error":{"type","message","param"}})
// and Slack (plain text such as "invalid_payload").
func vendorMessage(raw []byte) (code, message, param string) {
	var body struct {
		Category string `json:"category"`
		Message  string `json:"message"`
		Error    *struct {
			Type    string `json:"type"`
			Code    string `json:"code"`
			Message string `json:"message"`
			Param   string `json:"param"`
		} `json:"error"`
	}
	if json.Unmarshal(raw, &body) == nil {
		if body.Error != nil {
			return body.Error.Type, body.Error.Message, body.Error.Param
		}
		if body.Message != "" || body.Category != "" {
			return body.Category, body.Message, ""
		}
	}
	text := strings.TrimSpace(string(raw))
	if len(text) > 200 {
		text = text[:200] + "…"
	}
	return "", text, ""
}

// ParseRetryAfter reads a Retry-After header, given in seconds or as an HTTP date.
func ParseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if isDigits(v) { // delay-seconds = 1*DIGIT (RFC 9110)
		secs, err := strconv.ParseInt(v, 10, 64)
		if err != nil || secs > int64(math.MaxInt64/time.Second) {
			return time.Duration(math.MaxInt64), true // absurdly far: the caller caps it
		}
		return time.Duration(secs) * time.Second, true
	}
	if at, err := http.ParseTime(v); err == nil {
		return max(at.Sub(now), 0), true
	}
	return 0, false
}

// TransportError is a call that got no response. *url.Error repeats the whole
// URL, which may carry a secret (webhooks), so only its cause is kept. A call
// the gate held back keeps the time left before the target's pause ends.
func TransportError(target, op string, err error) *Error {
	var uerr *url.Error
	if errors.As(err, &uerr) {
		err = uerr.Err
	}
	e := &Error{Target: target, Op: op, Err: err}
	var paused *PausedError
	if errors.As(err, &paused) {
		e.RetryAfter, e.HasRetryAfter = paused.Left, true
	}
	return e
}

func isDigits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return s != ""
}

// Error is a failed call. StatusCode is zero when no response arrived.
type Error struct {
	Target     string
	Op         string
	StatusCode int
	// Code and Message are the vendor's; Param names the field at fault, if any.
	Code    string
	Message string
	Param   string
	// RetryAfter is how long the server asked us to wait (HasRetryAfter says whether it did).
	RetryAfter    time.Duration
	HasRetryAfter bool
	// Idempotency is true when the target refused the request for its
	// idempotency key (Stripe's idempotency_error): 409 while the key's first
	// request is still running, 400 when the key was used with other parameters.
	Idempotency bool
	// Err is the transport or decoding failure, if that is what happened.
	Err error
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s: ", e.Target, e.Op)
	switch {
	case e.StatusCode != 0 && e.Err == nil:
		fmt.Fprintf(&b, "HTTP %d", e.StatusCode)
		if e.Code != "" {
			fmt.Fprintf(&b, " %s", e.Code)
		}
		if e.Message != "" {
			fmt.Fprintf(&b, ": %s", e.Message)
		}
		if e.Param != "" {
			fmt.Fprintf(&b, " (parameter %s)", e.Param)
		}
	case e.Err != nil:
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// RateLimited reports whether the target asked us to slow down: it answered
// 429, or the call was not sent because the target's pause outlasts it.
func (e *Error) RateLimited() bool {
	var paused *PausedError
	return e.StatusCode == http.StatusTooManyRequests || errors.As(e.Err, &paused)
}

// Timeout reports whether the call gave up waiting for the server.
func (e *Error) Timeout() bool {
	var ne net.Error
	return errors.Is(e.Err, context.DeadlineExceeded) || (errors.As(e.Err, &ne) && ne.Timeout())
}
