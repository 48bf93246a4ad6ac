package main

import (
	"context"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"go.temporal.io/api/workflowservice/v1"

	"github.com/signalbox-dev/signalbox/stack"
	"github.com/signalbox-dev/signalbox/store"
	"github.com/signalbox-dev/signalbox/store/storetest"
)

const consoleHeading = "## Operator console"

// consoleResult is what the operator console measured with many items
// waiting for one team.
type consoleResult struct {
	Started  time.Time
	Duration time.Duration
	// Items were held Blocked for team sales; BlockedWall is how long they
	// took to be started and all Blocked.
	Items       int
	BlockedWall time.Duration
	// Inbox is the first page of the inbox, one request at a time from a
	// warm client; InboxRows the items it listed.
	Inbox     []time.Duration
	InboxRows int
	// Operators signed in at once, each loading the inbox and an item page
	// in turn for LoadFor.
	Operators           int
	LoadFor             time.Duration
	LoadInbox, LoadItem []time.Duration
	LoadErrors          int
	FirstError          string
	// Where the inbox's time goes, measured from the bench with the same
	// calls, one at a time: the page and the count from PostgreSQL's
	// waiting_items, and the one visibility query for the page's runs;
	// medians of 5.
	Page, Runs time.Duration
}

// benchConsole holds o.blocked items Blocked for team sales on a stack of
// its own, starts `signals serve` and measures its inbox and item pages.
func benchConsole(ctx context.Context, o options) (res consoleResult, err error) {
	res = consoleResult{Started: time.Now(), Items: o.blocked, Operators: o.consoleOperators, LoadFor: o.consoleFor}
	defer func() { res.Duration = time.Since(res.Started) }()
	dbURL, drop, err := storetest.NewDatabase(storetest.ServerURL())
	if err != nil {
		return res, err
	}
	defer func() { _ = drop() }()
	dataDir, err := os.MkdirTemp("", "signalbox-bench-console-")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(dataDir)

	// alice and op01…opNN decide for sales, each with a console token.
	names := []string{"alice"}
	for i := 1; i <= o.consoleOperators; i++ {
		names = append(names, fmt.Sprintf("op%02d", i))
	}
	tokens := map[string]string{}
	var tokenList []string
	for _, n := range names {
		tokens[n] = fmt.Sprintf("bench-console-token-%s-%d", n, res.Started.UnixNano())
		tokenList = append(tokenList, n+"="+tokens[n])
	}

	progress("console: starting the stack (logs in %s)", dataDir)
	s, err := stack.Start(ctx, stack.Options{
		BinDir: o.binDir, TemporalCLI: filepath.Join(o.binDir, "temporal"), StripeMock: filepath.Join(o.binDir, "stripe-mock"),
		DataDir: dataDir, DatabaseURL: dbURL,
		Env: []string{"SIGNALBOX_OPERATORS=sales=" + strings.Join(names, ","), "SIGNALBOX_LOG_LEVEL=warn",
			"SIGNALBOX_CRM_RATE=100000", "SIGNALBOX_CHAT_RATE=100000", "SIGNALBOX_CRM_CONCURRENCY=64", "SIGNALBOX_CHAT_CONCURRENCY=64"},
	})
	if err != nil {
		return res, err
	}
	defer s.Stop()

	progress("console: holding %d items Blocked for team sales", o.blocked)
	prefix := fmt.Sprintf("bench-console-%d", time.Now().UnixNano())
	began := time.Now()
	if _, err := fanOut(o.blocked, o.startConcurrency, func(i int) error {
		_, err := startLead(false)(ctx, s.Client, fmt.Sprintf("%s-%05d", prefix, i))
		return err
	}); err != nil {
		return res, err
	}
	query := fmt.Sprintf("SourceKey STARTS_WITH '%s-' AND IntegrationStatus = 'Blocked'", prefix)
	if err := waitCount(ctx, s.Client, query, int64(o.blocked), 30*time.Minute); err != nil {
		return res, err
	}
	res.BlockedWall = time.Since(began)

	base, stop, err := startConsoleServer(ctx, s, o.binDir, dataDir, strings.Join(tokenList, ";"))
	if err != nil {
		return res, err
	}
	defer stop()

	// (1) The inbox's first page, one request at a time, from a warm client.
	alice, err := consoleSignIn(base, tokens["alice"])
	if err != nil {
		return res, err
	}
	var first string
	for range 3 {
		if first, err = alice.get("/"); err != nil {
			return res, fmt.Errorf("console warm-up: %w", err)
		}
	}
	items := itemLinks(first)
	res.InboxRows = len(items)
	if len(items) == 0 {
		return res, errors.New("console: the inbox's first page lists no items")
	}
	progress("console: the inbox's first page, %d requests", o.consoleRequests)
	for range o.consoleRequests {
		t0 := time.Now()
		if _, err := alice.get("/"); err != nil {
			return res, err
		}
		res.Inbox = append(res.Inbox, time.Since(t0))
	}

	// Where the inbox's time goes: its two backend steps, alone.
	pool, err := store.Connect(ctx, dbURL)
	if err != nil {
		return res, err
	}
	defer pool.Close()
	var pages, runs []time.Duration
	for range 5 {
		t0 := time.Now()
		page, total, err := store.New(pool).WaitingItems(ctx, store.WaitingFilter{Teams: []string{"sales"}, Limit: 50})
		if err != nil {
			return res, err
		}
		if total != o.blocked {
			return res, fmt.Errorf("console: %d items in waiting_items, want %d", total, o.blocked)
		}
		pages = append(pages, time.Since(t0))
		ids := make([]string, len(page))
		for i, it := range page {
			ids[i] = "'" + it.RunID + "'"
		}
		t0 = time.Now()
		resp, err := s.Client.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Query: "RunId IN (" + strings.Join(ids, ", ") + ")", PageSize: int32(len(ids))})
		if err != nil {
			return res, err
		}
		if len(resp.GetExecutions()) != len(ids) {
			return res, fmt.Errorf("console: visibility found %d of the page's %d runs", len(resp.GetExecutions()), len(ids))
		}
		runs = append(runs, time.Since(t0))
	}
	res.Page, res.Runs = percentile(pages, 0.5), percentile(runs, 0.5)

	// (2) Many operators at once, each with a session of their own.
	progress("console: %d operators at once for %s", o.consoleOperators, o.consoleFor)
	clients := make([]*consoleSession, o.consoleOperators)
	for i := range clients {
		if clients[i], err = consoleSignIn(base, tokens[names[i+1]]); err != nil {
			return res, err
		}
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	deadline := time.Now().Add(o.consoleFor)
	for i, c := range clients {
		wg.Go(func() {
			var inbox, item []time.Duration
			errs, firstErr := 0, ""
			for n := i; time.Now().Before(deadline); n++ {
				for _, path := range []string{"/", "/items/" + items[n%len(items)]} {
					t0 := time.Now()
					_, err := c.get(path)
					d := time.Since(t0)
					if err != nil {
						errs++
						if firstErr == "" {
							firstErr = err.Error()
						}
						continue
					}
					if path == "/" {
						inbox = append(inbox, d)
					} else {
						item = append(item, d)
					}
				}
			}
			mu.Lock()
			defer mu.Unlock()
			res.LoadInbox = append(res.LoadInbox, inbox...)
			res.LoadItem = append(res.LoadItem, item...)
			res.LoadErrors += errs
			if res.FirstError == "" {
				res.FirstError = firstErr
			}
		})
	}
	wg.Wait()
	return res, nil
}

