package tests

import (
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/signalbox-dev/signalbox/api"
)

// TestConsoleInChromium uses the console as a person does, in a real
// browser (Debian's chromium, headless), with the keyboard alone: alice
// types her token into the sign-in form and presses Enter, finds the
// blocked lead in her inbox, tabs to it and opens it, tabs to the approve
// form's reason, types it and submits; the item is Synced and the audit
// trail names her. The sign-in, inbox and item pages pass an accessibility
// check run in the page (a11yCheck). With SIGNALBOX_SCREENSHOTS=1 the test
// saves screenshots of the inbox and the item page in docs/img.
func TestConsoleInChromium(t *testing.T) {
	t.Parallel()
	chromium := chromiumPath(t)
	id := blockedLead(t, "e2e-console-browser")
	con := startConsole(t, shared)
	b := startChromium(t, chromium)
	p := b.open(t, "about:blank")
	setViewport(t, p)

	// Sign in: the sign-in page, then the token typed and Enter pressed.
	p.navigate(t, con.url+"/")
	p.waitText(t, func(s string) bool { return strings.Contains(s, "Your console token") }, waitFor)
	a11yCheck(t, p, "the sign-in page")
	p.tabTo(t, "input#token", 20)
	p.typeText(t, consoleAliceToken)
	p.press(t, keyEnter)
	p.waitText(t, func(s string) bool { return strings.Contains(s, "Signed in as alice") }, waitFor)

	// The inbox, filtered to blocked leads of sales, page by page (oldest
	// first) until it lists the lead.
	p.navigate(t, con.url+"/?integration=lead-to-crm&exception=ConsentMissing&team=sales")
	link := `a[href="/items/` + id + `"]`
	for pages := 0; ; pages++ {
		require.Less(t, pages, 100, "the inbox has more than 100 pages")
		p.waitText(t, func(s string) bool { return strings.Contains(s, "Waiting for your teams") }, waitFor)
		var found struct {
			Listed bool   `json:"listed"`
			Row    string `json:"row"`
			Next   string `json:"next"`
		}
		p.eval(t, `(() => { const a = document.querySelector(`+jsString(link)+`); const n = document.querySelector('a[rel="next"]');
			return {listed: !!a, row: a ? a.closest('tr').innerText : '', next: n ? n.href : ''}; })()`, &found)
		if found.Listed {
			require.Contains(t, found.Row, "ConsentMissing (Blocked)", "the inbox shows the lead Blocked")
			break
		}
		require.NotEmpty(t, found.Next, "no page of alice's inbox lists %s", id)
		p.navigate(t, found.Next)
	}
	a11yCheck(t, p, "the inbox")
	if os.Getenv("SIGNALBOX_SCREENSHOTS") != "" {
		p.screenshot(t, filepath.Join("..", "docs", "img", "console-inbox.png"))
	}

	// Open the lead with the keyboard.
	p.tabTo(t, link, 400)
	p.press(t, keyEnter)
	p.waitText(t, func(s string) bool {
		return strings.Contains(s, "Allowed decisions: approve, reject.") && strings.Contains(s, "Running → Blocked")
	}, waitFor)
	a11yCheck(t, p, "the item page")
	if os.Getenv("SIGNALBOX_SCREENSHOTS") != "" {
		p.screenshot(t, filepath.Join("..", "docs", "img", "console-item.png"))
	}

	// Approve it: Tab to the approve form's reason, type it, Tab to its
	// button, Enter.
	p.tabTo(t, "textarea#reason-approve", 100)
	p.typeText(t, "consent given on the phone, call #43")
	p.press(t, keyTab)
	var onButton bool
	p.eval(t, `document.activeElement.matches('form.decision button[type="submit"]') && document.activeElement.form.querySelector('input[name="action"]').value === 'approve'`, &onButton)
	require.True(t, onButton, "Tab from the reason reaches the approve button")
	p.press(t, keyEnter)
	p.waitText(t, func(s string) bool { return strings.Contains(s, "approve applied") }, waitFor)

	require.Equal(t, api.StatusSynced, shared.waitResult(t, id).Status)
	trail := shared.auditTrail(t, id)
	require.Contains(t, transitions(trail), "approve Blocked→Running alice")

	// The page, reloaded, shows it Synced and alice's row in the audit trail.
	p.navigate(t, con.url+"/items/"+id)
	text := p.waitText(t, func(s string) bool { return strings.Contains(s, "The item is Synced") }, waitFor)
	require.Regexp(t, `\talice[^\t\n]*\tapprove\tBlocked → Running\tconsent given on the phone, call #43`, text)
	a11yCheck(t, p, "the decided item page")

	// The check itself finds what it looks for: on the inbox, a label
	// removed, grey text, a skipped heading level and an image without alt.
	p.navigate(t, con.url+"/")
	p.waitText(t, func(s string) bool { return strings.Contains(s, "Waiting for your teams") }, waitFor)
	p.eval(t, `(() => {
		document.querySelector('label[for="f-integration"]').remove();
		const h1 = document.querySelector('h1');
		h1.insertAdjacentHTML('afterend', '<h3>skipped</h3><p id="faint">faint</p><img src="/static/console.css">');
		document.getElementById('faint').style.color = '#aaa'; // the CSP refuses style attributes, not the CSSOM
		return true; })()`, nil)
	var problems []string
	p.eval(t, a11yScript, &problems)
	joined := strings.Join(problems, "\n")
	require.Contains(t, joined, "no label: select#f-integration")
	require.Contains(t, joined, `heading H3 "skipped" follows h1`)
	require.Contains(t, joined, `"faint"`)
	require.Contains(t, joined, "img without alt")
}

