package workflows

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/workflow"

	"github.com/signalbox-dev/signalbox/api"
	"github.com/signalbox-dev/signalbox/workflows/spine"
)

// TestEveryIntegrationIsWiredAsItsSpecDeclares checks what the compiler
// cannot: that every declared integration has code, and that its code agrees
// with its spec and with the other integrations'.
func TestEveryIntegrationIsWiredAsItsSpecDeclares(t *testing.T) {
	integrations, err := Integrations()
	require.NoError(t, err)
	require.Len(t, integrations, len(api.Specs()))
	queues := []string{api.TaskQueueIntegrations, api.TaskQueueCRM, api.TaskQueueCRMPoll, api.TaskQueueChat, api.TaskQueueBilling}
	routes, commands, types := map[string]string{}, map[string]string{}, map[string]string{}
	for i, in := range integrations {
		spec := in.Spec
		require.Equal(t, api.Specs()[i].Name, spec.Name, "in the order api.Specs() declares")
		require.NoError(t, spec.Check())

		// The workflow: func(workflow.Context, Input) (api.Result, error).
		fn := reflect.TypeOf(in.Workflow)
		require.Equal(t, reflect.Func, fn.Kind(), "%s: Workflow is not a function", spec.Name)
		require.Equal(t, 2, fn.NumIn(), spec.Name)
		require.Equal(t, reflect.TypeFor[workflow.Context](), fn.In(0), spec.Name)
		require.Equal(t, []reflect.Type{reflect.TypeFor[api.Result](), reflect.TypeFor[error]()}, []reflect.Type{fn.Out(0), fn.Out(1)}, spec.Name)
		input, ok := fn.In(1).FieldByName("ItemInput")
		require.True(t, ok && input.Anonymous, "%s: its input must embed api.ItemInput", spec.Name)
		require.Empty(t, types[spec.WorkflowType], "workflow type %s is taken", spec.WorkflowType)
		types[spec.WorkflowType] = spec.Name
		if in.Poll != nil {
			require.Empty(t, types[in.Poll.WorkflowType], "workflow type %s is taken", in.Poll.WorkflowType)
			types[in.Poll.WorkflowType] = spec.Name
			require.Equal(t, reflect.Func, reflect.TypeOf(in.Poll.Workflow).Kind(), spec.Name)
			require.NotNil(t, in.Poll.Every, spec.Name)
		}

		for _, a := range in.Activities {
			require.Contains(t, queues, a.Queue, "%s: activities %s on a queue no worker serves", spec.Name, a.Type)
			built := a.Build(spine.Deps{})
			require.Equal(t, a.Type, reflect.TypeOf(built), spec.Name)
		}

		// One route and one command per integration, or neither (its items
		// are started by signal, e.g. by a webhook of its own); a route
		// takes its key from the path ({id}) exactly when there is no record
		// to decode.
		intake := in.Intake
		if intake.Route == "" {
			require.Empty(t, intake.Command, "%s: a command without a route", spec.Name)
			require.True(t, intake.Decode == nil && intake.Check == nil && intake.Input == nil && intake.Bulk == "" && intake.Keys == nil,
				"%s: an intake without a route has nothing else", spec.Name)
			continue
		}
		require.NotEmpty(t, intake.Command, spec.Name)
		require.Empty(t, routes[intake.Route], "route %s of %s is %s's too", intake.Route, spec.Name, routes[intake.Route])
		require.Empty(t, commands[intake.Command], "command %s of %s is %s's too", intake.Command, spec.Name, commands[intake.Command])
		routes[intake.Route], commands[intake.Command] = spec.Name, spec.Name
		byKey := strings.Contains(intake.Route, "{id}")
		require.Equal(t, byKey, intake.Decode == nil, "%s: a route with {id} reads no body; one without decodes a record", spec.Name)
		require.Equal(t, byKey, intake.Input != nil, "%s: a keyed route needs Input", spec.Name)
		if intake.Bulk != "" {
			require.NotEmpty(t, intake.Statuses, spec.Name)
			require.NotNil(t, intake.Keys, spec.Name)
			require.Empty(t, commands[intake.Bulk], spec.Name)
			commands[intake.Bulk] = spec.Name
		}
	}
	// Every activity struct runs on one queue, whoever declares it.
	require.NotPanics(t, func() { spine.Registrations(integrations) })
}

// TestCodeAndSpecsMustAgree: an integration declared without code, or code
// without a declaration, stops Integrations (and so every worker's start).
func TestCodeAndSpecsMustAgree(t *testing.T) {
	orphan := func() spine.Integration {
		return spine.Integration{Spec: api.Spec{Name: "orphan-sync", WorkflowType: "OrphanSync", Owner: "ops"}}
	}
	define(orphan)
	_, err := Integrations()
	delete(defined, "orphan-sync")
	require.ErrorContains(t, err, "integration orphan-sync has code but is not declared: add its spec to api.Specs()")

	lead := defined[api.IntegrationLeadToCRM]
	delete(defined, api.IntegrationLeadToCRM)
	_, err = Integrations()
	defined[api.IntegrationLeadToCRM] = lead
	require.ErrorContains(t, err, "integration lead-to-crm is declared in api.Specs() but has no code")
	_, err = Integrations()
	require.NoError(t, err)
}

// TestTheLeadMappingCoversItsSpecFields: every CRM property the spec maps a
// lead field to is one the mapping writes, and the other way round.
func TestTheLeadMappingCoversItsSpecFields(t *testing.T) {
	var declared []string
	for _, f := range api.LeadToCRMSpec().OwnedFields() {
		declared = append(declared, f.TargetName)
	}
	var mapped []string
	for prop := range ada().Properties() {
		mapped = append(mapped, prop)
	}
	slices.Sort(declared)
	slices.Sort(mapped)
	require.Equal(t, mapped, declared)
}
