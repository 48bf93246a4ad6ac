package main

import (
	"bytes"
	"context"
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	failurepb "go.temporal.io/api/failure/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/serviceerror"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/signalbox-dev/signalbox/api"
	"github.com/signalbox-dev/signalbox/config"
	"github.com/signalbox-dev/signalbox/store"
	"github.com/signalbox-dev/signalbox/store/storetest"
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
	// histories by "workflowID/runID", else by workflow ID, in pages; a
	// missing one is NotFound.
	histories map[string][][]*historypb.HistoryEvent
	describe  func(id string) (*workflowpb.WorkflowExecutionInfo, error)
	deleteErr error
	cancelErr error
	deleted   []string
	// cancelled lists the workflow IDs asked to cancel.
	cancelled []string
}

// run finds an execution not deleted yet.
func (f *fakeService) run(id, runID string) *workflowpb.WorkflowExecutionInfo {
	for _, e := range f.executions {
		if e.GetExecution().GetWorkflowId() == id && (runID == "" || e.GetExecution().GetRunId() == runID) {
			return e
		}
	}
	return nil
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
	pages, ok := f.histories[in.GetExecution().GetWorkflowId()+"/"+in.GetExecution().GetRunId()]
	if !ok {
		pages, ok = f.histories[in.GetExecution().GetWorkflowId()]
	}
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
	if f.describe == nil {
		// As visibility lists it; a deleted run is gone.
		if e := f.run(in.GetExecution().GetWorkflowId(), in.GetExecution().GetRunId()); e != nil {
			return &workflowservice.DescribeWorkflowExecutionResponse{WorkflowExecutionInfo: e}, nil
		}
		return nil, serviceerror.NewNotFound("workflow execution not found")
	}
	info, err := f.describe(in.GetExecution().GetWorkflowId())
	if err != nil {
		return nil, err
	}
	return &workflowservice.DescribeWorkflowExecutionResponse{WorkflowExecutionInfo: info}, nil
}

func (f *fakeService) DeleteWorkflowExecution(_ context.Context, in *workflowservice.DeleteWorkflowExecutionRequest, _ ...grpc.CallOption) (*workflowservice.DeleteWorkflowExecutionResponse, error) {
	f.deleted = append(f.deleted, in.GetWorkflowExecution().GetWorkflowId())
	if f.deleteErr == nil {
		f.executions = slices.DeleteFunc(f.executions, func(e *workflowpb.WorkflowExecutionInfo) bool {
			return e.GetExecution().GetWorkflowId() == in.GetWorkflowExecution().GetWorkflowId() && e.GetExecution().GetRunId() == in.GetWorkflowExecution().GetRunId()
		})
	}
	return &workflowservice.DeleteWorkflowExecutionResponse{}, f.deleteErr
}