// startConsoleServer runs `signals serve` against s with the given tokens.
func startConsoleServer(ctx context.Context, s *stack.Stack, binDir, dataDir, tokens string) (string, func(), error) {
	for attempt := 1; ; attempt++ {
		addr, err := stack.FreeAddr()
		if err != nil {
			return "", nil, err
		}
		proc := &stack.Process{Name: "console", Path: filepath.Join(binDir, "signals"), Args: []string{"serve"},
			LogPath: filepath.Join(dataDir, "console.log"),
			Env: append(append([]string(nil), s.Env...), "SIGNALBOX_CONSOLE_ADDR="+addr,
				"SIGNALBOX_CONSOLE_TOKENS="+tokens, "SIGNALBOX_CONSOLE_TRUSTED_PROXIES="),
			ReadyURL: "http://" + addr + "/healthz"}
		err = proc.Start(ctx)
		if err == nil {
			return "http://" + addr, func() { _ = proc.Stop(15 * time.Second) }, nil
		}
		// A port picked free may be taken before the console binds it.
		if attempt >= 3 || !strings.Contains(err.Error(), "address already in use") {
			return "", nil, err
		}
	}
}

// consoleSession is one operator's browser: a cookie jar, keep-alive.
type consoleSession struct {
	base   string
	client *http.Client
}

