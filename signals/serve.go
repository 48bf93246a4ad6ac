package main

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"flag"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/signalbox-dev/signalbox/config"
)

const serveUsage = `usage: signals serve

The operator console: the items waiting for your teams, oldest first; each
item's exception, audit trail and allowed decisions; decisions one by one or
in bulk; the integrations' cards; a search for items by source key or search
attribute, and of an actor's audit events. It reads and decides through the
code paths the CLI uses and runs until interrupted (SIGINT, SIGTERM).
docs/console.md.

  SIGNALBOX_CONSOLE_ADDR             where it listens (default 127.0.0.1:8088)
  SIGNALBOX_CONSOLE_TOKENS           sign-in tokens for local use: alice=<token>;bob=<token>
                                     (at least 16 characters each)
  SIGNALBOX_CONSOLE_TRUSTED_PROXIES  sign-on proxies (IPs, CIDRs) whose X-Forwarded-Email or
                                     X-Forwarded-User names the operator (oauth2-proxy)
  SIGNALBOX_CONSOLE_SECURE_COOKIES   mark the session cookie Secure on plain HTTP too (TLS ends
                                     before the console)
  SIGNALBOX_CONSOLE_SESSION_TTL      how long a sign-in lasts (default 12h)
  SIGNALBOX_UI_BASE_URL              the Temporal UI items link to (default http://localhost:8233)
  SIGNALBOX_OPERATORS                who decides for each team; an operator sees their teams' items
  SIGNALBOX_CONSOLE_KEY_FILE         the console's key (signals keygen --console NAME): it signs
                                     the decisions of operators the sign-on proxy authenticated

At least one way to sign in is required. Where the workers require signed
decisions (SIGNALBOX_DECISION_KEYS or SIGNALBOX_CONSOLE_KEYS), they apply the
console's decisions only when it signed them: set SIGNALBOX_CONSOLE_KEY_FILE,
give the workers its public key in SIGNALBOX_CONSOLE_KEYS, and sign operators
in through the proxy; a token sign-in's decisions are never signed.
`

//go:embed console
var consoleFiles embed.FS

// serve runs the operator console until ctx ends.
func (a *app) serve(ctx context.Context, args []string) error {
	flags := flag.NewFlagSet("signals serve", flag.ContinueOnError)
	flags.SetOutput(a.stderr)
	flags.Usage = func() { fmt.Fprint(a.stderr, serveUsage) }
	if err := flags.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(a.stdout, serveUsage)
			return nil
		}
		return errUsage
	}
	if flags.NArg() > 0 {
		fmt.Fprint(a.stderr, serveUsage)
		return errUsage
	}
	if err := a.cfg.Console.Validate(); err != nil {
		return err
	}
	key, err := loadConsoleKey(a.cfg.ConsoleKeyFile)
	if err != nil {
		return err
	}
	c, err := a.temporal(ctx)
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(a.stderr, nil))
	con, err := newConsole(consoleOptions{
		Backend: &temporalBackend{client: c, app: a}, Console: a.cfg.Console, Operators: a.cfg.Operators,
		Namespace: a.cfg.Namespace, Now: a.now, Logger: logger, Key: key,
	})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", a.cfg.ConsoleAddr)
	if err != nil {
		return fmt.Errorf("serve: listen on SIGNALBOX_CONSOLE_ADDR=%s: %w", a.cfg.ConsoleAddr, err)
	}
	srv := &http.Server{
		Handler:           con.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	fmt.Fprintf(a.stdout, "console listening on http://%s\n", ln.Addr())
	for _, line := range a.serveNotes() {
		fmt.Fprintf(a.stdout, "  %s\n", line)
	}

	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil {
		return fmt.Errorf("serve: stop: %w", err)
	}
	fmt.Fprintln(a.stdout, "console stopped")
	return nil
}

// serveNotes say how operators sign in and what the console cannot do here.
func (a *app) serveNotes() []string {
	cfg := a.cfg
	var notes []string
	if len(cfg.ConsoleTokens) > 0 {
		notes = append(notes, "sign-in     tokens of "+strings.Join(cfg.ConsoleTokens.Operators(), ", ")+" (SIGNALBOX_CONSOLE_TOKENS)")
	}
	if len(cfg.ConsoleTrustedProxies) > 0 {
		notes = append(notes, "sign-on     X-Forwarded-Email / X-Forwarded-User from "+cfg.ConsoleTrustedProxies.String())
	}
	notes = append(notes, fmt.Sprintf("Temporal    %s, namespace %s; items link to %s", cfg.Address, cfg.Namespace, cfg.UIBaseURL))
	for _, name := range cfg.ConsoleTokens.Operators() {
		if len(operatorTeams(cfg.Operators, name)) == 0 {
			notes = append(notes, fmt.Sprintf("note        %s has a token but no team in SIGNALBOX_OPERATORS: they will see no items", name))
		}
	}
	if cfg.OperatorKeyFile != "" {
		notes = append(notes, "note        SIGNALBOX_OPERATOR_KEY_FILE is not used: the console signs with SIGNALBOX_CONSOLE_KEY_FILE, if set")
	}
	switch {
	case cfg.ConsoleKeyFile != "" && len(cfg.ConsoleTrustedProxies) > 0:
		notes = append(notes, "signing     decisions of operators the sign-on proxy authenticated are signed with SIGNALBOX_CONSOLE_KEY_FILE; token sign-ins' are not")
	case cfg.ConsoleKeyFile != "":
		notes = append(notes, "note        SIGNALBOX_CONSOLE_KEY_FILE is set but no sign-on proxy is: the console signs only decisions of operators the proxy authenticated")
	default:
		notes = append(notes, "signing     none: where the workers require signed decisions, they refuse the console's (set SIGNALBOX_CONSOLE_KEY_FILE)")
	}
	return notes
}

