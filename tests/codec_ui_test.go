package tests

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/converter"

	"github.com/signalbox-dev/signalbox/api"
	"github.com/signalbox-dev/signalbox/codec"
	"github.com/signalbox-dev/signalbox/stack"
)

// TestUIShowsTheLeadDecodedInChromium opens an encrypted lead in the Temporal
// UI in a real browser (Debian's chromium, headless), as an operator would:
// the UI, pointed at the codec server by --ui-codec-endpoint, shows the
// lead's email in its input panel, though Temporal holds it encrypted. The
// same page opened from another origin (127.0.0.1 instead of localhost)
// gets nothing from the codec server (CORS), and shows no email.
func TestUIShowsTheLeadDecodedInChromium(t *testing.T) {
	t.Parallel()
	chromium := chromiumPath(t)
	s := startEncryptedStack(t, "ui1="+newPayloadKey(), func(o *stack.Options) { o.EnableUI = true })

	key := uniqueKey(t, "e2e-ui")
	l := lead(key)
	code, body := s.post(t, "/v1/leads", l, nil)
	require.Equal(t, http.StatusAccepted, code, body)
	id, runID := body["workflowId"].(string), body["runId"].(string)
	require.Equal(t, api.StatusSynced, s.waitResult(t, id).Status)
	input := rawHistory(t, plainClient(t, s), id).Events[0].GetWorkflowExecutionStartedEventAttributes().GetInput().GetPayloads()[0]
	require.Equal(t, codec.Encoding, string(input.Metadata[converter.MetadataEncoding]), "Temporal holds the lead encrypted")

	b := startChromium(t, chromium)
	path := fmt.Sprintf("/namespaces/%s/workflows/%s/%s/history", s.Namespace(), url.PathEscape(id), runID)

	page := b.open(t, s.UIOrigin()+path)
	text := page.waitText(t, func(text string) bool { return strings.Contains(inputPanel(text), l.Email) }, waitFor)
	require.Contains(t, inputPanel(text), l.LastName)
	require.NotContains(t, text, "Codec Server could not connect")

	// From an origin the codec server does not admit, the UI's request is
	// refused (CORS): the UI says so and shows the input as Temporal holds
	// it, its metadata in base64.
	other := strings.Replace(s.UIOrigin(), "localhost", "127.0.0.1", 1)
	page = b.open(t, other+path)
	encrypted := base64.StdEncoding.EncodeToString([]byte(codec.Encoding))
	text = page.waitText(t, func(text string) bool {
		return strings.Contains(text, "Codec Server could not connect") && strings.Contains(text, encrypted)
	}, waitFor)
	require.NotContains(t, text, l.Email)
}

// inputPanel is the text of the workflow page's Input panel (up to Result).
func inputPanel(page string) string {
	_, after, ok := strings.Cut(page, "\nInput\n")
	if !ok {
		return ""
	}
	panel, _, _ := strings.Cut(after, "\nResult\n")
	return panel
}
