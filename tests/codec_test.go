package tests

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/signalbox-dev/signalbox/api"
	"github.com/signalbox-dev/signalbox/codec"
	"github.com/signalbox-dev/signalbox/stack"
	"github.com/signalbox-dev/signalbox/workflows"
	"github.com/signalbox-dev/signalbox/workflows/spine"
)

// newPayloadKey is a fresh AES-256 key, as `openssl rand -base64 32` prints it.
func newPayloadKey() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}

// startEncryptedStack starts a stack of the test's own whose programs
// encrypt payloads with keys (the first encrypts), with its codec server.
func startEncryptedStack(t *testing.T, keys string, configure func(*stack.Options)) *env {
	t.Helper()
	return startStackWith(t, func(o *stack.Options) {
		o.PayloadKeys, o.CodecServer = keys, true
		if configure != nil {
			configure(o)
		}
	})
}

// plainClient reads the stack's Temporal as a tool without the keys does.
func plainClient(t *testing.T, s *env) client.Client {
	t.Helper()
	c, err := client.Dial(client.Options{HostPort: s.TemporalAddr(), Namespace: s.Namespace(), Logger: log.NewStructuredLogger(slog.New(slog.DiscardHandler))})
	require.NoError(t, err)
	t.Cleanup(c.Close)
	return c
}

// rawHistory is a run's history as Temporal stores it.
func rawHistory(t *testing.T, c client.Client, id string) *historypb.History {
	t.Helper()
	iter := c.GetWorkflowHistory(context.Background(), id, "", false, 0)
	h := &historypb.History{}
	for iter.HasNext() {
		e, err := iter.Next()
		require.NoError(t, err)
		h.Events = append(h.Events, e)
	}
	require.NotEmpty(t, h.Events, id)
	return h
}

// historyPayloads sorts every payload of a history into the search
// attributes' and the rest, by the path to each.
func historyPayloads(h *historypb.History) (searchAttributes, others map[string]*commonpb.Payload) {
	searchAttributes, others = map[string]*commonpb.Payload{}, map[string]*commonpb.Payload{}
	var walk func(m protoreflect.Message, path string, inSearchAttributes bool)
	walk = func(m protoreflect.Message, path string, inSearchAttributes bool) {
		switch m.Descriptor().FullName() {
		case "temporal.api.common.v1.Payload":
			p := m.Interface().(*commonpb.Payload)
			if inSearchAttributes {
				searchAttributes[path] = p
			} else {
				others[path] = p
			}
			return
		case "temporal.api.common.v1.SearchAttributes":
			inSearchAttributes = true
		}
		m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
			name := path + "." + string(fd.Name())
			switch {
			case fd.IsList() && fd.Message() != nil:
				for i := range v.List().Len() {
					walk(v.List().Get(i).Message(), name, inSearchAttributes)
				}
			case fd.IsMap() && fd.MapValue().Message() != nil:
				v.Map().Range(func(k protoreflect.MapKey, mv protoreflect.Value) bool {
					walk(mv.Message(), name+"["+k.String()+"]", inSearchAttributes)
					return true
				})
			case fd.Message() != nil && !fd.IsList() && !fd.IsMap():
				walk(v.Message(), name, inSearchAttributes)
			}
			return true
		})
	}
	for i, e := range h.Events {
		walk(e.ProtoReflect(), fmt.Sprintf("event %d (%s)", i+1, e.GetEventType()), false)
	}
	return searchAttributes, others
}

// withoutPayloadKeys is env without the payload keys.
func withoutPayloadKeys(env []string) []string {
	return slices.DeleteFunc(slices.Clone(env), func(kv string) bool {
		return strings.HasPrefix(kv, codec.Variable+"=") || strings.HasPrefix(kv, codec.Variable+"_FILE=")
	})
}

// runSignals runs the operator CLI with env, returning its output and exit code.
func runSignals(t *testing.T, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(binDir, "signals"), args...)
	cmd.Env = env
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return out.String(), errOut.String(), exit.ExitCode()
	}
	require.NoError(t, err)
	return out.String(), errOut.String(), 0
}