// consoleOptions are what a console is made of.
type consoleOptions struct {
	Backend   consoleBackend
	Console   config.Console
	Operators config.Operators
	// Namespace is the items' Temporal namespace, for links to the UI.
	Namespace string
	Now       func() time.Time
	Logger    *slog.Logger
	// Search is the search page's backend; nil takes Backend's, if it has one.
	Search searchBackend
	// Key, if set, signs the decisions of operators the sign-on proxy
	// authenticated (SIGNALBOX_CONSOLE_KEY_FILE).
	Key *operatorKey
}

// console is the operator console's HTTP handler.
type console struct {
	consoleOptions
	sessions *sessions
	pages    map[string]*template.Template
	static   http.Handler
}

// consolePages are the templates under console/, each drawn in layout.html.
var consolePages = []string{"signin", "inbox", "item", "bulk", "integrations", "search", "error"}

func newConsole(opts consoleOptions) (*console, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Search == nil {
		opts.Search, _ = opts.Backend.(searchBackend)
	}
	c := &console{consoleOptions: opts, pages: map[string]*template.Template{},
		sessions: newSessions(opts.Console.ConsoleSessionTTL, opts.Now)}
	for _, name := range consolePages {
		t, err := template.ParseFS(consoleFiles, "console/layout.html", "console/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("console template %s: %w", name, err)
		}
		c.pages[name] = t
	}
	static, err := fs.Sub(consoleFiles, "console/static")
	if err != nil {
		return nil, err
	}
	c.static = http.StripPrefix("/static/", http.FileServerFS(static))
	return c, nil
}

// Handler serves the console. Every answer carries the security headers.
func (c *console) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.Handle("GET /static/", c.static)
	mux.HandleFunc("GET /signin", c.signinPage)
	mux.HandleFunc("POST /signin", c.signin)
	mux.HandleFunc("POST /signout", c.authed(c.signout))
	mux.HandleFunc("GET /{$}", c.authed(c.inbox))
	mux.HandleFunc("POST /decide", c.authed(c.bulkDecide))
	mux.HandleFunc("GET /items/{id}", c.authed(c.item))
	mux.HandleFunc("POST /items/{id}/decide", c.authed(c.decide))
	mux.HandleFunc("GET /integrations", c.authed(c.integrations))
	mux.HandleFunc("GET /search", c.authed(c.search))
	return c.secure(mux)
}

// secure sets the security headers on every answer and turns a panic into
// a plain 500 page.
func (c *console) secure(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
		h.Set("X-Frame-Options", "DENY")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin") // no-referrer would make a browser send Origin: null with forms
		h.Set("Cache-Control", "no-store")
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				c.Logger.Error("console: a handler panicked", "path", r.URL.Path, "panic", fmt.Sprint(p))
				http.Error(w, "internal error: the console's log says more", http.StatusInternalServerError)
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// maxFormBytes bounds a form's body.
const maxFormBytes = 256 << 10

// authed serves h to an identified operator only. Without an identity a
// GET shows the sign-in page and anything else is refused with 401. Every
// other method must come from this console's own pages: from its origin,
// carrying the session's CSRF token.
func (c *console) authed(h func(http.ResponseWriter, *http.Request, *operator)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		op, err := c.identify(w, r)
		if err != nil {
			c.fail(w, r, nil, http.StatusForbidden, "Not an operator name", err.Error())
			return
		}
		if op == nil {
			if r.Method == http.MethodGet || r.Method == http.MethodHead {
				c.renderSignin(w, r, http.StatusUnauthorized, r.URL.RequestURI(), "")
				return
			}
			c.fail(w, r, nil, http.StatusUnauthorized, "Sign in first", "Your sign-in has expired or you have not signed in: sign in and send the form again.")
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
			if err := r.ParseForm(); err != nil {
				c.fail(w, r, op, http.StatusBadRequest, "Bad form", "The form could not be read: "+err.Error())
				return
			}
			if !c.sameOrigin(r) || !op.session.checkCSRF(r.PostForm.Get(csrfField)) {
				c.fail(w, r, op, http.StatusForbidden, "Form refused",
					"This form did not come from this console's page, or the page is older than your sign-in: reload the page and send it again. Nothing was changed.")
				return
			}
		}
		h(w, r, op)
	}
}

