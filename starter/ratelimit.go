package main

import (
	"math"
	"sync"
	"time"

	"github.com/signalbox-dev/signalbox/config"
)

// limiter caps each source's requests: a limit of N per window takes a burst
// of N, then one request every window/N — a token bucket of N tokens
// refilled at N per window, kept as the time the bucket is next full (the
// generic cell rate algorithm: whole nanoseconds, no drift). A request over
// the limit is refused and told when the next one is taken. The limits are
// this process's: N replicas take N times the limit.
type limiter struct {
	limitOf func(source string) config.RateLimit

	mu sync.Mutex
	// due is, per source, when its bucket is full again: each request
	// taken moves it one interval on.
	due map[string]time.Time
}

func newLimiter(limitOf func(source string) config.RateLimit) *limiter {
	return &limiter{limitOf: limitOf, due: map[string]time.Time{}}
}

// allow takes one of source's requests at now, or says how long until one
// is taken.
func (l *limiter) allow(source string, now time.Time) (bool, time.Duration) {
	limit := l.limitOf(source)
	interval := limit.Per / time.Duration(limit.Requests)
	burst := limit.Per - interval // how far ahead of now due may run
	l.mu.Lock()
	defer l.mu.Unlock()
	due := l.due[source]
	if due.Before(now) {
		due = now
	}
	if ahead := due.Sub(now); ahead > burst {
		return false, ahead - burst
	}
	l.due[source] = due.Add(interval)
	return true, 0
}

// retryAfter is a wait in whole seconds for Retry-After, at least 1.
func retryAfter(wait time.Duration) int {
	return max(1, int(math.Ceil(wait.Seconds())))
}