// TestPayloadsAreEncryptedAtRest follows a lead through an encrypted stack:
// it waits for consent, is approved with the operator CLI and ends Synced.
// Temporal then holds its email and name only as ciphertext, which a client,
// the temporal CLI or the signals CLI without the keys cannot read, and
// which the stack's client, the codec server and the CLI through it can.
func TestPayloadsAreEncryptedAtRest(t *testing.T) {
	t.Parallel()
	keys := "e2e-new=" + newPayloadKey() + ";e2e-old=" + newPayloadKey()
	s := startEncryptedStack(t, keys, nil)
	ctx := context.Background()

	key := uniqueKey(t, "e2e-encrypted")
	l := lead(key)
	l.Consent = false
	code, body := s.post(t, "/v1/leads", l, nil)
	require.Equal(t, http.StatusAccepted, code, body)
	id := body["workflowId"].(string)
	state := s.waitStatus(t, id, api.StatusBlocked)
	require.Equal(t, api.ConsentMissing, state.Exception.Kind, "the stack's client reads the encrypted status")

	// A sender's retry of the same lead is taken as the same submission:
	// the intake reads the running item's encrypted input to compare.
	code, again := s.post(t, "/v1/leads", l, nil)
	require.Equal(t, http.StatusAccepted, code, again)
	require.Equal(t, id, again["workflowId"])

	stdout, stderr, exit := s.signals(t, "", "approve", id, "--as", "alice", "--reason", "consent form on file")
	require.Equal(t, 0, exit, stdout+stderr)
	require.Equal(t, api.StatusSynced, s.waitResult(t, id).Status)

	// As Temporal stores it: every payload encrypted with the first key,
	// the summaries and failure messages included; search attributes plain.
	h := rawHistory(t, plainClient(t, s), id)
	stored, err := protojson.Marshal(h)
	require.NoError(t, err)
	for _, personal := range []string{l.Email, l.LastName, "Lovelace"} {
		require.NotContains(t, string(stored), personal)
	}
	attrs, payloads := historyPayloads(h)
	require.NotEmpty(t, payloads)
	for path, p := range payloads {
		require.Equal(t, codec.Encoding, string(p.Metadata[converter.MetadataEncoding]), "%s is not encrypted", path)
		require.Equal(t, "e2e-new", string(p.Metadata[codec.MetadataKeyID]), path)
	}
	statuses := map[string]bool{}
	for path, p := range attrs {
		var v any
		require.NoError(t, converter.GetDefaultDataConverter().FromPayload(p, &v), "search attribute %s stays plain", path)
		if strings.Contains(path, "IntegrationStatus") {
			statuses[v.(string)] = true
		}
	}
	require.True(t, statuses["Blocked"] && statuses["Synced"], "IntegrationStatus is readable without keys: %v", statuses)

	// The keys decrypt it.
	input := h.Events[0].GetWorkflowExecutionStartedEventAttributes().GetInput()
	payloadCodec, err := codec.Parse(keys)
	require.NoError(t, err)
	var in workflows.LeadInput
	require.NoError(t, payloadCodec.DataConverter().FromPayloads(input, &in))
	require.Equal(t, l.Email, in.Lead.Email)

	t.Run("the temporal CLI shows ciphertext, and the lead through the codec server", func(t *testing.T) {
		show := func(extra ...string) *historypb.History {
			t.Helper()
			args := []string{"workflow", "show", "--address", s.TemporalAddr(), "--namespace", s.Namespace(), "--workflow-id", id, "-o", "json"}
			out, err := runTemporal(ctx, append(args, extra...)...)
			require.NoError(t, err, out)
			shown := &historypb.History{}
			require.NoError(t, protojson.UnmarshalOptions{DiscardUnknown: true}.Unmarshal([]byte(out), shown), out)
			require.Len(t, shown.Events, len(h.Events))
			return shown
		}
		_, ciphertext := historyPayloads(show())
		for path, p := range ciphertext {
			require.Equal(t, codec.Encoding, string(p.Metadata[converter.MetadataEncoding]), path)
		}
		_, decoded := historyPayloads(show("--codec-endpoint", s.CodecURL()))
		var all strings.Builder
		for path, p := range decoded {
			require.NotEqual(t, codec.Encoding, string(p.Metadata[converter.MetadataEncoding]), "%s: the CLI decodes every payload through the codec server", path)
			all.Write(p.Data)
		}
		require.Contains(t, all.String(), l.Email)
		require.Contains(t, all.String(), "consent form on file", "the decision, decoded too")
	})

	t.Run("the codec server decodes what the UI sends", func(t *testing.T) {
		b, err := protojson.Marshal(input)
		require.NoError(t, err)
		req, err := http.NewRequest(http.MethodPost, s.CodecURL()+"/decode", strings.NewReader(string(b)))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Namespace", s.Namespace())
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		answer, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode, string(answer))
		var decoded commonpb.Payloads
		require.NoError(t, protojson.Unmarshal(answer, &decoded))
		require.Contains(t, string(decoded.Payloads[0].Data), l.Email)
	})

	t.Run("signals without the keys says which are missing", func(t *testing.T) {
		_, stderr, code := runSignals(t, withoutPayloadKeys(s.Env), "show", id)
		require.Equal(t, 1, code, stderr)
		require.Contains(t, stderr, `a payload is encrypted with key ID "e2e-new" but SIGNALBOX_PAYLOAD_KEYS is not set`)
		require.NotContains(t, stderr, l.Email)

		oldOnly := append(withoutPayloadKeys(s.Env), "SIGNALBOX_PAYLOAD_KEYS="+keys[strings.Index(keys, ";")+1:])
		_, stderr, code = runSignals(t, oldOnly, "show", id)
		require.Equal(t, 1, code, stderr)
		require.Contains(t, stderr, `key ID "e2e-new", which SIGNALBOX_PAYLOAD_KEYS does not hold (it holds e2e-old)`)

		stdout, stderr, code := runSignals(t, s.Env, "show", id, "-o", "json")
		require.Equal(t, 0, code, stderr)
		require.Contains(t, stdout, "Synced")
	})

	t.Run("its history replays with the keys, and not without", func(t *testing.T) {
		withKeys := replayer(t, keys)
		logger := log.NewStructuredLogger(slog.New(slog.DiscardHandler))
		require.NoError(t, withKeys.ReplayWorkflowHistory(logger, h))
		withoutKeys := replayer(t, "")
		err := withoutKeys.ReplayWorkflowHistory(logger, h)
		require.ErrorContains(t, err, `key ID "e2e-new"`, "an encrypted history must not replay as if it were plain")
	})
}

