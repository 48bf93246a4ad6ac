package rest

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"
)

// SentAtHeader carries the time a request left the client, after any wait for
// the target's rate or pause: rate claims are checked against what was sent,
// not against arrival times on a loaded machine.
const SentAtHeader = "X-Signalbox-Sent-At"

// MaxRetryAfter caps how long a target's Retry-After can hold requests back.
const MaxRetryAfter = 5 * time.Minute

// PausedError is a request not sent because the target asked us to wait past
// the request's deadline. Left is how long the pause still runs.
type PausedError struct {
	Until time.Time
	Left  time.Duration
}

func (e *PausedError) Error() string {
	return fmt.Sprintf("not sent: the target asked to wait until %s (Retry-After), past this call's deadline", e.Until.UTC().Format(time.RFC3339))
}

// gate is the transport of one target's client. It sends one request at a
// time at least interval after the previous send (measured between actual
// sends, so a timer that fires late never bunches them), and holds every
// request until a Retry-After the target gave any of them has passed: a vendor's
// rate limit is per client, not per request.
type gate struct {
	next     http.RoundTripper
	interval time.Duration
	// slots, when set, spaces the sends of every process that shares it.
	slots Slots
	// observer hears of every request's wait and answer.
	observer Observer
	now      func() time.Time
	// turn is held by the request that is to be sent next.
	turn chan struct{}

	mu          sync.Mutex
	nextSend    time.Time
	pausedUntil time.Time
}

func newGate(next http.RoundTripper, perSecond float64) *gate {
	g := &gate{next: next, now: time.Now, turn: make(chan struct{}, 1), observer: unobserved{}}
	if perSecond > 0 {
		g.interval = time.Duration(float64(time.Second) / perSecond)
	}
	return g
}

func (g *gate) RoundTrip(req *http.Request) (*http.Response, error) {
	asked := g.now()
	sent, err := g.wait(req.Context())
	if err != nil {
		return nil, err
	}
	g.observer.Waited(sent.Sub(asked))
	req = req.Clone(req.Context()) // a RoundTripper must not change its caller's request
	req.Header.Set(SentAtHeader, sent.UTC().Format(time.RFC3339Nano))
	resp, err := g.next.RoundTrip(req)
	status := 0
	if err == nil {
		g.learn(resp)
		status = resp.StatusCode
	}
	g.observer.Answered(status, err, g.now().Sub(sent))
	return resp, err
}

// Observer hears what a target's requests cost, for metrics: how long each
// waited for its turn (this process's spacing, the send slots shared with
// other processes, a Retry-After pause) and what answered it.
type Observer interface {
	// Waited is how long a request waited before it was sent.
	Waited(d time.Duration)
	// Answered is a request sent: the answer's status code, or 0 and the
	// error when no answer came, and the time to the answer's headers.
	Answered(status int, err error, took time.Duration)
}

// unobserved is the Observer of a client nobody measures.
type unobserved struct{}

func (unobserved) Waited(time.Duration)               {}
func (unobserved) Answered(int, error, time.Duration) {}

// wait blocks until the request may be sent and returns that time.
func (g *gate) wait(ctx context.Context) (time.Time, error) {
	if err := g.outlasts(ctx); err != nil {
		return time.Time{}, err
	}
	select {
	case g.turn <- struct{}{}:
	case <-ctx.Done():
		return time.Time{}, ctx.Err()
	}
	defer func() { <-g.turn }()
	for {
		g.mu.Lock()
		now := g.now()
		at := g.nextSend
		if g.pausedUntil.After(at) {
			at = g.pausedUntil
		}
		if !now.Before(at) {
			g.nextSend = now.Add(g.interval)
			g.mu.Unlock()
			return g.shared(ctx, now)
		}
		g.mu.Unlock()
		// The pause may have grown while this request waited its turn.
		if err := g.outlasts(ctx); err != nil {
			return time.Time{}, err
		}
		timer := time.NewTimer(at.Sub(now))
		select {
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop()
			return time.Time{}, ctx.Err()
		}
	}
}

// Slots reserves send times that are spaced across processes (a vendor's
// limit is per account): each reservation is at least interval after the
// one before it.
type Slots interface {
	Reserve(ctx context.Context, interval time.Duration) (time.Time, error)
}

// shared waits, after this process's own spacing, for the send time the
// shared slots give, if any.
func (g *gate) shared(ctx context.Context, now time.Time) (time.Time, error) {
	if g.slots == nil || g.interval == 0 {
		return now, nil
	}
	// 3% more than 1/rate apart: a vendor counts arrivals, and a request
	// that leaves late arrives close behind the next one.
	spacing := g.interval + g.interval*3/100
	for attempt := 1; ; attempt++ {
		at, err := g.slots.Reserve(ctx, spacing)
		if err != nil {
			return time.Time{}, err
		}
		if wait := at.Sub(g.now()); wait > 0 {
			timer := time.NewTimer(wait)
			select {
			case <-timer.C:
			case <-ctx.Done():
				timer.Stop()
				return time.Time{}, ctx.Err()
			}
		}
		// A process that woke well after its slot (a stalled machine, a slow
		// reservation) would send close behind the next slot's request, maybe
		// another process's: it gives the slot up and takes a later one.
		now := g.now()
		if now.Sub(at) <= g.interval/maxLateness || attempt == maxReservations {
			return now, nil
		}
	}
}

// A send may leave at most 1/maxLateness of the interval after its slot
// (else it takes another slot, up to maxReservations in all): slots spaced
// 1.03/rate apart then keep any two sends at least 0.83/rate apart, and no
// more than rate in any second.
const (
	maxLateness     = 5
	maxReservations = 3
)

// outlasts fails a request whose deadline comes before the pause ends: it
// could only time out, so it returns at once, saying how long is left.
func (g *gate) outlasts(ctx context.Context) error {
	deadline, ok := ctx.Deadline()
	g.mu.Lock()
	until, now := g.pausedUntil, g.now()
	g.mu.Unlock()
	if ok && until.After(now) && deadline.Before(until) {
		return &PausedError{Until: until, Left: until.Sub(now)}
	}
	return nil
}

// learn pauses the target when it answered 429 or 5xx with a Retry-After.
// Only ever extends the pause: answers may arrive out of order.
func (g *gate) learn(resp *http.Response) {
	if resp.StatusCode != http.StatusTooManyRequests && resp.StatusCode < 500 {
		return
	}
	now := g.now()
	wait, ok := ParseRetryAfter(resp.Header.Get("Retry-After"), now)
	if !ok || wait <= 0 {
		return
	}
	until := now.Add(min(wait, MaxRetryAfter))
	g.mu.Lock()
	if until.After(g.pausedUntil) {
		g.pausedUntil = until
	}
	g.mu.Unlock()
}