func setViewport(t *testing.T, p *page) {
	t.Helper()
	ctx, cancel := cdpContext()
	defer cancel()
	require.NoError(t, p.b.call(ctx, p.session, "Emulation.setDeviceMetricsOverride",
		map[string]any{"width": 1280, "height": 800, "deviceScaleFactor": 1, "mobile": false}, nil))
}

// a11yCheck runs a11yScript in the page and fails the test with what it
// finds wrong.
func a11yCheck(t *testing.T, p *page, what string) {
	t.Helper()
	var problems []string
	p.eval(t, a11yScript, &problems)
	require.Empty(t, problems, "%s has accessibility problems", what)
}

// a11yScript checks the page as loaded: labelled form fields, landmarks,
// language and title, image alternatives, heading levels and text
// contrast (WCAG's 4.5:1, for all text). It returns the problems found.
const a11yScript = `(() => {
  const problems = [];
  const describe = (el) => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') + (el.getAttribute('name') ? '[name=' + el.getAttribute('name') + ']' : '');
  const visible = (el) => { const r = el.getBoundingClientRect(); const s = getComputedStyle(el); return r.width > 1 && r.height > 1 && s.visibility !== 'hidden' && s.display !== 'none'; };

  // Every form field has a label: label[for], a wrapping label, or aria-label(ledby).
  for (const el of document.querySelectorAll('input, select, textarea')) {
    if (el.type === 'hidden') continue;
    const byFor = el.id && [...document.querySelectorAll('label[for]')].some(l => l.htmlFor === el.id && l.textContent.trim() !== '');
    const wrapped = el.closest('label') && el.closest('label').textContent.trim() !== '';
    const aria = (el.getAttribute('aria-label') || '').trim() !== '' || (el.getAttribute('aria-labelledby') || '').trim() !== '';
    if (!byFor && !wrapped && !aria) problems.push('no label: ' + describe(el));
  }

  // Landmarks, language, title.
  const mains = document.querySelectorAll('main, [role=main]').length;
  if (mains !== 1) problems.push(mains + ' main landmarks, not 1');
  if (!document.querySelector('nav, header, [role=navigation], [role=banner]')) problems.push('no nav or header');
  if (!(document.documentElement.getAttribute('lang') || '').trim()) problems.push('no <html lang>');
  if (!document.title.trim()) problems.push('no <title>');
  for (const img of document.querySelectorAll('img')) if (!img.hasAttribute('alt')) problems.push('img without alt: ' + img.src);

  // Headings start at h1 and go down one level at a time.
  let last = 0;
  for (const h of document.querySelectorAll('h1, h2, h3, h4, h5, h6')) {
    const level = Number(h.tagName[1]);
    if (level > last + 1) problems.push('heading ' + h.tagName + ' "' + h.textContent.trim() + '" follows h' + last);
    last = level;
  }

  // Contrast of each element's own text against its background, found by
  // walking up until a background is opaque (blending translucent ones).
  const rgba = (s) => { const m = s.match(/rgba?\(([^)]+)\)/); if (!m) return null; const p = m[1].split(/[ ,\/]+/).filter(Boolean).map(Number); return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1]; };
  const over = (top, under) => { const a = top[3]; return [0, 1, 2].map(i => top[i] * a + under[i] * (1 - a)).concat([1]); };
  const background = (el) => {
    const layers = [];
    for (let e = el; e; e = e.parentElement) {
      const c = rgba(getComputedStyle(e).backgroundColor);
      if (c && c[3] > 0) { layers.push(c); if (c[3] >= 1) break; }
    }
    let bg = [255, 255, 255, 1];
    for (let i = layers.length - 1; i >= 0; i--) bg = over(layers[i], bg);
    return bg;
  };
  const luminance = (c) => { const l = c.slice(0, 3).map(v => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); }); return 0.2126 * l[0] + 0.7152 * l[1] + 0.0722 * l[2]; };
  for (const el of document.body.querySelectorAll('*')) {
    const own = [...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim() !== '');
    if (!own || !visible(el) || el.closest('.visually-hidden')) continue;
    const bg = background(el);
    const fg = over(rgba(getComputedStyle(el).color), bg);
    const [hi, lo] = [luminance(fg), luminance(bg)].sort((a, b) => b - a);
    const ratio = (hi + 0.05) / (lo + 0.05);
    if (ratio < 4.5) problems.push('contrast ' + ratio.toFixed(2) + ':1 for ' + describe(el) + ' "' + el.textContent.trim().slice(0, 40) + '"');
  }
  return problems;
})()`