// replayer replays signalbox's workflows as a worker with these payload
// keys would run them.
func replayer(t *testing.T, keys string) worker.WorkflowReplayer {
	t.Helper()
	c, err := codec.Parse(keys)
	require.NoError(t, err)
	r, err := worker.NewWorkflowReplayerWithOptions(worker.WorkflowReplayerOptions{DataConverter: c.DataConverter(), FailureConverter: c.FailureConverter()})
	require.NoError(t, err)
	integrations, err := workflows.Integrations()
	require.NoError(t, err)
	for _, wf := range spine.Workflows(integrations) {
		r.RegisterWorkflowWithOptions(wf.Fn, workflow.RegisterOptions{Name: wf.Name})
	}
	return r
}

// TestRecordedHistoriesReplayWithEncryptionOn replays every recorded history
// (workflows/testdata/histories, plain: recorded without keys) on workers
// that encrypt: turning encryption on must not break the items already
// running, whose histories stay plain.
func TestRecordedHistoriesReplayWithEncryptionOn(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob(filepath.Join(root, "workflows", "testdata", "histories", "*.json"))
	require.NoError(t, err)
	require.NotEmpty(t, files, "no recorded histories: run make record-histories")
	r := replayer(t, "k2="+newPayloadKey()+";k1="+newPayloadKey())
	logger := log.NewStructuredLogger(slog.New(slog.DiscardHandler))
	for _, f := range files {
		file, err := os.Open(f)
		require.NoError(t, err)
		h, err := client.HistoryFromJSON(file, client.HistoryJSONOptions{})
		file.Close()
		require.NoError(t, err)
		// Replayed under the workflow ID it was recorded with, when known.
		opts := worker.ReplayWorkflowHistoryOptions{}
		if id, err := os.ReadFile(strings.TrimSuffix(f, ".json") + ".id"); err == nil {
			opts.OriginalExecution = workflow.Execution{ID: strings.TrimSpace(string(id))}
		} else {
			require.ErrorIs(t, err, fs.ErrNotExist)
		}
		require.NoError(t, r.ReplayWorkflowHistoryWithOptions(logger, h, opts), "replaying %s with encryption on", filepath.Base(f))
	}
}

// TestEncryptionIsOnWhenTheEnvironmentSetsKeys guards runs that turn
// encryption on through the environment (make chaos sets
// SIGNALBOX_PAYLOAD_KEYS): the stacks they start encrypt for real.
func TestEncryptionIsOnWhenTheEnvironmentSetsKeys(t *testing.T) {
	if os.Getenv(codec.Variable) == "" && os.Getenv(codec.Variable+"_FILE") == "" {
		t.Skip("SIGNALBOX_PAYLOAD_KEYS is not set: the suite runs with encryption off")
	}
	t.Parallel()
	require.True(t, shared.Encrypted(), "the stack ignored SIGNALBOX_PAYLOAD_KEYS")
	key := uniqueKey(t, "e2e-env-encrypted")
	code, body := shared.post(t, "/v1/leads", lead(key), nil)
	require.Equal(t, http.StatusAccepted, code, body)
	id := body["workflowId"].(string)
	require.Equal(t, api.StatusSynced, shared.waitResult(t, id).Status)
	first := rawHistory(t, plainClient(t, shared), id).Events[0]
	p := first.GetWorkflowExecutionStartedEventAttributes().GetInput().GetPayloads()[0]
	require.Equal(t, codec.Encoding, string(p.Metadata[converter.MetadataEncoding]))
}
