package tests

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

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

// eval evaluates expression in the page and decodes its value (returned by
// value, so it should be JSON-able) into result; it fails the test on a
// thrown exception.
func (p *page) eval(t *testing.T, expression string, result any) {
	t.Helper()
	p.evaluate(t, expression, false, result)
}

// await is eval for an expression whose value is a promise (a fetch, say):
// it decodes what the promise resolves to.
func (p *page) await(t *testing.T, expression string, result any) {
	t.Helper()
	p.evaluate(t, expression, true, result)
}

func (p *page) evaluate(t *testing.T, expression string, awaitPromise bool, result any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var res struct {
		Result struct {
			Value json.RawMessage `json:"value"`
		} `json:"result"`
		ExceptionDetails *struct {
			Text      string `json:"text"`
			Exception struct {
				Description string `json:"description"`
			} `json:"exception"`
		} `json:"exceptionDetails"`
	}
	require.NoError(t, p.b.call(ctx, p.session, "Runtime.evaluate", map[string]any{"expression": expression, "returnByValue": true, "awaitPromise": awaitPromise}, &res))
	if res.ExceptionDetails != nil {
		t.Fatalf("the page threw evaluating %q: %s %s", expression, res.ExceptionDetails.Text, res.ExceptionDetails.Exception.Description)
	}
	if result != nil {
		require.NoError(t, json.Unmarshal(res.Result.Value, result), "%s", res.Result.Value)
	}
}

// status is the HTTP status of the document the tab shows (0 when the
// browser does not know it).
func (p *page) status(t *testing.T) int {
	t.Helper()
	var code int
	p.eval(t, `(() => { const n = performance.getEntriesByType('navigation')[0]; return n ? (n.responseStatus || 0) : 0; })()`, &code)
	return code
}

// navigate loads url in the tab.
func (p *page) navigate(t *testing.T, url string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var nav struct {
		ErrorText string `json:"errorText"`
	}
	require.NoError(t, p.b.call(ctx, p.session, "Page.navigate", map[string]any{"url": url}, &nav))
	require.Empty(t, nav.ErrorText, "open %s", url)
}

// keys the test presses, as CDP's Input.dispatchKeyEvent names them.
var (
	keyTab   = map[string]any{"key": "Tab", "code": "Tab", "windowsVirtualKeyCode": 9, "nativeVirtualKeyCode": 9}
	keyEnter = map[string]any{"key": "Enter", "code": "Enter", "windowsVirtualKeyCode": 13, "nativeVirtualKeyCode": 13, "text": "\r", "unmodifiedText": "\r"}
	keySpace = map[string]any{"key": " ", "code": "Space", "windowsVirtualKeyCode": 32, "nativeVirtualKeyCode": 32, "text": " ", "unmodifiedText": " "}
)

// press presses and releases one key in the focused element.
func (p *page) press(t *testing.T, key map[string]any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	down := map[string]any{"type": "keyDown"}
	up := map[string]any{"type": "keyUp"}
	for k, v := range key {
		down[k] = v
		if k != "text" && k != "unmodifiedText" {
			up[k] = v
		}
	}
	require.NoError(t, p.b.call(ctx, p.session, "Input.dispatchKeyEvent", down, nil))
	require.NoError(t, p.b.call(ctx, p.session, "Input.dispatchKeyEvent", up, nil))
}

// typeText types text into the focused element, one key per character.
func (p *page) typeText(t *testing.T, text string) {
	t.Helper()
	for _, r := range text {
		s := string(r)
		p.press(t, map[string]any{"key": s, "text": s, "unmodifiedText": s})
	}
}

// tabTo presses Tab until the focused element matches the CSS selector,
// and fails when it is not reached within limit presses: what the mouse can
// reach, the keyboard must too.
func (p *page) tabTo(t *testing.T, selector string, limit int) {
	t.Helper()
	sel, err := json.Marshal(selector)
	require.NoError(t, err)
	for range limit {
		p.press(t, keyTab)
		var focused bool
		p.eval(t, fmt.Sprintf("!!document.activeElement && document.activeElement.matches(%s)", sel), &focused)
		if focused {
			return
		}
	}
	t.Fatalf("%d presses of Tab never focused %s", limit, selector)
}

// screenshot saves a PNG of the whole page at path.
func (p *page) screenshot(t *testing.T, path string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var shot struct {
		Data []byte `json:"data"` // base64 in JSON
	}
	require.NoError(t, p.b.call(ctx, p.session, "Page.captureScreenshot", map[string]any{"format": "png", "captureBeyondViewport": true}, &shot))
	require.NoError(t, os.WriteFile(path, shot.Data, 0o644))
}

// cdpContext bounds one CDP call.
func cdpContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 30*time.Second)
}

// jsString quotes s as a JavaScript string literal.
func jsString(s string) string {
	raw, err := json.Marshal(s)
	if err != nil {
		panic(err)
	}
	return string(raw)
}