func consoleSignIn(base, token string) (*consoleSession, error) {
	jar, err := cookiejar.New(nil)
	if err != nil {
		return nil, err
	}
	c := &consoleSession{base: base, client: &http.Client{Jar: jar, Timeout: time.Minute,
		Transport:     &http.Transport{MaxIdleConnsPerHost: 4},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	resp, err := c.client.PostForm(base+"/signin", url.Values{"token": {token}, "next": {"/"}})
	if err != nil {
		return nil, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		return nil, fmt.Errorf("console sign-in: %s", resp.Status)
	}
	return c, nil
}

// get loads a page; anything but 200 is an error.
func (c *consoleSession) get(path string) (string, error) {
	resp, err := c.client.Get(c.base + path)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		// The console says what went wrong in the page's error.
		msg := ""
		if m := pageError.FindStringSubmatch(string(body)); m != nil {
			msg = ": " + html.UnescapeString(m[1])
		}
		return "", fmt.Errorf("GET %s: %s%s", path, resp.Status, msg)
	}
	return string(body), nil
}

var pageError = regexp.MustCompile(`<p class="error" role="alert">([^<]*)</p>`)

var itemLink = regexp.MustCompile(`<a href="/items/([^"]+)">`)

func itemLinks(page string) []string {
	var ids []string
	for _, m := range itemLink.FindAllStringSubmatch(page, -1) {
		ids = append(ids, m[1])
	}
	return ids
}

func (r *report) consoleSection() string {
	c := r.Console
	if c == nil {
		return ""
	}
	b := sectionStart(consoleHeading, c.Started, c.Duration)
	fmt.Fprintf(b, "Command: `make bench BENCH_FLAGS='-only console'` (`go run ./bench -only console -blocked %d -console-requests %d -console-operators %d -console-for %s`).\n\n```\n",
		c.Items, len(c.Inbox), c.Operators, c.LoadFor)
	p50, p95 := percentile(c.Inbox, 0.5), percentile(c.Inbox, 0.95)
	fmt.Fprintf(b, "%d items waiting for team sales (leads without consent), all Blocked after %s\n", c.Items, c.BlockedWall.Round(time.Second))
	fmt.Fprintf(b, "inbox, first page (%d rows), %d requests one at a time: median %s, p95 %s (≤ 300 ms: %s)\n",
		c.InboxRows, len(c.Inbox), ms(p50), ms(p95), verdict(p95 <= 300*time.Millisecond))
	all := append(append([]time.Duration(nil), c.LoadInbox...), c.LoadItem...)
	fmt.Fprintf(b, "  where it goes (the same calls from the bench, medians of 5): the page and the count from PostgreSQL %s; the page's runs from visibility, one query, %s\n",
		ms(c.Page), ms(c.Runs))
	fmt.Fprintf(b, "%d operators at once for %s: %d requests (%.1f/s), %d errors (0: %s)\n",
		c.Operators, c.LoadFor, len(all)+c.LoadErrors, float64(len(all)+c.LoadErrors)/c.LoadFor.Seconds(), c.LoadErrors, verdict(c.LoadErrors == 0))
	fmt.Fprintf(b, "  all pages   p50 %s, p95 %s\n", ms(percentile(all, 0.5)), ms(percentile(all, 0.95)))
	fmt.Fprintf(b, "  inbox       p50 %s, p95 %s (%d requests)\n", ms(percentile(c.LoadInbox, 0.5)), ms(percentile(c.LoadInbox, 0.95)), len(c.LoadInbox))
	fmt.Fprintf(b, "  item page   p50 %s, p95 %s (%d requests)\n", ms(percentile(c.LoadItem, 0.5)), ms(percentile(c.LoadItem, 0.95)), len(c.LoadItem))
	if c.FirstError != "" {
		fmt.Fprintf(b, "  first error: %s\n", c.FirstError)
	}
	b.WriteString("```\n\n")
	b.WriteString(`- Times are HTTP round trips on loopback from a client that is signed in and keeps its
  connections open: the console's server time plus loopback, which is well under a millisecond.
  The console, the dev server, PostgreSQL and the bench share the machine's cores.
- The inbox's page reads the team's waiting items, oldest first, and their count from
  ` + "`waiting_items`" + ` (the audit trail's projection in PostgreSQL), then asks visibility in one query
  which of the page's runs ended; the item page reads the item's status query, its run and its
  audit trail.
- Under load, each operator has a session of their own (` + "`SIGNALBOX_CONSOLE_TOKENS`" + `, all of them
  operators of sales in ` + "`SIGNALBOX_OPERATORS`" + `) and loads the inbox, then an item of the first page,
  in turn, without pause.
`)
	return b.String()
}
