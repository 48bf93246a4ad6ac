package main

import (
	"fmt"
	"sort"
	"strings"

	"github.com/signalbox-dev/signalbox/config"
	"github.com/signalbox-dev/signalbox/workflows/spine"
)

// routeItems is the route that reads items, GET /v1/items/{workflowID}: a
// permission of its own, granted as "items".
const routeItems = "items"

// scopes holds the routes each source may use: an integration's name (its
// route) or routeItems.
type scopes map[string]map[string]bool

// routeNames maps every name SIGNALBOX_INTAKE_ROUTES may grant a route by
// to the route: each integration with a route by its name (lead-to-crm) and
// by its path's first word after /v1/ (leads, for POST /v1/leads) unless
// two routes share that word, and items.
func routeNames(integrations []spine.Integration) map[string]string {
	names := map[string]string{routeItems: routeItems}
	byWord := map[string][]string{}
	for _, in := range integrations {
		if in.Intake.Route == "" {
			continue // started by signal only (invoice-payments: the Stripe webhook)
		}
		names[in.Spec.Name] = in.Spec.Name
		if w := routeWord(in.Intake.Route); w != "" {
			byWord[w] = append(byWord[w], in.Spec.Name)
		}
	}
	for w, ins := range byWord {
		if _, taken := names[w]; !taken && len(ins) == 1 {
			names[w] = ins[0]
		}
	}
	return names
}

// routeWord is the first word of a route's path after /v1/: "POST
// /v1/invoices/{id}/sync" gives invoices.
func routeWord(pattern string) string {
	_, path, _ := strings.Cut(pattern, " ")
	rest, ok := strings.CutPrefix(path, "/v1/")
	if !ok {
		return ""
	}
	word, _, _ := strings.Cut(rest, "/")
	if strings.ContainsAny(word, "{}") {
		return ""
	}
	return word
}

// newScopes reads SIGNALBOX_INTAKE_ROUTES, refusing names no route has and
// sources with credentials but no routes.
func newScopes(cfg config.Intake, integrations []spine.Integration) (scopes, error) {
	names := routeNames(integrations)
	valid := make([]string, 0, len(names))
	for name := range names {
		valid = append(valid, name)
	}
	sort.Strings(valid)
	if err := cfg.CheckIntakeRoutes(valid); err != nil {
		return nil, err
	}
	s := scopes{}
	for _, source := range cfg.IntakeSources() {
		s[source] = map[string]bool{}
		for _, name := range cfg.IntakeRoutes[source] {
			if name == config.AllIntakeRoutes {
				for _, route := range names {
					s[source][route] = true
				}
				continue
			}
			s[source][names[name]] = true
		}
	}
	return s, nil
}

func (s scopes) allows(source, route string) bool { return s[source][route] }

// of lists the routes of a source, for the log.
func (s scopes) of(source string) string {
	routes := make([]string, 0, len(s[source]))
	for r := range s[source] {
		routes = append(routes, r)
	}
	sort.Strings(routes)
	return strings.Join(routes, ",")
}

// forbidden is the 403 of a source using a route it was not given.
func forbidden(source, route, pattern string) string {
	if route == routeItems {
		return fmt.Sprintf("source %q may not read items: ask signalbox's operators to add %s to its routes (SIGNALBOX_INTAKE_ROUTES)", source, routeItems)
	}
	return fmt.Sprintf("source %q may not use %s; nothing was started: send it with the credentials of a source that may, "+
		"or ask signalbox's operators to add %s to its routes (SIGNALBOX_INTAKE_ROUTES)", source, pattern, route)
}
