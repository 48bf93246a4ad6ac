package workflows

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// Route sends the leads that meet every one of its conditions to a team.
type Route struct {
	Team string
	// Countries, when set, are the ISO country codes the route takes.
	Countries []string
	// MinSize and MaxSize bound the company's size in employees (0: no bound);
	// a lead that does not give its size meets no size condition.
	MinSize, MaxSize int
	// Otherwise takes the leads no other route takes.
	Otherwise bool
}

// ParseRoutes reads the routes of SIGNALBOX_LEAD_ROUTES, given as team →
// conditions: "country:DE|AT|CH", "size>=1000", "size<1000", joined by ","
// (all must hold), or "otherwise" for the team that takes what no other does.
func ParseRoutes(byTeam map[string]string) ([]Route, error) {
	var out []Route
	for _, team := range slices.Sorted(maps.Keys(byTeam)) {
		r := Route{Team: team}
		for _, cond := range strings.Split(byTeam[team], ",") {
			cond = strings.TrimSpace(cond)
			switch {
			case cond == "otherwise":
				r.Otherwise = true
			case strings.HasPrefix(cond, "country:"):
				for _, c := range strings.Split(strings.TrimPrefix(cond, "country:"), "|") {
					if c = strings.ToUpper(strings.TrimSpace(c)); len(c) != 2 {
						return nil, fmt.Errorf("team %s: %q is not a two-letter country code", team, c)
					}
					r.Countries = append(r.Countries, strings.ToUpper(strings.TrimSpace(c)))
				}
			case strings.HasPrefix(cond, "size>="):
				n, err := strconv.Atoi(strings.TrimPrefix(cond, "size>="))
				if err != nil || n < 1 {
					return nil, fmt.Errorf("team %s: %q needs a positive number of employees", team, cond)
				}
				r.MinSize = n
			case strings.HasPrefix(cond, "size<"):
				n, err := strconv.Atoi(strings.TrimPrefix(cond, "size<"))
				if err != nil || n < 2 {
					return nil, fmt.Errorf("team %s: %q needs a number of employees above 1", team, cond)
				}
				r.MaxSize = n - 1
			default:
				return nil, fmt.Errorf("team %s: condition %q is not country:XX|YY, size>=N or size<N", team, cond)
			}
		}
		if r.Otherwise && (len(r.Countries) > 0 || r.MinSize > 0 || r.MaxSize > 0) {
			return nil, fmt.Errorf("team %s: otherwise takes no other condition", team)
		}
		if r.Otherwise && slices.ContainsFunc(out, func(o Route) bool { return o.Otherwise }) {
			return nil, fmt.Errorf("team %s: only one team may take the leads no rule takes (otherwise)", team)
		}
		out = append(out, r)
	}
	return out, nil
}

func (r Route) takes(l Lead) bool {
	if r.Otherwise {
		return false
	}
	if len(r.Countries) > 0 && !slices.Contains(r.Countries, strings.ToUpper(l.Country)) {
		return false
	}
	if (r.MinSize > 0 || r.MaxSize > 0) && l.CompanySize == 0 {
		return false
	}
	if r.MinSize > 0 && l.CompanySize < r.MinSize {
		return false
	}
	return r.MaxSize == 0 || l.CompanySize <= r.MaxSize
}

// RouteLead returns the teams whose routes take the lead: one is its team;
// none, or more than one, leaves it to sales operations.
func RouteLead(routes []Route, l Lead) []string {
	var teams []string
	for _, r := range routes {
		if r.takes(l) && !slices.Contains(teams, r.Team) {
			teams = append(teams, r.Team)
		}
	}
	if len(teams) == 0 {
		for _, r := range routes {
			if r.Otherwise {
				teams = append(teams, r.Team)
			}
		}
	}
	return teams
}
