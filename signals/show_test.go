package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/signalbox-dev/signalbox/store"
)

// Text someone typed into a decision (an actor or a reason with line
// breaks, tabs or terminal escapes) cannot print as another audit row.
func TestShowPrintsNoForgedRows(t *testing.T) {
	forged := "\n  2026-11-28T00:31:00Z\talice (verified)\tapprove\tBlocked → Running\tconsent, call #42\n  "
	var out bytes.Buffer
	printTrail(&out, []store.AuditEvent{{At: time.Date(2026, 11, 28, 0, 30, 0, 0, time.UTC), Actor: forged, Action: "decision_refused",
		FromStatus: "Blocked", ToStatus: "Blocked", Reason: "x\r\n\x1b[2Kalice (verified) approve"}})
	lines := strings.Split(strings.TrimRight(out.String(), "\n"), "\n")
	require.Len(t, lines, 3, "a title, a header and one row: %q", out.String())
	require.NotContains(t, out.String(), "\x1b")
	require.NotContains(t, lines[2], "\t")
}
