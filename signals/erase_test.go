package main

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/serviceerror"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/signalbox-dev/signalbox/api"
	"github.com/signalbox-dev/signalbox/config"
)

func eraseApp(stdin string, ops config.Operators) (*app, *bytes.Buffer, *bytes.Buffer) {
	var out, errOut bytes.Buffer
	a := &app{stdin: strings.NewReader(stdin), stdout: &out, stderr: &errOut, now: time.Now}
	a.cfg.Operators = ops
	a.cfg.Operator = "alice"
	// Nothing listens there: a command that gets as far as connecting fails
	// with a connection error, neither a usage error nor a refusal.
	a.cfg.Database.URL = "postgres://postgres@127.0.0.1:1/signalbox?connect_timeout=1"
	return a, &out, &errOut
}

var teams = config.Operators{"sales": {"alice", "erin"}, "finance": {"carol", "erin"}}

func TestEraseCommandLine(t *testing.T) {
	t.Parallel()
	cases := []struct {
		args   []string
		ops    config.Operators
		want   error
		stderr string
	}{
		{nil, teams, errUsage, "--email is required"},
		{[]string{"--email", "ada", "--reason", "r"}, teams, errUsage, "--email must be one address"},
		{[]string{"--email", "Ada <ada@x.example>", "--reason", "r"}, teams, errUsage, "--email must be one address"},
		{[]string{"--email", "ada@x.example", "--email-typo"}, teams, errUsage, "flag provided but not defined"},
		{[]string{"--email", "ada@x.example"}, teams, errUsage, "--reason is required"},
		{[]string{"--email", "ada@x.example", "--reason", "r", "extra"}, teams, errUsage, "takes no arguments"},
		{[]string{"--email", "ada@x.example", "--reason", "r", "--wait", "0s"}, teams, errUsage, "--wait must be positive"},
		{[]string{"--email", "ada@x.example", "--reason", "r", "--as", "two words"}, teams, errUsage, "--as must be one word"},
		{[]string{"--email", "ada@x.example", "--reason", "r", "--as", "mallory"}, teams, errRefused, "mallory is not an operator of any team"},
		{[]string{"--email", "ada@x.example", "--reason", "r"}, nil, errRefused, "SIGNALBOX_OPERATORS is not set"},
		// Refused before connecting anywhere: nobody could answer the question.
		{[]string{"--email", "ada@x.example", "--reason", "r"}, teams, errRefused, "pass --yes"},
	}
	for _, tc := range cases {
		a, _, stderr := eraseApp("", tc.ops)
		err := a.erase(context.Background(), tc.args)
		require.ErrorIs(t, err, tc.want, "%q", tc.args)
		require.Contains(t, stderr.String(), tc.stderr, "%q", tc.args)
	}

	// A dry run needs no reason: it goes on to look (and here fails to connect).
	a, _, _ := eraseApp("", teams)
	err := a.erase(context.Background(), []string{"--email", "ada@x.example", "--dry-run"})
	require.Error(t, err)
	require.NotErrorIs(t, err, errUsage)
	require.NotErrorIs(t, err, errRefused)
	require.ErrorContains(t, err, "PostgreSQL")
}

func TestEraseNeedsAnOperatorOfEveryOwningTeam(t *testing.T) {
	t.Parallel()
	require.Equal(t, []string{"finance"}, missingTeams(teams, "alice", []string{"finance", "sales"}))
	require.Equal(t, []string{"finance", "sales"}, missingTeams(teams, "bob", []string{"finance", "sales"}))
	require.Empty(t, missingTeams(teams, "erin", []string{"finance", "sales"}))
	require.Empty(t, missingTeams(teams, "alice", nil))
	require.NoError(t, operatorAnywhere(teams, "carol"))
	require.Equal(t, []string{"finance", "sales"}, teamsOf([]string{api.IntegrationLeadToCRM, api.IntegrationInvoiceToBilling, api.IntegrationCustomerSync, "no-such", ""}))
	require.Equal(t, []string{api.IntegrationLeadToCRM}, integrationsOf([]string{"lead-to-crm:a", "erasure:x", "reconcile:lead-to-crm-1"}))
}

