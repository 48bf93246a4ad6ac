package tests

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

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
