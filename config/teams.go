package config

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// TeamMap maps a team name to a value, written "team=value;team=value".
// It decodes SIGNALBOX_CHAT_WEBHOOKS.
type TeamMap map[string]string

// Decode implements envconfig.Decoder.
func (m *TeamMap) Decode(value string) error {
	out := TeamMap{}
	for i, entry := range splitNonEmpty(value, ";") {
		team, v, ok := strings.Cut(entry, "=")
		team, v = strings.TrimSpace(team), strings.TrimSpace(v)
		if !ok || team == "" || v == "" {
			// The entry itself is not echoed: values may be secrets.
			return fmt.Errorf("entry %d must be name=value (entries separated by ';')", i+1)
		}
		if _, dup := out[team]; dup {
			return fmt.Errorf("team %q appears twice", team)
		}
		out[team] = v
	}
	*m = out
	return nil
}

// Teams lists the map's teams in order.
func (m TeamMap) Teams() []string {
	teams := make([]string, 0, len(m))
	for t := range m {
		teams = append(teams, t)
	}
	sort.Strings(teams)
	return teams
}

// Operators maps a team to the people who may decide its exceptions, written
// "team=alice,bob;finance=carol".
type Operators map[string][]string

// Decode implements envconfig.Decoder.
func (o *Operators) Decode(value string) error {
	var m TeamMap
	if err := m.Decode(value); err != nil {
		return err
	}
	out := Operators{}
	for team, list := range m {
		seen := map[string]bool{}
		for _, name := range splitNonEmpty(list, ",") {
			if strings.ContainsAny(name, " \t=;") {
				return fmt.Errorf("operator %q of team %q must be a single word", name, team)
			}
			if !seen[name] {
				seen[name] = true
				out[team] = append(out[team], name)
			}
		}
		sort.Strings(out[team])
	}
	*o = out
	return nil
}

func splitNonEmpty(s, sep string) []string {
	var out []string
	for _, part := range strings.Split(s, sep) {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}

// SLAs maps an exception kind to its SLA and, optionally, its deadline,
// written "ConsentMissing=8h/7d;Conflict=30m" (d counts days).
type SLAs map[string]SLA

// SLA is one exception kind's reminder interval and deadline.
type SLA struct {
	SLA, Deadline time.Duration
}

// Decode implements envconfig.Decoder.
func (s *SLAs) Decode(value string) error {
	var m TeamMap
	if err := m.Decode(value); err != nil {
		return err
	}
	out := SLAs{}
	for kind, v := range m {
		sla, deadline, hasDeadline := strings.Cut(v, "/")
		var e SLA
		var err error
		if e.SLA, err = parseDays(sla); err != nil || e.SLA <= 0 {
			return fmt.Errorf("%s: SLA %q must be a positive duration like 30m, 8h or 2d", kind, sla)
		}
		if hasDeadline {
			if e.Deadline, err = parseDays(deadline); err != nil || e.Deadline < e.SLA {
				return fmt.Errorf("%s: deadline %q must be a duration at least the SLA", kind, deadline)
			}
		}
		out[kind] = e
	}
	*s = out
	return nil
}

// parseDays is time.ParseDuration that also reads whole days ("7d").
func parseDays(v string) (time.Duration, error) {
	v = strings.TrimSpace(v)
	if days, ok := strings.CutSuffix(v, "d"); ok {
		n, err := strconv.Atoi(days)
		return time.Duration(n) * 24 * time.Hour, err
	}
	return time.ParseDuration(v)
}