// tty is a terminal a person types answer on.
type tty struct{ *strings.Reader }

func (tty) IsTerminal() bool { return true }

func TestErasureIsConfirmedOnATerminalOrWithYes(t *testing.T) {
	t.Parallel()
	a, _, stderr := eraseApp("y\n", teams)
	ok, err := a.confirmErasure(false)
	require.ErrorIs(t, err, errRefused, "piped input is no one's answer")
	require.False(t, ok)
	require.Contains(t, stderr.String(), "pass --yes")

	ok, err = a.confirmErasure(true)
	require.NoError(t, err)
	require.True(t, ok)

	a, out, _ := eraseApp("", teams)
	a.stdin = tty{strings.NewReader("yes\n")}
	ok, err = a.confirmErasure(false)
	require.NoError(t, err)
	require.True(t, ok)
	require.Contains(t, out.String(), "[y/N]")

	a, out, _ = eraseApp("", teams)
	a.stdin = tty{strings.NewReader("\n")}
	ok, err = a.confirmErasure(false)
	require.NoError(t, err)
	require.False(t, ok)
	require.Contains(t, out.String(), "nothing erased")
}

func TestErasureSchemeFollowsTheSpecs(t *testing.T) {
	t.Parallel()
	s := erasureScheme()
	require.Equal(t, []string{"email", "firstname", "lastname", "phone", "jobtitle"}, s.People[api.IntegrationLeadToCRM])
	require.Equal(t, api.ItemID(api.IntegrationInvoiceToBilling, "INV-1"), s.ItemID(s.Invoices, "INV-1"))
	require.Equal(t, "customer-sync:C-1", s.ItemID(s.Customers, "C-1"))

	integration, ok := itemIntegration("lead-to-crm:x")
	require.True(t, ok)
	require.Equal(t, api.IntegrationLeadToCRM, integration)
	_, ok = itemIntegration(api.ReconcileID(api.IntegrationLeadToCRM) + "-2026-11-27T02:00:00Z")
	require.False(t, ok, "a reconcile run is no item")
	require.Equal(t, api.IntegrationLeadToCRM, workflowIntegration(api.ReconcileID(api.IntegrationLeadToCRM)+"-2026-11-27T02:00:00Z"))
	require.Equal(t, api.IntegrationCustomerSync, workflowIntegration(api.ScheduleID(api.IntegrationCustomerSync)+"-2026-11-27T02:00:00Z"))
	require.Empty(t, workflowIntegration("something-else"))
}

// fakeService answers the workflow service calls an erasure makes.
type fakeService struct {
	workflowservice.WorkflowServiceClient
	executions []*workflowpb.WorkflowExecutionInfo
	// histories by workflow ID, in pages; a missing one is NotFound.
	histories map[string][][]*historypb.HistoryEvent
	describe  func(id string) (*workflowpb.WorkflowExecutionInfo, error)
	deleteErr error
	cancelErr error
	deleted   []string
}

func (f *fakeService) ListWorkflowExecutions(_ context.Context, in *workflowservice.ListWorkflowExecutionsRequest, _ ...grpc.CallOption) (*workflowservice.ListWorkflowExecutionsResponse, error) {
	var out []*workflowpb.WorkflowExecutionInfo
	for _, e := range f.executions {
		if in.GetQuery() == "" || in.GetQuery() == "WorkflowId = '"+e.GetExecution().GetWorkflowId()+"'" {
			out = append(out, e)
		}
	}
	return &workflowservice.ListWorkflowExecutionsResponse{Executions: out}, nil
}