// signInInChromium signs in to the console in the tab as a person does:
// the token typed into the sign-in form, Enter pressed.
func signInInChromium(t *testing.T, p *page, con *consoleServer, token, operator string) {
	t.Helper()
	p.navigate(t, con.url+"/")
	p.waitText(t, func(s string) bool { return strings.Contains(s, "Your console token") }, waitFor)
	p.tabTo(t, "input#token", 20)
	p.typeText(t, token)
	p.press(t, keyEnter)
	p.waitText(t, func(s string) bool { return strings.Contains(s, "Signed in as "+operator) }, waitFor)
}

// blockedLeadsOn posts n leads without consent to the stack e, at most 10
// at a time, and waits until visibility finds them all Blocked on
// ConsentMissing; it returns their item IDs. The query counts every such
// item of e: e must hold no others.
func blockedLeadsOn(t *testing.T, e *env, prefix string, n int) []string {
	t.Helper()
	keys := make([]string, n)
	codes := make([]int, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 10)
	base := uniqueKey(t, prefix)
	for i := range n {
		keys[i] = fmt.Sprintf("%s-%03d", base, i)
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			l := lead(keys[i])
			l.Consent = false
			codes[i], errs[i] = e.tryPost("/v1/leads", l)
		})
	}
	wg.Wait()
	ids := make([]string, n)
	for i := range n {
		require.NoError(t, errs[i], keys[i])
		require.Equal(t, http.StatusAccepted, codes[i], keys[i])
		ids[i] = api.ItemID(api.IntegrationLeadToCRM, keys[i])
	}
	e.waitVisible(t, "IntegrationStatus = 'Blocked' AND ExceptionKind = 'ConsentMissing'", int64(n))
	return ids
}

