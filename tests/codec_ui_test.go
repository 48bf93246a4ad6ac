package tests

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

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

// chromiumPath finds Debian's chromium; make test installs it.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("no chromium: run `make test`, which installs Debian's chromium (apt-get install chromium, as root)")
	return ""
}

// browser is a headless chromium driven through the Chrome DevTools
// Protocol over a pipe (--remote-debugging-pipe: commands on its fd 3,
// answers on its fd 4, each message ended by a NUL). A pipe listens on no
// port, so nothing else on the machine can drive it.
type browser struct {
	cmd     *exec.Cmd
	in      *os.File
	mu      sync.Mutex
	nextID  int
	pending map[int]chan cdpMessage
}

type cdpMessage struct {
	ID     int             `json:"id"`
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Message string `json:"message"`
	} `json:"error"`
}

func startChromium(t *testing.T, path string) *browser {
	t.Helper()
	toChrome, commands, err := os.Pipe()
	require.NoError(t, err)
	answers, fromChrome, err := os.Pipe()
	require.NoError(t, err)
	cmd := exec.Command(path, "--headless=new", "--remote-debugging-pipe",
		// chromium's sandbox refuses to run as root, as make test does.
		"--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run", "--no-default-browser-check",
		"--user-data-dir="+t.TempDir(), "about:blank")
	cmd.ExtraFiles = []*os.File{toChrome, fromChrome} // its fds 3 and 4
	var stderr strings.Builder
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start(), "start chromium")
	toChrome.Close()
	fromChrome.Close()
	b := &browser{cmd: cmd, in: commands, pending: map[int]chan cdpMessage{}}
	go b.read(answers)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = b.call(ctx, "", "Browser.close", nil, nil)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		commands.Close()
		if t.Failed() {
			t.Logf("chromium's stderr:\n%s", stderr.String())
		}
	})
	return b
}

// read hands each answer to the call waiting for it; events are dropped.
func (b *browser) read(answers *os.File) {
	defer answers.Close()
	r := bufio.NewReader(answers)
	for {
		raw, err := r.ReadBytes(0)
		if err != nil {
			return
		}
		var m cdpMessage
		if json.Unmarshal(raw[:len(raw)-1], &m) != nil || m.ID == 0 {
			continue
		}
		b.mu.Lock()
		ch := b.pending[m.ID]
		delete(b.pending, m.ID)
		b.mu.Unlock()
		if ch != nil {
			ch <- m
		}
	}
}

// call sends one command (to a page when session is set) and decodes its result.
func (b *browser) call(ctx context.Context, session, method string, params, result any) error {
	b.mu.Lock()
	b.nextID++
	id := b.nextID
	ch := make(chan cdpMessage, 1)
	b.pending[id] = ch
	b.mu.Unlock()
	msg := map[string]any{"id": id, "method": method}
	if params != nil {
		msg["params"] = params
	}
	if session != "" {
		msg["sessionId"] = session
	}
	raw, err := json.Marshal(msg)
	if err != nil {
		return err
	}
	b.mu.Lock()
	_, err = b.in.Write(append(raw, 0))
	b.mu.Unlock()
	if err != nil {
		return fmt.Errorf("%s: %w", method, err)
	}
	select {
	case m := <-ch:
		if m.Error != nil {
			return fmt.Errorf("%s: %s", method, m.Error.Message)
		}
		if result == nil {
			return nil
		}
		return json.Unmarshal(m.Result, result)
	case <-ctx.Done():
		return fmt.Errorf("%s: no answer from chromium: %w", method, ctx.Err())
	}
}

// page is one tab.
type page struct {
	b       *browser
	session string
}

// open opens a new tab at url.
func (b *browser) open(t *testing.T, url string) *page {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var target struct {
		TargetID string `json:"targetId"`
	}
	require.NoError(t, b.call(ctx, "", "Target.createTarget", map[string]any{"url": "about:blank"}, &target))
	var attached struct {
		SessionID string `json:"sessionId"`
	}
	require.NoError(t, b.call(ctx, "", "Target.attachToTarget", map[string]any{"targetId": target.TargetID, "flatten": true}, &attached))
	p := &page{b: b, session: attached.SessionID}
	var nav struct {
		ErrorText string `json:"errorText"`
	}
	require.NoError(t, b.call(ctx, p.session, "Page.navigate", map[string]any{"url": url}, &nav))
	require.Empty(t, nav.ErrorText, "open %s", url)
	return p
}

// waitText polls the page's visible text until ok accepts it.
func (p *page) waitText(t *testing.T, ok func(string) bool, within time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(within)
	var shown struct{ URL, Text string }
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		var res struct {
			Result struct {
				Value string `json:"value"`
			} `json:"result"`
		}
		err := p.b.call(ctx, p.session, "Runtime.evaluate", map[string]any{"returnByValue": true,
			"expression": "JSON.stringify({url: location.href, text: document.body ? document.body.innerText : ''})"}, &res)
		cancel()
		if err == nil && json.Unmarshal([]byte(res.Result.Value), &shown) == nil && ok(shown.Text) {
			return shown.Text
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("%s never showed what was expected within %s; it shows:\n%s", shown.URL, within, shown.Text)
	return ""
}
