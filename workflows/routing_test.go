package workflows

import (
	"maps"
	"testing"
	"time"

	"github.com/signalbox-dev/signalbox/api"

	"github.com/stretchr/testify/require"
)

var salesRoutes = map[string]string{"sales-dach": "country:DE|AT|CH", "sales-enterprise": "size>=1000", "sales-uk": "country:gb,size<1000"}

func TestRoutesTakeTheLeadsTheirRulesDescribe(t *testing.T) {
	t.Parallel()
	routes, err := ParseRoutes(salesRoutes)
	require.NoError(t, err)
	for _, tc := range []struct {
		country string
		size    int
		want    []string
	}{
		{"DE", 0, []string{"sales-dach"}},
		{"de", 50, []string{"sales-dach"}},
		{"GB", 10, []string{"sales-uk"}},
		{"GB", 5000, []string{"sales-enterprise"}},
		{"GB", 0, nil}, // size unknown: the UK rule cannot tell
		{"CH", 2000, []string{"sales-dach", "sales-enterprise"}},
		{"FR", 20, nil},
	} {
		got := RouteLead(routes, Lead{Country: tc.country, CompanySize: tc.size})
		require.Equal(t, tc.want, got, "%s %d", tc.country, tc.size)
	}
	withDefault := maps.Clone(salesRoutes)
	withDefault["sales"] = "otherwise"
	routes, err = ParseRoutes(withDefault)
	require.NoError(t, err)
	require.Equal(t, []string{"sales"}, RouteLead(routes, Lead{Country: "FR"}), "otherwise takes what no rule does")
	require.Equal(t, []string{"sales-dach", "sales-enterprise"}, RouteLead(routes, Lead{Country: "CH", CompanySize: 2000}), "a dispute stays one")
	for _, bad := range []map[string]string{
		{"x": "country:DEU"}, {"x": "size>=zero"}, {"x": "size<1"}, {"x": "region:EU"},
		{"x": "otherwise,country:DE"}, {"x": "otherwise", "y": "otherwise"},
	} {
		_, err := ParseRoutes(bad)
		require.Error(t, err, "%v", bad)
	}
}

func routedFixture(t *testing.T, id string) (*fixture, *crmFake) {
	f := newFixture(t, id)
	f.policy.LeadRoutes = salesRoutes
	f.policy.Operators = maps.Clone(testPolicy.Operators)
	f.policy.Operators["sales-ops"] = []string{"olga"}
	f.policy.Operators["sales-dach"] = []string{"dieter"}
	f.policy.Operators["sales-enterprise"] = []string{"erin"}
	f.operators = f.policy.Operators
	fake := &crmFake{}
	fake.install(f)
	return f, fake
}

func TestALeadIsRoutedToTheTeamOfItsRule(t *testing.T) {
	t.Parallel()
	f, _ := routedFixture(t, "lead-to-crm:lead-de")
	l := ada()
	l.Country, l.Consent = "DE", false
	f.at(time.Hour, func() {
		s := f.state()
		require.Equal(t, "sales-dach", s.Team)
		require.Equal(t, "sales-dach", s.Exception.Deciders, "the routed team decides its leads' exceptions")
		f.decide("sales", api.Decision{Action: api.ActionApprove, Actor: "alice", Reason: "consent on file"})
		f.decide("dach", api.Decision{Action: api.ActionApprove, Actor: "dieter", Reason: "consent on file"})
	})
	f.env.ExecuteWorkflow(LeadToCRM, leadInput(l))

	require.Equal(t, api.StatusSynced, f.result().Status)
	require.ErrorContains(t, f.updates["sales"].err, "only operators of team sales-dach")
	require.NoError(t, f.updates["dach"].err)
	require.Equal(t, []string{"sales-dach"}, f.teams, "AssignedTeam is set for filtering")
	require.Contains(t, f.actions(), "assigned Running→Running system")
	require.Equal(t, "sales-dach", f.notified[len(f.notified)-1].Team, "the routed team hears the lead is synced")
}

