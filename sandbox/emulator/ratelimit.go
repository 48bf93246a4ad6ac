package emulator

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// rateLimiter is a vendor's request limit: at most perSecond requests in any
// one second (a sliding window); 0 is no limit. Requests it refuses do not
// count against it.
type rateLimiter struct {
	perSecond int
	// window holds when the requests let through in the last second arrived,
	// oldest first.
	window []time.Time
}

// allow reports whether a request arriving at now is within the limit, and
// counts it when it is.
func (l *rateLimiter) allow(now time.Time) bool {
	if l.perSecond <= 0 {
		return true
	}
	start := now.Add(-time.Second)
	i := 0
	for i < len(l.window) && !l.window[i].After(start) {
		i++
	}
	l.window = l.window[i:]
	if len(l.window) >= l.perSecond {
		return false
	}
	l.window = append(l.window, now)
	return true
}

// Limits are the vendors' request limits, as GET and POST /_sandbox/limit
// read and write them.
type Limits struct {
	// CRMPerSecond limits the CRM API (contacts and companies) to this many
	// requests in any one second; 0 is no limit.
	CRMPerSecond int `json:"crmPerSecond"`
}

func (l Limits) validate() error {
	if l.CRMPerSecond < 0 {
		return fmt.Errorf("crmPerSecond must be 0 (no limit) or a positive number of requests per second, got %d", l.CRMPerSecond)
	}
	return nil
}

// SetCRMLimit limits the CRM API to perSecond requests in any one second, as
// HubSpot's secondly limit does; 0 lifts the limit. A reset keeps it.
func (s *Server) SetCRMLimit(perSecond int) error {
	if err := (Limits{CRMPerSecond: perSecond}).validate(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.crmLimit.perSecond = perSecond
	return nil
}

func (s *Server) getLimit(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	l := Limits{CRMPerSecond: s.crmLimit.perSecond}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, l)
}

func (s *Server) setLimit(w http.ResponseWriter, r *http.Request) {
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRequestBody))
	if err != nil {
		writeJSON(w, http.StatusRequestEntityTooLarge, map[string]string{"error": "limits too large"})
		return
	}
	var l Limits
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&l); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": fmt.Sprintf(`limits: %v; send {"crmPerSecond": 50}`, err)})
		return
	}
	if err := s.SetCRMLimit(l.CRMPerSecond); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		return
	}
	s.log.Info("request limits replaced", "crmPerSecond", l.CRMPerSecond)
	writeJSON(w, http.StatusOK, l)
}

// hubspotRateLimit is HubSpot's 429 body for its per-second limit.
func hubspotRateLimit() map[string]any {
	return map[string]any{"status": "error", "message": "You have reached your secondly limit.", "errorType": "RATE_LIMIT",
		"correlationId": newUUID(), "policyName": "SECONDLY", "requestId": newUUID()}
}

// newUUID returns a random version 4 UUID, as HubSpot's correlation IDs are.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}