func (f *fakeService) GetWorkflowExecutionHistory(_ context.Context, in *workflowservice.GetWorkflowExecutionHistoryRequest, _ ...grpc.CallOption) (*workflowservice.GetWorkflowExecutionHistoryResponse, error) {
	pages, ok := f.histories[in.GetExecution().GetWorkflowId()]
	if !ok {
		return nil, serviceerror.NewNotFound("workflow execution not found")
	}
	page := 0
	if len(in.GetNextPageToken()) > 0 {
		page = int(in.GetNextPageToken()[0])
	}
	resp := &workflowservice.GetWorkflowExecutionHistoryResponse{History: &historypb.History{Events: pages[page]}}
	if page+1 < len(pages) {
		resp.NextPageToken = []byte{byte(page + 1)}
	}
	return resp, nil
}

func (f *fakeService) DescribeWorkflowExecution(_ context.Context, in *workflowservice.DescribeWorkflowExecutionRequest, _ ...grpc.CallOption) (*workflowservice.DescribeWorkflowExecutionResponse, error) {
	info, err := f.describe(in.GetExecution().GetWorkflowId())
	if err != nil {
		return nil, err
	}
	return &workflowservice.DescribeWorkflowExecutionResponse{WorkflowExecutionInfo: info}, nil
}

func (f *fakeService) DeleteWorkflowExecution(_ context.Context, in *workflowservice.DeleteWorkflowExecutionRequest, _ ...grpc.CallOption) (*workflowservice.DeleteWorkflowExecutionResponse, error) {
	f.deleted = append(f.deleted, in.GetWorkflowExecution().GetWorkflowId())
	return &workflowservice.DeleteWorkflowExecutionResponse{}, f.deleteErr
}

func (f *fakeService) RequestCancelWorkflowExecution(context.Context, *workflowservice.RequestCancelWorkflowExecutionRequest, ...grpc.CallOption) (*workflowservice.RequestCancelWorkflowExecutionResponse, error) {
	return &workflowservice.RequestCancelWorkflowExecutionResponse{}, f.cancelErr
}

func jsonPayloads(t *testing.T, v any) *commonpb.Payloads {
	t.Helper()
	p, err := converter.GetDefaultDataConverter().ToPayloads(v)
	require.NoError(t, err)
	return p
}

func started(input *commonpb.Payloads) *historypb.HistoryEvent {
	return &historypb.HistoryEvent{EventId: 1, EventType: enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED,
		Attributes: &historypb.HistoryEvent_WorkflowExecutionStartedEventAttributes{WorkflowExecutionStartedEventAttributes: &historypb.WorkflowExecutionStartedEventAttributes{Input: input}}}
}

func activityResult(result *commonpb.Payloads) *historypb.HistoryEvent {
	return &historypb.HistoryEvent{EventId: 5, EventType: enumspb.EVENT_TYPE_ACTIVITY_TASK_COMPLETED,
		Attributes: &historypb.HistoryEvent_ActivityTaskCompletedEventAttributes{ActivityTaskCompletedEventAttributes: &historypb.ActivityTaskCompletedEventAttributes{Result: result}}}
}

// reversingCodec "encrypts" a payload by reversing its bytes, under key k1;
// a payload under another key cannot be decrypted.
type reversingCodec struct{}

func reversed(b []byte) []byte {
	out := slices.Clone(b)
	slices.Reverse(out)
	return out
}

func (reversingCodec) Encode(ps []*commonpb.Payload) ([]*commonpb.Payload, error) {
	out := make([]*commonpb.Payload, len(ps))
	for i, p := range ps {
		raw, err := proto.Marshal(p)
		if err != nil {
			return nil, err
		}
		out[i] = &commonpb.Payload{Metadata: map[string][]byte{converter.MetadataEncoding: []byte("binary/encrypted"), "encryption-key-id": []byte("k1")}, Data: reversed(raw)}
	}
	return out, nil
}