// sameOrigin reports whether a browser says the request came from this
// console's own pages (or says nothing, as non-browser clients do). Behind
// a trusted proxy that rewrites Host, X-Forwarded-Host is the console's.
func (c *console) sameOrigin(r *http.Request) bool {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" && site != "none" {
		return false
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	_, host, ok := strings.Cut(origin, "://")
	if !ok {
		return false
	}
	forwarded := r.Header.Get("X-Forwarded-Host")
	return host == r.Host || (forwarded != "" && host == forwarded && c.trustedPeer(r))
}

// view is what every page template is given.
type view struct {
	Title string
	// Nav names the current section: inbox, integrations or search.
	Nav      string
	Operator string
	Teams    string
	// SignOut is set for operators signed in with a token (not by a proxy).
	SignOut bool
	CSRF    string
	Flash   string
	Error   string
	Body    any
}

// render draws a page, all of it or, if its template fails, a plain error.
func (c *console) render(w http.ResponseWriter, op *operator, status int, page string, v view) {
	v = c.withOperator(op, v)
	var buf bytes.Buffer
	if err := c.pages[page].ExecuteTemplate(&buf, "layout", v); err != nil {
		c.Logger.Error("console: render", "page", page, "err", err)
		http.Error(w, "internal error: the page could not be drawn; the console's log says more", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// streamed is a page written in parts, each flushed to the browser as soon
// as it is drawn: the layout's top and the page's content first, then the
// parts named, then the layout's bottom.
type streamed struct {
	c    *console
	w    http.ResponseWriter
	tmpl *template.Template
	v    view
}

// stream begins page: it answers 200 and sends the top of the page and its
// "content" at once. A page that cannot be drawn answers 500 instead, and
// stream returns the error.
func (c *console) stream(w http.ResponseWriter, op *operator, page string, v view) (*streamed, error) {
	v = c.withOperator(op, v)
	var buf bytes.Buffer
	tmpl := c.pages[page]
	for _, part := range []string{"top", "content"} {
		if err := tmpl.ExecuteTemplate(&buf, part, v); err != nil {
			c.Logger.Error("console: render", "page", page, "err", err)
			http.Error(w, "internal error: the page could not be drawn; the console's log says more", http.StatusInternalServerError)
			return nil, err
		}
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	s := &streamed{c: c, w: w, tmpl: tmpl, v: v}
	s.send(buf.Bytes())
	return s, nil
}

// write draws the page's template part with data and sends it.
func (s *streamed) write(part string, data any) {
	var buf bytes.Buffer
	if err := s.tmpl.ExecuteTemplate(&buf, part, data); err != nil {
		s.c.Logger.Error("console: render", "part", part, "err", err)
		return
	}
	s.send(buf.Bytes())
}

// end sends the bottom of the page.
func (s *streamed) end() { s.write("bottom", s.v) }

func (s *streamed) send(b []byte) {
	_, _ = s.w.Write(b)
	_ = http.NewResponseController(s.w).Flush() // the browser shows what it has
}

// withOperator is v with what every page says of the signed-in operator.
func (c *console) withOperator(op *operator, v view) view {
	if op != nil {
		v.Operator, v.Teams, v.CSRF, v.SignOut = op.name, strings.Join(op.teams, ", "), op.session.csrf, !op.viaProxy
		if v.Flash == "" {
			v.Flash = c.sessions.takeFlash(op.session)
		}
	}
	return v
}

// fail answers with an error page; the console's log keeps those of its
// own failures and of Temporal's, and every refusal (403): who asked for
// what, and why it was refused.
func (c *console) fail(w http.ResponseWriter, r *http.Request, op *operator, status int, title, message string) {
	switch {
	case status >= http.StatusInternalServerError:
		c.Logger.Warn("console: "+title, "path", r.URL.Path, "status", status, "err", message)
	case status == http.StatusForbidden:
		c.refused(r, op, r.URL.Path, title+": "+message)
	}
	c.render(w, op, status, "error", view{Title: title, Error: message, Body: http.StatusText(status)})
}

// refused logs a refusal: the operator (if known), the request and why.
func (c *console) refused(r *http.Request, op *operator, what, why string) {
	name := ""
	if op != nil {
		name = op.name
	}
	c.Logger.Warn("console: refused", "operator", name, "method", r.Method, "what", what, "peer", r.RemoteAddr, "why", why)
}

// operatorTeams lists the teams name decides for, in order.
func operatorTeams(operators config.Operators, name string) []string {
	var teams []string
	for team, names := range operators {
		if slices.Contains(names, name) {
			teams = append(teams, team)
		}
	}
	slices.Sort(teams)
	return teams
}