// RequestCancelWorkflowExecution cancels the run at once, as a worker would.
func (f *fakeService) RequestCancelWorkflowExecution(_ context.Context, in *workflowservice.RequestCancelWorkflowExecutionRequest, _ ...grpc.CallOption) (*workflowservice.RequestCancelWorkflowExecutionResponse, error) {
	f.cancelled = append(f.cancelled, in.GetWorkflowExecution().GetWorkflowId())
	if e := f.run(in.GetWorkflowExecution().GetWorkflowId(), in.GetWorkflowExecution().GetRunId()); e != nil && f.cancelErr == nil {
		e.Status = enumspb.WORKFLOW_EXECUTION_STATUS_CANCELED
	}
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

func TestEraseScanFindsTheAddressInEveryEventOfEveryExecution(t *testing.T) {
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
	require.Equal(t, map[string][]execRun{"lead-to-crm:mentions": {{workflowID: "lead-to-crm:mentions", runID: "r2"}}}, found.mentioning)
	require.Equal(t, []execRun{{workflowID: poll, runID: "r3"}}, found.others, "a poll is no item: its run is deleted alone")
	require.Equal(t, 7, found.scanned, "an execution deleted meanwhile is not counted")
	require.Equal(t, 1, found.undecodable, "a payload no key decrypts is reported, not taken as holding nothing")

	// Without the codec the encrypted input is not readable as the address.
	ops.codec = nil
	found, err = ops.scan(context.Background(), "ada.l@example.com", func(int, int) {})
	require.NoError(t, err)
	require.False(t, found.own["lead-to-crm:encrypted"])
	require.Equal(t, 2, found.undecodable, "and says so: it cannot tell what they hold")
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

func signaled(input *commonpb.Payloads) *historypb.HistoryEvent {
	return &historypb.HistoryEvent{EventId: 7, EventType: enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED,
		Attributes: &historypb.HistoryEvent_WorkflowExecutionSignaledEventAttributes{WorkflowExecutionSignaledEventAttributes: &historypb.WorkflowExecutionSignaledEventAttributes{Input: input}}}
}

func activityFailed(message string) *historypb.HistoryEvent {
	return &historypb.HistoryEvent{EventId: 6, EventType: enumspb.EVENT_TYPE_ACTIVITY_TASK_FAILED,
		Attributes: &historypb.HistoryEvent_ActivityTaskFailedEventAttributes{ActivityTaskFailedEventAttributes: &historypb.ActivityTaskFailedEventAttributes{
			Failure: &failurepb.Failure{Message: message}}}}
}

// rawJSON is a payload as a sender wrote it, stored as it came.
func rawJSON(doc string) *commonpb.Payloads {
	return &commonpb.Payloads{Payloads: []*commonpb.Payload{{Metadata: map[string][]byte{converter.MetadataEncoding: []byte(converter.MetadataEncodingJSON)}, Data: []byte(doc)}}}
}

// TestEraseScanReadsJSONPayloadsDecoded: Go's JSON encoder (the Temporal SDK's)
// writes "&" as "\u0026", and a sender may escape any character in a
// payload stored as it came: the address is still found, as a whole.
func TestEraseScanReadsJSONPayloadsDecoded(t *testing.T) {
	t.Parallel()
	const email = "Tom&Jerry2@example.com"
	closed := enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED
	lead := jsonPayloads(t, map[string]any{"lead": map[string]any{"email": email}})
	require.Contains(t, string(lead.GetPayloads()[0].GetData()), `Tom\u0026Jerry2@example.com`, "the SDK's encoder escapes it")
	other := jsonPayloads(t, map[string]any{"lead": map[string]any{"email": "grace@example.com"}})
	f := &fakeService{
		executions: []*workflowpb.WorkflowExecutionInfo{
			execution("lead-to-crm:own", "r1", closed), execution("lead-to-crm:decided", "r2", closed),
			execution("lead-to-crm:failed", "r3", closed), execution("lead-to-crm:lookalike", "r4", closed),
			execution("lead-to-crm:quoted", "r5", closed), execution("lead-to-crm:errtext", "r6", closed),
		},
		histories: map[string][][]*historypb.HistoryEvent{
			"lead-to-crm:own": {{started(lead)}},
			// A decision whose payload a sender escaped by hand.
			"lead-to-crm:decided": {{started(other), signaled(rawJSON(`{"reason":"not TOM\u0026JERRY2\u0040example.com"}`))}},
			// A failure's message quoting a JSON body as Go wrote it.
			"lead-to-crm:failed": {{started(other), activityFailed(`400: {"email":"tom\u0026jerry2@example.com"}`)}},
			// JSON quoted in JSON: a raw body kept as a string.
			"lead-to-crm:quoted": {{started(other), activityResult(jsonPayloads(t, map[string]string{"body": `{"email":"tom\u0026jerry2\u0040example.com"}`}))}},
			// A result quoting, as text, a JSON body Go wrote.
			"lead-to-crm:errtext": {{started(other), activityResult(jsonPayloads(t, map[string]string{"error": `400 {"email":"tom\u0026jerry2@example.com"`}))}},
			// Escaped or not, a longer address is another one.
			"lead-to-crm:lookalike": {{started(rawJSON(`{"email":"xtom\u0026jerry2@example.com","also":"tom\u0026jerry2@example.com.au"}`)),
				activityFailed(`{"email":"tom\u0026jerry2@example.community"}`)}},
		},
	}
	ops := &temporalOps{svc: f, namespace: "default"}
	found, err := ops.scan(context.Background(), "tom&jerry2@example.com", func(int, int) {})
	require.NoError(t, err)
	require.Equal(t, map[string]bool{"lead-to-crm:own": true}, found.own)
	require.Equal(t, []string{"lead-to-crm:decided", "lead-to-crm:errtext", "lead-to-crm:failed", "lead-to-crm:quoted"}, slices.Sorted(maps.Keys(found.mentioning)))
	require.Equal(t, []execRun{{workflowID: "lead-to-crm:decided", runID: "r2"}}, found.mentioning["lead-to-crm:decided"])
	require.Zero(t, found.undecodable)
}

// TestEraseScanWithoutKeysCountsEncryptedPayloadsUndecodable: an encrypted
// payload signals holds no key for cannot be searched, and says so.
func TestEraseScanWithoutKeysCountsEncryptedPayloadsUndecodable(t *testing.T) {
	t.Parallel()
	lead := map[string]any{"lead": map[string]any{"email": "ada@example.com"}}
	f := &fakeService{
		executions: []*workflowpb.WorkflowExecutionInfo{execution("lead-to-crm:encrypted", "r1", enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED)},
		histories:  map[string][][]*historypb.HistoryEvent{"lead-to-crm:encrypted": {{started(encrypted(t, "k1", lead))}}},
	}
	ops := &temporalOps{svc: f, namespace: "default"}
	found, err := ops.scan(context.Background(), "ada@example.com", func(int, int) {})
	require.NoError(t, err)
	require.Equal(t, 1, found.undecodable)
}

// fakeClient is a Temporal client whose workflow service is a fake.
type fakeClient struct {
	client.Client
	svc *fakeService
}

func (c fakeClient) WorkflowService() workflowservice.WorkflowServiceClient { return c.svc }
func (fakeClient) Close()                                                   {}

// itemRun is a run of an item as visibility lists it, with its status.
func itemRun(t *testing.T, id, runID string, execStatus enumspb.WorkflowExecutionStatus, item api.Status) *workflowpb.WorkflowExecutionInfo {
	t.Helper()
	info := statusInfo(t, execStatus, item)
	info.Execution = &commonpb.WorkflowExecution{WorkflowId: id, RunId: runID}
	return info
}

// eraseAppOn is an app whose PostgreSQL is a fresh test database and whose
// Temporal is f.
func eraseAppOn(t *testing.T, f *fakeService) (*app, *bytes.Buffer, *bytes.Buffer) {
	t.Helper()
	a, out, errOut := eraseApp("", teams)
	a.pool = storetest.NewPool(t)
	a.client = fakeClient{svc: f}
	return a, out, errOut
}

// TestEraseShowsNoPlanToAnOperatorOfOneTeam: a dry run is checked as an
// erasure is: an operator of sales only sees no plan of a person whose data
// is finance's too, whether PostgreSQL names finance or only Temporal does.
func TestEraseShowsNoPlanToAnOperatorOfOneTeam(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const email = "ada@example.com"
	running, closed := enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED
	lead := jsonPayloads(t, map[string]any{"lead": map[string]any{"email": email}})
	invoice := jsonPayloads(t, map[string]any{"invoice": map[string]any{"customerEmail": email}})
	f := &fakeService{
		executions: []*workflowpb.WorkflowExecutionInfo{
			itemRun(t, "lead-to-crm:ada", "r1", running, api.StatusBlocked), itemRun(t, "invoice-to-billing:INV-9", "r2", closed, api.StatusSynced)},
		histories: map[string][][]*historypb.HistoryEvent{"lead-to-crm:ada": {{started(lead)}}, "invoice-to-billing:INV-9": {{started(invoice)}}},
	}

	// Only Temporal names finance (the invoice's item).
	a, out, stderr := eraseAppOn(t, f)
	err := a.erase(ctx, []string{"--email", email, "--as", "alice", "--dry-run"})
	require.ErrorIs(t, err, errRefused)
	require.Contains(t, stderr.String(), "alice is not an operator of team finance")
	require.Empty(t, out.String(), "no plan is shown")

	// PostgreSQL names finance (an invoice billed to the address).
	s := store.New(a.pool)
	require.NoError(t, s.InsertInvoice(ctx, store.Invoice{ID: "INV-1", CustomerID: "C-1", CustomerName: "Ada", CustomerEmail: email, Currency: "eur",
		DueDate: time.Now(), Status: store.InvoiceReady, Lines: []store.InvoiceLine{{LineNo: 1, Description: "x", Quantity: 1, UnitAmount: 1}}}))
	f.executions = f.executions[:1]
	out.Reset()
	stderr.Reset()
	err = a.erase(ctx, []string{"--email", email, "--as", "alice", "--dry-run"})
	require.ErrorIs(t, err, errRefused)
	require.Contains(t, stderr.String(), "alice is not an operator of team finance")
	require.Empty(t, out.String(), "no plan is shown")

	// An operator of both sees it.
	out.Reset()
	stderr.Reset()
	require.NoError(t, a.erase(ctx, []string{"--email", email, "--as", "erin", "--dry-run"}), stderr.String())
	require.Contains(t, out.String(), "lead-to-crm:ada")
	require.Contains(t, out.String(), "invoices")
	require.Contains(t, out.String(), "dry run: nothing was changed")
	require.Empty(t, f.cancelled)
	require.Empty(t, f.deleted)
}

// TestEraseLeavesOtherPeoplesItemsAlone: grace's lead waits on
// DuplicateSuspected because the CRM contact it found is ada's; erasing ada
// neither cancels nor deletes it, and refuses, changing nothing, until it is
// decided. Once it ended, its run that holds ada's address is deleted, not
// cancelled; its other run is kept.
func TestEraseLeavesOtherPeoplesItemsAlone(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const email = "ada@example.com"
	running, closed := enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED
	adas := jsonPayloads(t, map[string]any{"lead": map[string]any{"email": email, "lastName": "Lovelace"}})
	graces := jsonPayloads(t, map[string]any{"lead": map[string]any{"email": "grace@example.com", "lastName": "Lovelace"}})
	similar := jsonPayloads(t, map[string]any{"Similar": []any{map[string]any{"ID": "501", "Properties": map[string]string{"email": email}}}})
	f := &fakeService{
		executions: []*workflowpb.WorkflowExecutionInfo{
			itemRun(t, "lead-to-crm:ada", "a1", running, api.StatusBlocked),
			itemRun(t, "lead-to-crm:grace", "g2", running, api.StatusBlocked),
			// An earlier run of grace's lead, which never met ada.
			itemRun(t, "lead-to-crm:grace", "g1", closed, api.StatusSynced),
			itemRun(t, "lead-to-crm:bob", "b1", closed, api.StatusSynced),
		},
		histories: map[string][][]*historypb.HistoryEvent{
			"lead-to-crm:ada":      {{started(adas)}},
			"lead-to-crm:grace/g2": {{started(graces), activityResult(similar)}},
			"lead-to-crm:grace/g1": {{started(graces)}},
			"lead-to-crm:bob":      {{started(graces), activityResult(similar)}},
		},
	}
	a, out, stderr := eraseAppOn(t, f)
	s := store.New(a.pool)
	require.NoError(t, s.InsertAudit(ctx, store.AuditEvent{Integration: "lead-to-crm", WorkflowID: "lead-to-crm:grace", RunID: "g2", Seq: 1,
		At: time.Now(), Actor: "system", Action: "raised", Reason: "CRM contact 501 has the same name and company under another email"}))

	for _, dry := range []bool{true, false} {
		args := []string{"--email", email, "--as", "alice", "--reason", "request #7", "--yes"}
		if dry {
			args = append(args, "--dry-run")
		}
		out.Reset()
		stderr.Reset()
		err := a.erase(ctx, args)
		require.ErrorIs(t, err, errRefused, "dry run %v", dry)
		require.Contains(t, out.String(), "mention this person — decide them first (signals show lead-to-crm:grace), then run erase again")
		require.Regexp(t, `lead-to-crm:grace\s+mentions the person\s+1\s+Blocked \(running\)\s+not cancelled, not deleted`, out.String())
		require.Regexp(t, `lead-to-crm:bob\s+mentions the person\s+1\s+closed\s+another person's item, ended: the executions whose history holds the address deleted`, out.String())
		require.Contains(t, stderr.String(), "refused, nothing was changed: 1 item(s) of other people mention this person and still run: lead-to-crm:grace")
		require.Empty(t, f.cancelled, "nothing cancelled")
		require.Empty(t, f.deleted, "nothing deleted")
		trail, err := s.AuditTrail(ctx, "lead-to-crm:grace")
		require.NoError(t, err)
		require.Len(t, trail, 1, "nothing recorded")
	}

	// grace's lead is decided and ends.
	f.run("lead-to-crm:grace", "g2").Status = closed
	out.Reset()
	stderr.Reset()
	require.NoError(t, a.erase(ctx, []string{"--email", email, "--as", "alice", "--reason", "request #7", "--yes"}), stderr.String())
	require.Equal(t, []string{"lead-to-crm:ada"}, f.cancelled, "only the person's own item is cancelled")
	require.ElementsMatch(t, []string{"lead-to-crm:ada", "lead-to-crm:grace", "lead-to-crm:bob"}, f.deleted, "grace's run g1 holds nothing of ada's: kept")
	require.NotNil(t, f.run("lead-to-crm:grace", "g1"))
	trail, err := s.AuditTrail(ctx, "lead-to-crm:grace")
	require.NoError(t, err)
	last := trail[len(trail)-1]
	require.Equal(t, "personal_data_erased", last.Action)
	require.Equal(t, "mentions the person", last.Details["holds"])
	require.Equal(t, false, last.Details["cancelled"])
}