func (reversingCodec) Decode(ps []*commonpb.Payload) ([]*commonpb.Payload, error) {
	out := make([]*commonpb.Payload, len(ps))
	for i, p := range ps {
		if string(p.GetMetadata()[converter.MetadataEncoding]) != "binary/encrypted" {
			out[i] = p
			continue
		}
		if string(p.GetMetadata()["encryption-key-id"]) != "k1" {
			return nil, errors.New("a payload is encrypted with key ID \"k0\", which is not held")
		}
		out[i] = &commonpb.Payload{}
		if err := proto.Unmarshal(reversed(p.GetData()), out[i]); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func encrypted(t *testing.T, key string, v any) *commonpb.Payloads {
	t.Helper()
	p := jsonPayloads(t, v)
	enc, err := reversingCodec{}.Encode(p.GetPayloads())
	require.NoError(t, err)
	for _, e := range enc {
		e.Metadata["encryption-key-id"] = []byte(key)
	}
	return &commonpb.Payloads{Payloads: enc}
}

func execution(id, runID string, status enumspb.WorkflowExecutionStatus) *workflowpb.WorkflowExecutionInfo {
	return &workflowpb.WorkflowExecutionInfo{Execution: &commonpb.WorkflowExecution{WorkflowId: id, RunId: runID}, Status: status}
}

func TestScanFindsTheAddressInEveryEventOfEveryExecution(t *testing.T) {
	t.Parallel()
	const email = "Ada.L@Example.COM"
	lead := map[string]any{"lead": map[string]any{"email": email, "firstName": "Ada"}}
	other := map[string]any{"lead": map[string]any{"email": "bob@example.com"}}
	running, closed := enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED
	poll := api.ScheduleID(api.IntegrationCustomerSync) + "-2026-11-27T10:00:00Z"
	f := &fakeService{
		executions: []*workflowpb.WorkflowExecutionInfo{
			execution("lead-to-crm:own", "r1", running), execution("lead-to-crm:mentions", "r2", closed),
			execution(poll, "r3", closed), execution("lead-to-crm:other", "r4", closed),
			execution("lead-to-crm:encrypted", "r5", closed), execution("lead-to-crm:unreadable", "r6", closed),
			execution("lead-to-crm:gone", "r7", closed), execution("lead-to-crm:lookalike", "r8", closed),
		},
		histories: map[string][][]*historypb.HistoryEvent{
			"lead-to-crm:own": {{started(jsonPayloads(t, lead))}},
			// Another lead's history holding the address in an activity's
			// result (a similar contact found in the CRM), on its second page.
			"lead-to-crm:mentions":   {{started(jsonPayloads(t, other))}, {activityResult(jsonPayloads(t, map[string]any{"similar": []string{strings.ToLower(email)}}))}},
			poll:                     {{started(jsonPayloads(t, map[string]any{"Seen": 3})), activityResult(jsonPayloads(t, map[string]string{"billing_email": strings.ToUpper(email)}))}},
			"lead-to-crm:other":      {{started(jsonPayloads(t, other))}},
			"lead-to-crm:encrypted":  {{started(encrypted(t, "k1", lead))}},
			"lead-to-crm:unreadable": {{started(encrypted(t, "k0", lead))}},
			// Longer addresses that hold this one are other people's.
			"lead-to-crm:lookalike": {{started(jsonPayloads(t, map[string]any{"lead": map[string]any{"email": "x" + email}, "also": email + ".au"}))}},
		},
	}
	ops := &temporalOps{svc: f, namespace: "default", codec: reversingCodec{}}
	found, err := ops.scan(context.Background(), "ada.l@example.com", func(int, int) {})
	require.NoError(t, err)
	require.Equal(t, map[string]bool{"lead-to-crm:own": true, "lead-to-crm:encrypted": true}, found.own, "inputs that hold the address, decrypted")
	require.Equal(t, map[string]bool{"lead-to-crm:mentions": true}, found.mentioning)
	require.Equal(t, []execRun{{workflowID: poll, runID: "r3"}}, found.others, "a poll is no item: its run is deleted alone")
	require.Equal(t, 7, found.scanned, "an execution deleted meanwhile is not counted")
	require.Equal(t, 1, found.undecodable, "a payload no key decrypts is reported, not taken as holding nothing")

	// Without the codec the encrypted input is not readable as the address.
	ops.codec = nil
	found, err = ops.scan(context.Background(), "ada.l@example.com", func(int, int) {})
	require.NoError(t, err)
	require.False(t, found.own["lead-to-crm:encrypted"])
}

func statusInfo(t *testing.T, execStatus enumspb.WorkflowExecutionStatus, item api.Status) *workflowpb.WorkflowExecutionInfo {
	t.Helper()
	p, err := converter.GetDefaultDataConverter().ToPayload(string(item))
	require.NoError(t, err)
	return &workflowpb.WorkflowExecutionInfo{Status: execStatus,
		SearchAttributes: &commonpb.SearchAttributes{IndexedFields: map[string]*commonpb.Payload{api.AttrIntegrationStatus.GetName(): p}}}
}

func TestItemsUnderWayAreWaitedForAndOnlyWaitingOnesCancelled(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	running := enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING
	calls := 0
	f := &fakeService{describe: func(id string) (*workflowpb.WorkflowExecutionInfo, error) {
		calls++
		switch id {
		case "lead-to-crm:settles":
			if calls < 3 {
				return statusInfo(t, running, api.StatusRunning), nil
			}
			return statusInfo(t, running, api.StatusBlocked), nil
		case "lead-to-crm:busy":
			return statusInfo(t, running, api.StatusRunning), nil
		case "lead-to-crm:ends":
			return statusInfo(t, enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED, api.StatusSynced), nil
		}
		return nil, serviceerror.NewNotFound("gone")
	}}
	ops := &temporalOps{svc: f, namespace: "default", poll: time.Millisecond}
	soon := time.Now().Add(200 * time.Millisecond)

	state, err := ops.settle(ctx, execRun{workflowID: "lead-to-crm:settles"}, soon)
	require.NoError(t, err)
	require.Equal(t, runWaiting, state, "a step that ends in a wait is waited for, then cancelled")
	state, err = ops.settle(ctx, execRun{workflowID: "lead-to-crm:busy"}, soon)
	require.NoError(t, err)
	require.Equal(t, runUnderWay, state, "still stepping at the deadline: not cancelled")
	state, err = ops.settle(ctx, execRun{workflowID: "lead-to-crm:ends"}, soon)
	require.NoError(t, err)
	require.Equal(t, runClosed, state)
	state, err = ops.settle(ctx, execRun{workflowID: "lead-to-crm:deleted"}, soon)
	require.NoError(t, err)
	require.Equal(t, runClosed, state, "deleted by retention meanwhile")
}

func TestExecutionsTemporalDeletedAlreadyAreFine(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := &fakeService{deleteErr: serviceerror.NewNotFound("workflow execution not found"), cancelErr: serviceerror.NewNotFound("not found")}
	ops := &temporalOps{svc: f, namespace: "default"}
	r := execRun{workflowID: "lead-to-crm:x", runID: "r1"}
	gone, err := ops.delete(ctx, r)
	require.NoError(t, err)
	require.True(t, gone, "retention deleted it: nothing left to delete")
	require.NoError(t, ops.cancel(ctx, r), "an item that ended meanwhile needs no cancelling")

	f.deleteErr, f.cancelErr = serviceerror.NewUnavailable("down"), serviceerror.NewUnavailable("down")
	_, err = ops.delete(ctx, r)
	require.ErrorContains(t, err, "delete lead-to-crm:x (run r1)")
	require.ErrorContains(t, ops.cancel(ctx, r), "cancel lead-to-crm:x")

	f.deleteErr = nil
	gone, err = ops.delete(ctx, r)
	require.NoError(t, err)
	require.False(t, gone)
	require.Equal(t, []string{"lead-to-crm:x", "lead-to-crm:x", "lead-to-crm:x"}, f.deleted)
}