func TestALeadNoRuleTakesWaitsForSalesOperations(t *testing.T) {
	t.Parallel()
	f, _ := routedFixture(t, "lead-to-crm:lead-fr")
	l := ada()
	l.Country, l.CompanySize = "FR", 20
	f.at(time.Hour, func() {
		s := f.state()
		require.Equal(t, api.RoutingUnclear, s.Exception.Kind)
		require.Equal(t, "sales-ops", s.Exception.Deciders)
		require.Equal(t, []string{"sales-dach", "sales-enterprise", "sales-uk"}, choiceNames(s.Exception.Choices))
		require.Contains(t, s.Exception.Summary, "no routing rule takes the lead")
		f.decide("nochoice", api.Decision{Action: api.ActionApprove, Actor: "olga", Reason: "x"})
		f.decide("pick", api.Decision{Action: api.ActionApprove, Actor: "olga", Reason: "French speakers sit in DACH", Choice: "sales-dach"})
	})
	f.env.ExecuteWorkflow(LeadToCRM, leadInput(l))

	require.Equal(t, api.StatusSynced, f.result().Status)
	require.ErrorContains(t, f.updates["nochoice"].rejected, "needs a choice: one of sales-dach, sales-enterprise, sales-uk")
	require.Equal(t, []string{"sales-dach"}, f.teams)
	require.Contains(t, f.actions(), "assigned Running→Running olga")
	require.Equal(t, "sales-ops", f.notified[0].Team, "sales operations hear at once that a lead waits for them")
}

func TestAWaitingItemIsReassignedToAnotherTeam(t *testing.T) {
	t.Parallel()
	f, _ := routedFixture(t, "lead-to-crm:lead-move")
	l := ada()
	l.Country, l.Consent = "DE", false
	f.at(time.Hour, func() {
		f.decide("elsewhere", api.Decision{Action: api.ActionReassign, Actor: "dieter", Reason: "an enterprise account", Choice: "sales-enterprise"})
	})
	f.at(2*time.Hour, func() {
		s := f.state()
		require.Equal(t, api.StatusBlocked, s.Status, "it still waits")
		require.Equal(t, "sales-enterprise", s.Exception.Deciders)
		require.Equal(t, "sales-enterprise", s.Team)
		f.decide("unknown", api.Decision{Action: api.ActionReassign, Actor: "alice", Reason: "x", Choice: "marketing"})
		f.decide("nobody", api.Decision{Action: api.ActionReassign, Actor: "erin", Reason: "x", Choice: "sales-uk"})
		f.decide("reject", api.Decision{Action: api.ActionReject, Actor: "dieter", Reason: "no consent"})
	})
	f.env.ExecuteWorkflow(LeadToCRM, leadInput(l))

	require.Equal(t, api.StatusBlocked, f.updates["elsewhere"].outcome.Status)
	require.Contains(t, f.updates["elsewhere"].outcome.Message, "reassigned from sales-dach to sales-enterprise")
	require.ErrorContains(t, f.updates["unknown"].rejected, `unknown team "marketing"`)
	require.ErrorContains(t, f.updates["nobody"].rejected, `unknown team "sales-uk"`, "a routed team without operators could never decide it")
	require.ErrorContains(t, f.updates["reject"].err, "only operators of team sales-enterprise", "dieter handed it over")
	require.Equal(t, []string{"sales-dach", "sales-enterprise"}, f.teams)
	require.Contains(t, f.actions(), "reassign Blocked→Blocked dieter")
	teamsTold := []string{}
	for _, n := range f.notified {
		teamsTold = append(teamsTold, n.Team)
	}
	require.Contains(t, teamsTold, "sales-enterprise", "the new team hears at once")
}

func TestADecisionAppliesOnlyToTheExceptionItWasMadeFor(t *testing.T) {
	t.Parallel()
	f, _ := routedFixture(t, "lead-to-crm:lead-two")
	l := ada()
	l.Country, l.CompanySize, l.Consent = "FR", 20, false
	f.at(time.Hour, func() {
		// Both are valid for RoutingUnclear; the second must not reject the
		// ConsentMissing that the first leads to.
		f.decide("pick", api.Decision{Action: api.ActionApprove, Actor: "olga", Reason: "DACH", Choice: "sales-dach"})
		f.decide("late", api.Decision{Action: api.ActionReject, Actor: "olga", Reason: "meant for the routing"})
	})
	f.at(2*time.Hour, func() {
		s := f.state()
		require.Equal(t, api.ConsentMissing, s.Exception.Kind, "still waiting for the DACH team's decision")
		f.decide("dach", api.Decision{Action: api.ActionApprove, Actor: "dieter", Reason: "consent form #3"})
	})
	f.env.ExecuteWorkflow(LeadToCRM, leadInput(l))

	require.Equal(t, api.StatusSynced, f.result().Status)
	require.ErrorContains(t, f.updates["late"].err, "not what this decision was made for")
}
