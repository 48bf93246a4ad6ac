package config

import (
	"fmt"
	"log/slog"
	"regexp"
	"runtime/debug"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Logging is shared by every program.
type Logging struct {
	// LogLevel is debug, info, warn or error. Default: info.
	LogLevel string `split_words:"true" default:"info"`
}

// Level returns the slog level; Validate has already checked the name.
func (l Logging) Level() slog.Level {
	var level slog.Level
	_ = level.UnmarshalText([]byte(l.LogLevel))
	return level
}

// Validate checks the level's name.
func (l Logging) Validate() error {
	var level slog.Level
	if err := level.UnmarshalText([]byte(l.LogLevel)); err != nil {
		return Invalid("SIGNALBOX_LOG_LEVEL", l.LogLevel, "must be debug, info, warn or error")
	}
	return nil
}

// Target holds the limits of one external system a worker calls. Worker has one
// per system, read from SIGNALBOX_<SYSTEM>_TIMEOUT, _RATE, _CONCURRENCY and
// _RETRY_WINDOW; their defaults differ by system, so Load sets them in code
// rather than in struct tags.
type Target struct {
	// Timeout bounds one request.
	Timeout time.Duration `split_words:"true"`
	// Rate caps requests per second across all workers.
	Rate float64 `split_words:"true"`
	// Concurrency caps requests running at once in this process.
	Concurrency int `split_words:"true"`
	// RetryWindow is how long a step keeps retrying before the item fails.
	RetryWindow time.Duration `split_words:"true"`
}

// validate checks the limits of the target whose variables are named
// SIGNALBOX_<name>_..., e.g. name CRM.
func (t Target) validate(name string) error {
	prefix := Prefix + "_" + name + "_"
	if err := checkPositive(prefix+"RATE", t.Rate); err != nil {
		return err
	}
	if t.Concurrency < 1 {
		return Invalid(prefix+"CONCURRENCY", fmt.Sprint(t.Concurrency), "must be at least 1")
	}
	if t.Timeout <= 0 {
		return Invalid(prefix+"TIMEOUT", t.Timeout.String(), "must be greater than zero")
	}
	if t.RetryWindow < t.Timeout {
		return Invalid(prefix+"RETRY_WINDOW", t.RetryWindow.String(), "must be at least "+prefix+"TIMEOUT ("+t.Timeout.String()+")")
	}
	return nil
}

// Worker configures the worker process (go run ./workers).
type Worker struct {
	Temporal
	Database
	Logging
	DecisionKeys

	// RegisterSearchAttributes creates missing custom search attributes at start;
	// turn it off where the namespace is managed elsewhere. Default: true.
	RegisterSearchAttributes bool `split_words:"true" default:"true"`
	// Operators lists who may decide each team's exceptions: "sales=alice,bob;finance=carol".
	// Default: none, so every decision is refused until it is set.
	Operators Operators
	// UIBaseURL is the Temporal UI that notifications link to. Default: http://localhost:8233.
	UIBaseURL string `split_words:"true" default:"http://localhost:8233"`
	// WorkerHealthAddr, when set, serves GET /healthz: 200 once every worker runs. Default: off.
	WorkerHealthAddr string `split_words:"true"`
	// MetricsAddr, when set, serves Prometheus metrics at GET /metrics (the
	// SDK's and signalbox's; docs/metrics.md). It may equal
	// WorkerHealthAddr: one server then answers both. Default: off.
	MetricsAddr string `split_words:"true"`
	// MetricsRefresh is how often the worker counts waiting items in
	// Temporal's visibility for the metrics (only while MetricsAddr is set).
	// Default: 30s.
	MetricsRefresh time.Duration `split_words:"true" default:"30s"`
	// DeploymentName, when set, runs the workers under Worker Versioning
	// (deployment-based): as version BuildID of this Worker Deployment. New
	// items start on the deployment's current version; waiting items move to
	// it when it changes (auto-upgrade) and meet changed code behind
	// workflow.GetVersion. Default: off (unversioned workers).
	DeploymentName string `split_words:"true"`
	// BuildID names this build within the deployment. Default: the VCS
	// revision the binary was built from, else "dev".
	BuildID string `envconfig:"BUILD_ID"`
	// WorkflowCacheSize is how many items the worker keeps in memory between
	// their events; others are replayed from history on their next event.
	// Default: 2000.
	WorkflowCacheSize int `split_words:"true" default:"2000"`

	// CRMBaseURL is the HubSpot-compatible API. Default: the sandbox, http://127.0.0.1:8091.
	CRMBaseURL string `split_words:"true" default:"http://127.0.0.1:8091"`
	// CRMToken is the CRM's bearer token (a HubSpot private-app token). Default: the sandbox's.
	CRMToken string `split_words:"true" default:"sandbox-token"`
	// CRM limits CRM activities, read from SIGNALBOX_CRM_TIMEOUT (one request),
	// SIGNALBOX_CRM_RATE (per second across all workers), SIGNALBOX_CRM_CONCURRENCY
	// (at once in this process) and SIGNALBOX_CRM_RETRY_WINDOW (how long a step
	// retries before the item fails). Default: 10s, 20, 8 and 10m.
	CRM Target `envconfig:"CRM"`

	// BillingBaseURL is the Stripe API. Default: the sandbox's pass-through to stripe-mock, http://127.0.0.1:8092.
	BillingBaseURL string `split_words:"true" default:"http://127.0.0.1:8092"`
	// BillingAPIKey is the Stripe secret key. Default: a test key stripe-mock accepts.
	BillingAPIKey string `split_words:"true" default:"sk_test_signalbox"`
	// Billing limits Stripe requests, read from SIGNALBOX_BILLING_TIMEOUT (one
	// request), SIGNALBOX_BILLING_RATE (per second across all workers; test mode
	// allows 25), SIGNALBOX_BILLING_CONCURRENCY (at once in this process) and
	// SIGNALBOX_BILLING_RETRY_WINDOW (how long a step retries before the item
	// fails). Default: 20s, 20, 8 and 10m.
	Billing Target `envconfig:"BILLING"`
	// InvoiceApprovalThreshold is the total, in minor units of the invoice's currency, above
	// which finance must approve an invoice; 0 turns approval off. Default: 500000 (5,000.00).
	InvoiceApprovalThreshold int64 `split_words:"true" default:"500000"`

	// ChatWebhooks maps a team to its incoming-webhook URL: "sales=https://hooks.slack.com/services/...".
	// A team missing here posts to ChatWebhookBaseURL/<team>. Default: none.
	ChatWebhooks TeamMap `split_words:"true"`
	// ChatWebhookBaseURL serves teams without their own webhook. Default: the sandbox, http://127.0.0.1:8091/services.
	ChatWebhookBaseURL string `split_words:"true" default:"http://127.0.0.1:8091/services"`
	// Chat limits chat posts, read from SIGNALBOX_CHAT_TIMEOUT (one post),
	// SIGNALBOX_CHAT_RATE (per second across all workers; Slack allows about 1
	// per webhook), SIGNALBOX_CHAT_CONCURRENCY (at once in this process) and
	// SIGNALBOX_CHAT_RETRY_WINDOW (how long a post retries before the item
	// fails). Default: 10s, 5, 4 and 10m.
	Chat Target `envconfig:"CHAT"`
	// LeadRoutes route leads to sales teams by rules: "sales-dach=country:DE|AT|CH;
	// sales-enterprise=size>=1000;sales=otherwise" (conditions of a team joined
	// by ","; otherwise takes what no rule does). A lead no rule takes, or that
	// the rules of several teams take, waits for team sales-ops
	// (RoutingUnclear). Default: none, every lead goes to sales.
	LeadRoutes TeamMap `split_words:"true"`
	// SLAs override the integrations' SLAs by exception kind, optionally with
	// the deadline of kinds that have one: "ConsentMissing=8h/7d;Conflict=30m".
	// Default: the SLAs on each integration's card.
	SLAs SLAs `envconfig:"SLAS"`
	// AlertInterval is the least time between two chat alerts of one team and
	// exception kind; the alerts in between are counted into the next one. Default: 10m.
	AlertInterval time.Duration `split_words:"true" default:"10m"`
	// CustomerSyncEvery is how often a Temporal Schedule polls PostgreSQL and
	// the CRM for changed customers and companies. Default: 1m.
	CustomerSyncEvery time.Duration `split_words:"true" default:"1m"`
	// ReconcileAt is the time of day (UTC, HH:MM) of every integration's
	// nightly reconcile run (a Temporal Schedule). Default: 02:00.
	ReconcileAt string `split_words:"true" default:"02:00"`
}

// deploymentPart is a deployment name or build ID.
var deploymentPart = regexp.MustCompile(`^[A-Za-z0-9._-]{1,100}$`)

// Build is this worker's build ID: BuildID, else the VCS revision the binary
// was built from (with "-modified" when the tree had changes), else "dev".
func (w Worker) Build() string {
	if w.BuildID != "" {
		return w.BuildID
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "dev"
	}
	rev, modified := "", false
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	if rev == "" {
		return "dev"
	}
	rev = rev[:min(12, len(rev))]
	if modified {
		rev += "-modified"
	}
	return rev
}

// ReconcileTime returns ReconcileAt's hour and minute; Validate has checked it.
func (w Worker) ReconcileTime() (hour, minute int) {
	t, _ := time.Parse("15:04", w.ReconcileAt)
	return t.Hour(), t.Minute()
}

// setDefaults sets the defaults that differ by target, which struct tags
// cannot express; Load calls it before reading the environment.
func (w *Worker) setDefaults() {
	w.CRM = Target{Timeout: 10 * time.Second, Rate: 20, Concurrency: 8, RetryWindow: 10 * time.Minute}
	w.Billing = Target{Timeout: 20 * time.Second, Rate: 20, Concurrency: 8, RetryWindow: 10 * time.Minute}
	w.Chat = Target{Timeout: 10 * time.Second, Rate: 5, Concurrency: 4, RetryWindow: 10 * time.Minute}
}

// Validate checks every setting.
func (w Worker) Validate() error {
	checks := []func() error{
		w.Temporal.Validate, w.Database.Validate, w.Logging.Validate, w.DecisionKeys.Validate,
		func() error { return checkURL("SIGNALBOX_UI_BASE_URL", w.UIBaseURL, "http", "https") },
		func() error { return checkURL("SIGNALBOX_CRM_BASE_URL", w.CRMBaseURL, "http", "https") },
		func() error {
			return checkURL("SIGNALBOX_CHAT_WEBHOOK_BASE_URL", w.ChatWebhookBaseURL, "http", "https")
		},
		func() error { return checkURL("SIGNALBOX_BILLING_BASE_URL", w.BillingBaseURL, "http", "https") },
		func() error { return w.CRM.validate("CRM") },
		func() error { return w.Chat.validate("CHAT") },
		func() error { return w.Billing.validate("BILLING") },
		func() error {
			if w.CustomerSyncEvery < time.Second {
				return Invalid("SIGNALBOX_CUSTOMER_SYNC_EVERY", w.CustomerSyncEvery.String(), "must be at least 1s")
			}
			return nil
		},
		func() error {
			if w.DeploymentName != "" && !deploymentPart.MatchString(w.DeploymentName) {
				return Invalid("SIGNALBOX_DEPLOYMENT_NAME", w.DeploymentName, "must be letters, digits, '.', '_' or '-' (up to 100)")
			}
			if w.BuildID != "" && !deploymentPart.MatchString(w.BuildID) {
				return Invalid("SIGNALBOX_BUILD_ID", w.BuildID, "must be letters, digits, '.', '_' or '-' (up to 100)")
			}
			return nil
		},
		func() error {
			if _, err := time.Parse("15:04", w.ReconcileAt); err != nil {
				return Invalid("SIGNALBOX_RECONCILE_AT", w.ReconcileAt, "must be a time of day in UTC like 02:00")
			}
			return nil
		},
		func() error {
			if w.AlertInterval < 0 {
				return Invalid("SIGNALBOX_ALERT_INTERVAL", w.AlertInterval.String(), "must not be negative (0 posts every alert)")
			}
			return nil
		},
		func() error {
			if w.WorkflowCacheSize < 1 {
				return Invalid("SIGNALBOX_WORKFLOW_CACHE_SIZE", fmt.Sprint(w.WorkflowCacheSize), "must be at least 1")
			}
			return nil
		},
		func() error {
			if w.BillingAPIKey == "" {
				return Invalid("SIGNALBOX_BILLING_API_KEY", "", "must not be empty")
			}
			if w.InvoiceApprovalThreshold < 0 {
				return Invalid("SIGNALBOX_INVOICE_APPROVAL_THRESHOLD", fmt.Sprint(w.InvoiceApprovalThreshold), "must not be negative (0 turns approval off)")
			}
			return nil
		},
		func() error {
			if w.WorkerHealthAddr == "" {
				return nil
			}
			return checkHostPort("SIGNALBOX_WORKER_HEALTH_ADDR", w.WorkerHealthAddr)
		},
		func() error {
			if w.MetricsRefresh < time.Second {
				return Invalid("SIGNALBOX_METRICS_REFRESH", w.MetricsRefresh.String(), "must be at least 1s")
			}
			return checkMetricsAddr(w.MetricsAddr)
		},
	}
	if w.CRMToken == "" {
		return Invalid("SIGNALBOX_CRM_TOKEN", "", "must not be empty")
	}
	for _, team := range w.ChatWebhooks.Teams() {
		if err := checkURL("SIGNALBOX_CHAT_WEBHOOKS", w.ChatWebhooks[team], "http", "https"); err != nil {
			return fmt.Errorf("config: SIGNALBOX_CHAT_WEBHOOKS: the URL of team %q must be an absolute http(s) URL", team)
		}
	}
	for _, check := range checks {
		if err := check(); err != nil {
			return err
		}
	}
	return nil
}

// Intake configures the HTTP intake (go run ./starter serve) and the starter's commands.
type Intake struct {
	Temporal
	Database
	Logging

	// IntakeAddr is where the intake listens. Default: 127.0.0.1:8080.
	IntakeAddr string `split_words:"true" default:"127.0.0.1:8080"`
	// MetricsAddr, when set, serves Prometheus metrics at GET /metrics on a
	// listener of its own: the intake's address faces the senders of leads,
	// the metrics do not. Default: off.
	MetricsAddr string `split_words:"true"`
	// IntakeTokens are the bearer tokens the intake accepts, named by source:
	// "webform=<token>;partner=<token>". Default: none.
	IntakeTokens TeamMap `split_words:"true"`
	// IntakeHMACSecrets are the secrets of sources that sign their requests
	// with HMAC-SHA256 (header Signalbox-Signature: t=<unix time>,v1=<hex>,
	// over the time, method, path, Idempotency-Key and body; docs/intake.md):
	// "shop=<secret>". Default: none.
	IntakeHMACSecrets TeamMap `split_words:"true"`
	// IntakeRoutes lists the routes each source may use: "webform=leads,items;
	// billing=invoices". A route is named by its integration (lead-to-crm) or
	// by its path (leads: POST /v1/leads); items lets a source read the items
	// it started (GET /v1/items/{id}); * is every route. A source with a token
	// or secret but no routes stops the intake at start. Default: none.
	IntakeRoutes SourceRoutes `split_words:"true"`
	// IntakeRateLimit caps the requests of each source, per intake process:
	// "1200/1m" takes a burst of 1200 and then 1200 a minute (20 a second);
	// more are answered 429 with Retry-After. Default: 1200/1m.
	IntakeRateLimit RateLimit `split_words:"true" default:"1200/1m"`
	// IntakeRateLimits sets the limit of single sources instead:
	// "webform=60/1m;stripe=6000/1m" (stripe: the Stripe webhook). Default: none.
	IntakeRateLimits RateLimits `split_words:"true"`
	// StripeWebhookSecret is the signing secret (whsec_…) of the Stripe
	// webhook endpoint that posts to /v1/webhooks/stripe: Stripe's signature,
	// checked with it, is that route's only authentication. Default: none,
	// and the route answers 503 (Stripe retries for days meanwhile).
	StripeWebhookSecret string `split_words:"true"`
}

// minSecretLen is the shortest intake token or HMAC secret accepted.
const minSecretLen = 16

// StripeSource names the sender of the Stripe webhook, which Stripe's own
// signature authenticates: no intake source may take its name.
const StripeSource = "stripe"

// CheckIntakeAuth says what is wrong with the intake's credentials; serving
// needs at least one token or secret, so no request goes unauthenticated,
// and each credential must name one source only.
func (i Intake) CheckIntakeAuth() error {
	if len(i.IntakeTokens) == 0 && len(i.IntakeHMACSecrets) == 0 {
		return fmt.Errorf("config: the intake needs SIGNALBOX_INTAKE_TOKENS or SIGNALBOX_INTAKE_HMAC_SECRETS: every request must prove where it comes from")
	}
	owner := map[string]string{} // credential → "VARIABLE source"
	if i.StripeWebhookSecret != "" {
		owner[i.StripeWebhookSecret] = "SIGNALBOX_STRIPE_WEBHOOK_SECRET"
	}
	for _, variable := range []string{"SIGNALBOX_INTAKE_TOKENS", "SIGNALBOX_INTAKE_HMAC_SECRETS"} {
		m := i.IntakeTokens
		if variable == "SIGNALBOX_INTAKE_HMAC_SECRETS" {
			m = i.IntakeHMACSecrets
		}
		for _, source := range m.Teams() {
			if source == StripeSource {
				return fmt.Errorf("config: %s: source %q is the Stripe webhook's sender, which Stripe's signature authenticates "+
					"(SIGNALBOX_STRIPE_WEBHOOK_SECRET): give this source another name", variable, source)
			}
			if len(m[source]) < minSecretLen {
				return fmt.Errorf("config: %s: the secret of source %q must be at least %d characters", variable, source, minSecretLen)
			}
			this := fmt.Sprintf("%s source %q", variable, source)
			if other, taken := owner[m[source]]; taken {
				return fmt.Errorf("config: %s has the same secret as %s: give every source a secret of its own, "+
					"or a request could not tell which source sent it", this, other)
			}
			owner[m[source]] = this
		}
	}
	return nil
}

// IntakeSources are the sources holding a token or an HMAC secret, in order.
func (i Intake) IntakeSources() []string {
	seen := map[string]bool{}
	var out []string
	for _, m := range []TeamMap{i.IntakeTokens, i.IntakeHMACSecrets} {
		for _, source := range m.Teams() {
			if !seen[source] {
				seen[source] = true
				out = append(out, source)
			}
		}
	}
	sort.Strings(out)
	return out
}

// AllIntakeRoutes, as a source's route, grants every route.
const AllIntakeRoutes = "*"

// stripeWebhookRoutes are names someone might give the Stripe webhook's
// route; it is not an intake route, so none may be granted.
var stripeWebhookRoutes = []string{"stripe", "stripe-webhook", "webhook", "webhooks"}

// CheckIntakeRoutes says what is wrong with SIGNALBOX_INTAKE_ROUTES and
// SIGNALBOX_INTAKE_RATE_LIMITS, given the names of the routes the intake
// serves: every source with a credential needs routes, each named as one of
// routes or *, and each limited source must exist.
func (i Intake) CheckIntakeRoutes(routes []string) error {
	valid := map[string]bool{AllIntakeRoutes: true}
	for _, r := range routes {
		valid[r] = true
	}
	listed := strings.Join(routes, ", ") + " or " + AllIntakeRoutes + " (every route)"
	for _, source := range i.IntakeRoutes.Sources() {
		if source == StripeSource {
			return fmt.Errorf("config: SIGNALBOX_INTAKE_ROUTES: source %q is the Stripe webhook's sender: its one route, POST /v1/webhooks/stripe, "+
				"takes Stripe's signature (SIGNALBOX_STRIPE_WEBHOOK_SECRET) and is not granted here; remove the entry", source)
		}
		for _, route := range i.IntakeRoutes[source] {
			if valid[route] {
				continue
			}
			if slices.Contains(stripeWebhookRoutes, route) {
				return fmt.Errorf("config: SIGNALBOX_INTAKE_ROUTES: source %q: the Stripe webhook (POST /v1/webhooks/stripe) takes Stripe's signature only "+
					"(SIGNALBOX_STRIPE_WEBHOOK_SECRET) and cannot be granted to an intake source; the routes are %s", source, listed)
			}
			return fmt.Errorf("config: SIGNALBOX_INTAKE_ROUTES: source %q: unknown route %q; the routes are %s", source, route, listed)
		}
	}
	var without []string
	for _, source := range i.IntakeSources() {
		if len(i.IntakeRoutes[source]) == 0 {
			without = append(without, source)
		}
	}
	if len(without) > 0 {
		example := make([]string, len(without))
		for n, source := range without {
			example[n] = source + "=<routes>"
		}
		who := fmt.Sprintf("source %s, which holds a token or secret: every request it sends", quoteAll(without)[0])
		if len(without) > 1 {
			who = fmt.Sprintf("sources %s, which hold a token or secret: every request they send", strings.Join(quoteAll(without), ", "))
		}
		return fmt.Errorf("config: SIGNALBOX_INTAKE_ROUTES gives no routes to %s would be refused. "+
			"Set SIGNALBOX_INTAKE_ROUTES=%q, each <routes> a comma-separated list of %s (e.g. webform=leads,items)",
			who, strings.Join(example, ";"), listed)
	}
	sources := append(i.IntakeSources(), StripeSource)
	for _, source := range i.IntakeRateLimits.Sources() {
		if !slices.Contains(sources, source) {
			return fmt.Errorf("config: SIGNALBOX_INTAKE_RATE_LIMITS names source %q, which holds no token or secret; the sources are %s",
				source, strings.Join(quoteAll(sources), ", "))
		}
	}
	return nil
}

// RateLimitOf is the request limit of a source: its own, else the default.
func (i Intake) RateLimitOf(source string) RateLimit {
	if l, ok := i.IntakeRateLimits[source]; ok {
		return l
	}
	if i.IntakeRateLimit.Requests == 0 {
		return DefaultIntakeRateLimit
	}
	return i.IntakeRateLimit
}

// DefaultIntakeRateLimit is SIGNALBOX_INTAKE_RATE_LIMIT's default.
var DefaultIntakeRateLimit = RateLimit{Requests: 1200, Per: time.Minute}

func quoteAll(names []string) []string {
	out := make([]string, len(names))
	for n, name := range names {
		out[n] = strconv.Quote(name)
	}
	return out
}

// SourceRoutes maps an intake source to the names of the routes it may use,
// written "webform=leads,items;billing=invoices".
type SourceRoutes map[string][]string

// Decode implements envconfig.Decoder.
func (s *SourceRoutes) Decode(value string) error {
	out := SourceRoutes{}
	for n, entry := range splitNonEmpty(value, ";") {
		source, routes, ok := strings.Cut(entry, "=")
		source = strings.TrimSpace(source)
		if !ok || source == "" {
			return fmt.Errorf("entry %d must be source=route,route (entries separated by ';')", n+1)
		}
		if _, dup := out[source]; dup {
			return fmt.Errorf("source %q appears twice", source)
		}
		list := []string{}
		for _, route := range splitNonEmpty(routes, ",") {
			if !slices.Contains(list, route) {
				list = append(list, route)
			}
		}
		out[source] = list
	}
	*s = out
	return nil
}

// Sources lists the sources in order.
func (s SourceRoutes) Sources() []string {
	out := make([]string, 0, len(s))
	for source := range s {
		out = append(out, source)
	}
	sort.Strings(out)
	return out
}

// RateLimit is a number of requests per window, written "1200/1m" or
// "20/s": a burst of Requests is taken at once, then Requests per Per.
type RateLimit struct {
	Requests int
	Per      time.Duration
}

// Decode implements envconfig.Decoder.
func (l *RateLimit) Decode(value string) error {
	count, window, ok := strings.Cut(strings.TrimSpace(value), "/")
	n, err := strconv.Atoi(strings.TrimSpace(count))
	if !ok || err != nil || n < 1 || n > 1_000_000 {
		return fmt.Errorf("must be requests per window, e.g. 1200/1m or 20/s, with 1 to 1000000 requests")
	}
	window = strings.TrimSpace(window)
	if window != "" && (window[0] < '0' || window[0] > '9') {
		window = "1" + window // "/s" means per second
	}
	per, err := time.ParseDuration(window)
	if err != nil || per < time.Second || per > 24*time.Hour {
		return fmt.Errorf("the window of %q must be a duration from 1s to 24h, e.g. 1m or s", value)
	}
	*l = RateLimit{Requests: n, Per: per}
	return nil
}

func (l RateLimit) String() string { return fmt.Sprintf("%d per %s", l.Requests, l.Per) }

// RateLimits maps a source to its limit: "webform=60/1m;stripe=6000/1m".
type RateLimits map[string]RateLimit

// Decode implements envconfig.Decoder.
func (m *RateLimits) Decode(value string) error {
	out := RateLimits{}
	for n, entry := range splitNonEmpty(value, ";") {
		source, v, ok := strings.Cut(entry, "=")
		source = strings.TrimSpace(source)
		if !ok || source == "" {
			return fmt.Errorf("entry %d must be source=requests/window, e.g. webform=60/1m (entries separated by ';')", n+1)
		}
		if _, dup := out[source]; dup {
			return fmt.Errorf("source %q appears twice", source)
		}
		var l RateLimit
		if err := l.Decode(v); err != nil {
			return fmt.Errorf("source %q: %v", source, err)
		}
		out[source] = l
	}
	*m = out
	return nil
}

// Sources lists the limited sources in order.
func (m RateLimits) Sources() []string {
	out := make([]string, 0, len(m))
	for source := range m {
		out = append(out, source)
	}
	sort.Strings(out)
	return out
}

// Validate checks every setting.
func (i Intake) Validate() error {
	if err := i.Temporal.Validate(); err != nil {
		return err
	}
	if err := i.Database.Validate(); err != nil {
		return err
	}
	if err := i.Logging.Validate(); err != nil {
		return err
	}
	if s := i.StripeWebhookSecret; s != "" && (!strings.HasPrefix(s, "whsec_") || len(s) < minSecretLen) {
		return Invalid("SIGNALBOX_STRIPE_WEBHOOK_SECRET", s, fmt.Sprintf("must be the endpoint's signing secret, whsec_… (at least %d characters): "+
			"copy it from the webhook endpoint in the Stripe Dashboard, or from `stripe listen`", minSecretLen))
	}
	if err := checkMetricsAddr(i.MetricsAddr); err != nil {
		return err
	}
	if i.MetricsAddr != "" && i.MetricsAddr == i.IntakeAddr {
		return Invalid("SIGNALBOX_METRICS_ADDR", i.MetricsAddr, "must differ from SIGNALBOX_INTAKE_ADDR: metrics are served apart from the intake")
	}
	return checkHostPort("SIGNALBOX_INTAKE_ADDR", i.IntakeAddr)
}

// checkMetricsAddr checks SIGNALBOX_METRICS_ADDR: empty (no metrics) or host:port.
func checkMetricsAddr(addr string) error {
	if addr == "" {
		return nil
	}
	return checkHostPort("SIGNALBOX_METRICS_ADDR", addr)
}

// Signals configures the operator CLI (go run ./signals).
type Signals struct {
	Temporal
	Database
	CodecServer
	Console

	// Operator is who decisions are made as, unless --as says otherwise. Default: the OS user.
	Operator string
	// Operators lists who may act for each team, as the workers' setting
	// does: `signals erase` checks it. Default: none.
	Operators Operators
	// OperatorKeyFile is the operator's ed25519 private key (from `signals
	// keygen`); when set, every decision is signed with it. Default: none.
	OperatorKeyFile string `split_words:"true"`
}

// Validate checks every setting.
func (s Signals) Validate() error {
	if err := s.Temporal.Validate(); err != nil {
		return err
	}
	return s.Database.Validate()
}

// Sandbox configures the local emulators of external APIs (go run ./sandbox).
type Sandbox struct {
	Logging

	// SandboxAddr is where the emulators listen. Default: 127.0.0.1:8091.
	SandboxAddr string `split_words:"true" default:"127.0.0.1:8091"`
	// SandboxToken is the bearer token the CRM emulator accepts. Default: sandbox-token.
	SandboxToken string `split_words:"true" default:"sandbox-token"`
	// SandboxSeed makes injected faults reproducible. Default: 1.
	SandboxSeed int64 `split_words:"true" default:"1"`
	// SandboxFaults is the initial fault plan as JSON (see README). Default: no faults.
	SandboxFaults string `split_words:"true"`
	// SandboxStripeAddr is where the Stripe pass-through listens. Default: 127.0.0.1:8092.
	SandboxStripeAddr string `split_words:"true" default:"127.0.0.1:8092"`
	// SandboxStripeURL is the stripe-mock the pass-through forwards to. Default: http://127.0.0.1:12111.
	SandboxStripeURL string `split_words:"true" default:"http://127.0.0.1:12111"`
	// SandboxCRMLimit limits the CRM API (contacts and companies) to this many
	// requests in any one second, as HubSpot's secondly limit does; POST
	// /_sandbox/limit changes it at run time. Default: 0, no limit.
	SandboxCRMLimit int `split_words:"true" default:"0"`
}

// Validate checks every setting.
func (s Sandbox) Validate() error {
	if err := s.Logging.Validate(); err != nil {
		return err
	}
	if s.SandboxToken == "" {
		return Invalid("SIGNALBOX_SANDBOX_TOKEN", "", "must not be empty")
	}
	if s.SandboxCRMLimit < 0 {
		return Invalid("SIGNALBOX_SANDBOX_CRM_LIMIT", fmt.Sprint(s.SandboxCRMLimit), "must be 0 (no limit) or a positive number of requests per second")
	}
	if err := checkURL("SIGNALBOX_SANDBOX_STRIPE_URL", s.SandboxStripeURL, "http", "https"); err != nil {
		return err
	}
	if err := checkHostPort("SIGNALBOX_SANDBOX_STRIPE_ADDR", s.SandboxStripeAddr); err != nil {
		return err
	}
	return checkHostPort("SIGNALBOX_SANDBOX_ADDR", s.SandboxAddr)
}