// TestConsoleBulkApprovesFiftyLeadsInChromium: alice ticks fifty blocked
// leads in her inbox with the keyboard (Space on each checkbox), gives one
// reason and presses Decide; the answer lists fifty applied, each lead is
// Synced, and each audit trail holds her approve with her reason. The stack
// is the test's own, so that her inbox holds these fifty alone: one page.
func TestConsoleBulkApprovesFiftyLeadsInChromium(t *testing.T) {
	t.Parallel()
	chromium := chromiumPath(t)
	// The stack's chat (5/s) and CRM (20/s) limits would make the fifty
	// notifications and writes take most of the test's time: it is not
	// about them.
	e := startStack(t, "", "SIGNALBOX_CRM_RATE=50", "SIGNALBOX_CHAT_RATE=50", "SIGNALBOX_CRM_CONCURRENCY=16", "SIGNALBOX_CHAT_CONCURRENCY=16")
	ids := blockedLeadsOn(t, e, "e2e-console-fifty", 50)
	con := startConsole(t, e)
	b := startChromium(t, chromium)
	p := b.open(t, "about:blank")
	setViewport(t, p)
	signInInChromium(t, p, con, consoleAliceToken, "alice")

	// Her inbox, filtered to blocked leads, lists the fifty on one page (the
	// inbox reads the audit trail's projection: reload until it has them).
	inbox := con.url + "/?integration=lead-to-crm&exception=ConsentMissing"
	var listed []string
	for deadline := time.Now().Add(waitFor); ; {
		p.navigate(t, inbox)
		p.waitText(t, func(s string) bool { return strings.Contains(s, "Waiting for your teams") }, waitFor)
		p.eval(t, `[...document.querySelectorAll('form#bulk input[type=checkbox][name=id]')].map(c => c.value)`, &listed)
		if len(listed) == len(ids) || time.Now().After(deadline) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	require.ElementsMatch(t, ids, listed, "the inbox's page lists exactly the fifty, each with a checkbox")
	var next bool
	p.eval(t, `!!document.querySelector('a[rel="next"]')`, &next)
	require.False(t, next, "the fifty fit one page")

	// Tick each with the keyboard: Tab to the next unticked box, Space.
	for i := range ids {
		p.tabTo(t, `form#bulk input[type=checkbox][name=id]:not(:checked)`, 40)
		p.press(t, keySpace)
		var checked bool
		p.eval(t, `document.activeElement.checked`, &checked)
		require.True(t, checked, "Space ticks checkbox %d", i+1)
	}
	var ticked []string
	p.eval(t, `[...document.querySelectorAll('form#bulk input[name=id]:checked')].map(c => c.value)`, &ticked)
	require.ElementsMatch(t, ids, ticked)

	// The decision (approve is the first), a reason, and Decide.
	p.tabTo(t, "select#b-action", 20)
	var action string
	p.eval(t, `document.activeElement.value`, &action)
	require.Equal(t, "approve", action)
	p.tabTo(t, "input#b-reason", 5)
	p.typeText(t, "consent confirmed by the event's sign-up sheet")
	p.press(t, keyTab)
	var onDecide bool
	p.eval(t, `document.activeElement.matches('form#bulk fieldset.bulk button[type="submit"]')`, &onDecide)
	require.True(t, onDecide, "Tab from the reason reaches Decide")
	p.press(t, keyEnter)
	p.waitText(t, func(s string) bool { return strings.Contains(s, "approve: 50 applied, 0 refused, 0 failed") }, 2*waitFor)
	require.Equal(t, http.StatusOK, p.status(t))
	var outcomes map[string]string
	p.eval(t, `Object.fromEntries([...document.querySelectorAll('main tbody tr')].map(tr => [tr.cells[0].innerText.trim(), tr.cells[1].innerText.trim()]))`, &outcomes)
	require.Len(t, outcomes, len(ids), "the answer lists every item once")
	for _, id := range ids {
		require.Equal(t, "applied", outcomes[id], id)
	}

	for _, id := range ids {
		require.Equal(t, api.StatusSynced, e.waitResult(t, id).Status, id)
	}
	for _, id := range ids {
		trail := e.auditTrail(t, id)
		i := slices.Index(transitions(trail), "approve Blocked→Running alice")
		require.GreaterOrEqual(t, i, 0, "%s: the audit trail holds alice's approve: %v", id, transitions(trail))
		require.Equal(t, "consent confirmed by the event's sign-up sheet", trail[i].Reason, id)
		require.Equal(t, "synced Running→Synced system", transitions(trail)[len(trail)-1], id)
	}
}

// TestConsoleFinanceCannotSeeOrDecideSalesItemsInChromium: carol (finance)
// signs in; no page of her inbox lists the sales team's blocked lead, its
// page answers 403 without its details, and decisions forged from inside
// her signed-in page — a fetch and a form injected into the DOM, each with
// her CSRF token and the item's current exception, and a bulk decision —
// are refused: the lead stays Blocked, with nothing of carol's in its audit
// trail.
func TestConsoleFinanceCannotSeeOrDecideSalesItemsInChromium(t *testing.T) {
	t.Parallel()
	chromium := chromiumPath(t)
	id := blockedLead(t, "e2e-console-browser-finance")
	con := startConsole(t, shared)
	// What the item's own page would carry, as alice sees it: a forgery
	// that knew it would be refused for the team alone.
	alice := con.signIn(t, consoleAliceToken)
	code, itemPage, _ := alice.get("/items/" + id)
	require.Equal(t, http.StatusOK, code)
	exceptionRef := hiddenField(t, itemPage, "exception")

	b := startChromium(t, chromium)
	p := b.open(t, "about:blank")
	setViewport(t, p)
	signInInChromium(t, p, con, consoleCarolToken, "carol")

	// No page of her inbox lists it.
	p.navigate(t, con.url+"/")
	for pages := 0; ; pages++ {
		require.Less(t, pages, 100, "carol's inbox has more than 100 pages")
		p.waitText(t, func(s string) bool { return strings.Contains(s, "Waiting for your teams") }, waitFor)
		var found struct {
			Listed bool   `json:"listed"`
			Teams  string `json:"teams"`
			Next   string `json:"next"`
		}
		p.eval(t, `(() => { const n = document.querySelector('a[rel="next"]');
			return {listed: !!document.querySelector(`+jsString(`a[href="/items/`+id+`"]`)+`) || document.body.innerText.includes(`+jsString(id)+`),
				teams: [...document.querySelectorAll('table.items tbody tr')].map(tr => tr.cells[5].innerText).join(','),
				next: n ? n.href : ''}; })()`, &found)
		require.False(t, found.Listed, "carol's inbox lists the sales lead %s", id)
		for _, team := range strings.Split(found.Teams, ",") {
			require.Contains(t, []string{"", "finance"}, strings.TrimSpace(team), "carol's inbox lists only finance's items")
		}
		if found.Next == "" {
			break
		}
		p.navigate(t, found.Next)
	}

	// Its page: 403, and nothing of the lead.
	p.navigate(t, con.url+"/items/"+id)
	text := p.waitText(t, func(s string) bool { return strings.Contains(s, "Not your team's item") }, waitFor)
	require.Equal(t, http.StatusForbidden, p.status(t))
	require.Contains(t, text, "decided by team sales")
	require.NotContains(t, text, "did not consent")
	require.NotContains(t, text, "Allowed decisions")
	a11yCheck(t, p, "the 403 page")

	// Forged from inside her page: her CSRF token is in it (the sign-out form).
	var csrf string
	p.eval(t, `document.querySelector('input[name=csrf]').value`, &csrf)
	require.NotEmpty(t, csrf)
	var forged struct {
		Status int    `json:"status"`
		Text   string `json:"text"`
	}
	p.await(t, `fetch('/items/`+id+`/decide', {method: 'POST', body: new URLSearchParams({csrf: `+jsString(csrf)+`,
		exception: `+jsString(exceptionRef)+`, action: 'approve', reason: 'forged by a script', actor: 'alice'})})
		.then(async r => ({status: r.status, text: await r.text()}))`, &forged)
	require.Equal(t, http.StatusForbidden, forged.Status, "a forged fetch is refused: %s", forged.Text)
	require.Contains(t, forged.Text, "decided by team sales")

	p.await(t, `fetch('/decide', {method: 'POST', body: new URLSearchParams([['csrf', `+jsString(csrf)+`], ['id', `+jsString(id)+`],
		['action', 'approve'], ['reason', 'forged in bulk']])}).then(async r => ({status: r.status, text: await r.text()}))`, &forged)
	require.Equal(t, http.StatusOK, forged.Status)
	require.Contains(t, forged.Text, "approve: 0 applied, 1 refused, 0 failed")
	require.Contains(t, forged.Text, "decided by team sales, not one of yours")

	// A form injected into her inbox and submitted.
	p.navigate(t, con.url+"/")
	p.waitText(t, func(s string) bool { return strings.Contains(s, "Waiting for your teams") }, waitFor)
	p.eval(t, `(() => { const f = document.createElement('form'); f.method = 'post'; f.action = '/items/`+id+`/decide';
		for (const [k, v] of [['csrf', `+jsString(csrf)+`], ['exception', `+jsString(exceptionRef)+`], ['action', 'approve'], ['reason', 'forged by a form'], ['actor', 'alice']]) {
			const i = document.createElement('input'); i.type = 'hidden'; i.name = k; i.value = v; f.appendChild(i); }
		document.body.appendChild(f); f.submit(); return true; })()`, nil)
	text = p.waitText(t, func(s string) bool { return strings.Contains(s, "Not your team's item") }, waitFor)
	require.Equal(t, http.StatusForbidden, p.status(t), "a forged form is refused")
	require.Contains(t, text, "decided by team sales")

	state := shared.waitStatus(t, id, api.StatusBlocked)
	require.Equal(t, api.ConsentMissing, state.Exception.Kind)
	require.Empty(t, state.Decisions, "no forged decision reached the item")
	for _, ev := range shared.auditTrail(t, id) {
		require.NotEqual(t, "carol", ev.Actor, "nothing of carol's is in the audit trail")
		require.NotContains(t, ev.Reason, "forged")
	}
}

// TestConsolePagesAreAccessibleInChromium runs the accessibility check of
// TestConsoleInChromium (a11yScript) on the other pages: the integrations,
// the search with an item search and an actor search done, a bulk
// decision's answer, and an item page showing the amend form's inline error.
func TestConsolePagesAreAccessibleInChromium(t *testing.T) {
	t.Parallel()
	chromium := chromiumPath(t)
	id := blockedLead(t, "e2e-console-a11y")
	key := strings.TrimPrefix(id, api.IntegrationLeadToCRM+":")
	// A customer in Conflict (its CRM company renamed): finance's, and its
	// exception allows amend.
	customer := uniqueKey(t, "CUST-a11y")
	shared.customer(t, customer)
	require.Equal(t, api.StatusSynced, shared.syncCustomer(t, customer).Status)
	shared.editCompany(t, shared.companyOf(t, customer).ID, map[string]string{"name": "Other " + customer})
	conflict := shared.startSync(t, customer)
	require.Equal(t, api.Conflict, shared.waitStatus(t, conflict, api.StatusBlocked).Exception.Kind)

	con := startConsole(t, shared)
	b := startChromium(t, chromium)
	p := b.open(t, "about:blank")
	setViewport(t, p)
	signInInChromium(t, p, con, consoleAliceToken, "alice")

	// The integrations.
	p.navigate(t, con.url+"/integrations")
	p.waitText(t, func(s string) bool { return strings.Contains(s, "lead-to-crm — ") }, waitFor)
	a11yCheck(t, p, "the integrations page")

	// A bulk decision's answer: the lead ticked in the inbox, approved.
	p.navigate(t, con.url+"/?integration=lead-to-crm&exception=ConsentMissing&team=sales")
	box := `form#bulk input[name=id][value="` + id + `"]`
	for pages := 0; ; pages++ {
		require.Less(t, pages, 100, "the inbox has more than 100 pages")
		p.waitText(t, func(s string) bool { return strings.Contains(s, "Waiting for your teams") }, waitFor)
		var found struct {
			Listed bool   `json:"listed"`
			Next   string `json:"next"`
		}
		p.eval(t, `(() => { const n = document.querySelector('a[rel="next"]');
			return {listed: !!document.querySelector(`+jsString(box)+`), next: n ? n.href : ''}; })()`, &found)
		if found.Listed {
			break
		}
		require.NotEmpty(t, found.Next, "no page of alice's inbox lists %s", id)
		p.navigate(t, found.Next)
	}
	p.tabTo(t, box, 400)
	p.press(t, keySpace)
	p.tabTo(t, "input#b-reason", 400)
	p.typeText(t, "consent on file")
	p.press(t, keyEnter)
	p.waitText(t, func(s string) bool { return strings.Contains(s, "approve: 1 applied, 0 refused, 0 failed") }, waitFor)
	a11yCheck(t, p, "the bulk decision's answer")
	require.Equal(t, api.StatusSynced, shared.waitResult(t, id).Status)

	// The search: by the lead's source key, and alice's audit events.
	p.navigate(t, con.url+"/search?key="+url.QueryEscape(key))
	p.waitText(t, func(s string) bool { return strings.Contains(s, "Visibility query:") && strings.Contains(s, id) }, waitFor)
	a11yCheck(t, p, "the search page, items found by source key")
	p.navigate(t, con.url+"/search?actor=alice")
	text := p.waitText(t, func(s string) bool { return strings.Contains(s, id) }, waitFor)
	require.Regexp(t, regexp.QuoteMeta(id)+`\talice[^\t\n]*\tapprove\tBlocked → Running\tconsent on file`, text)
	a11yCheck(t, p, "the search page, alice's audit events")

	// Carol, after alice signs out: the customer's amend form with a country
	// that is no ISO code shows the error by its row.
	p.tabTo(t, `form[action="/signout"] button`, 20)
	p.press(t, keyEnter)
	p.waitText(t, func(s string) bool { return strings.Contains(s, "Your console token") }, waitFor)
	signInInChromium(t, p, con, consoleCarolToken, "carol")
	p.navigate(t, con.url+"/items/"+conflict)
	p.waitText(t, func(s string) bool { return strings.Contains(s, "Fields to set") }, waitFor)
	p.tabTo(t, "select#set-field-0", 100)
	p.typeText(t, "country")
	var field string
	p.eval(t, `document.activeElement.value`, &field)
	require.Equal(t, "country", field, "typing a field's name picks it")
	p.tabTo(t, "input#set-value-0", 5)
	p.typeText(t, "Germany")
	p.tabTo(t, "textarea#reason-amend", 20)
	p.typeText(t, "the country as the CRM spells it")
	p.press(t, keyTab)
	p.press(t, keyEnter)
	text = p.waitText(t, func(s string) bool { return strings.Contains(s, "the amendment was not sent") }, waitFor)
	require.Equal(t, http.StatusUnprocessableEntity, p.status(t))
	var marked struct {
		Invalid     string `json:"invalid"`
		DescribedBy string `json:"describedBy"`
		Error       string `json:"error"`
		Value       string `json:"value"`
	}
	p.eval(t, `(() => { const v = document.getElementById('set-value-0'); const e = document.getElementById('set-error-0');
		return {invalid: v.getAttribute('aria-invalid') || '', describedBy: v.getAttribute('aria-describedby') || '', error: e ? e.innerText : '', value: v.value}; })()`, &marked)
	require.Equal(t, "true", marked.Invalid)
	require.Equal(t, "set-error-0", marked.DescribedBy)
	require.Contains(t, marked.Error, "country: must be an ISO 3166-1 alpha-2 code")
	require.Equal(t, "Germany", marked.Value, "what was typed is kept")
	require.Contains(t, text, "Refused, nothing changed")
	a11yCheck(t, p, "the item page with the amend form's error")
	require.Equal(t, api.Conflict, shared.waitStatus(t, conflict, api.StatusBlocked).Exception.Kind, "nothing was sent")
}
