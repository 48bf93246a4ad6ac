package main

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/signalbox-dev/signalbox/api"
)

// sessionCookie names the console's session cookie; csrfField the hidden
// form field that carries the session's CSRF token.
const (
	sessionCookie = "signalbox_console"
	csrfField     = "csrf"
)

// operator is the person a request comes from.
type operator struct {
	name string
	// teams are the teams they decide for (SIGNALBOX_OPERATORS).
	teams   []string
	session *session
	// viaProxy is set when a sign-on proxy named them.
	viaProxy bool
}

// decides reports whether team is one of the operator's.
func (o *operator) decides(team string) bool { return team != "" && slices.Contains(o.teams, team) }

// session is one sign-in, kept on the server; the browser holds its ID.
type session struct {
	id, operator string
	// csrf is the token every form of the session carries.
	csrf    string
	expires time.Time
	// flash is a message for the next page, guarded by sessions.mu.
	flash string
}

func (s *session) checkCSRF(token string) bool {
	return token != "" && subtle.ConstantTimeCompare([]byte(token), []byte(s.csrf)) == 1
}

// sessions are the console's sign-ins, in memory: a restart signs everyone out.
type sessions struct {
	mu   sync.Mutex
	byID map[string]*session
	// proxied holds the one session of each user a sign-on proxy names, so
	// clients that keep no cookies do not pile sessions up.
	proxied map[string]*session
	ttl     time.Duration
	now     func() time.Time
}

func newSessions(ttl time.Duration, now func() time.Time) *sessions {
	return &sessions{byID: map[string]*session{}, proxied: map[string]*session{}, ttl: ttl, now: now}
}

// randomToken is 32 random bytes, base64url.
func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return base64.RawURLEncoding.EncodeToString(b)
}

// create starts a session for operator, dropping the expired ones.
func (s *sessions) create(operator string) *session {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.createLocked(operator)
}

func (s *sessions) createLocked(operator string) *session {
	now := s.now()
	for id, old := range s.byID {
		if !now.Before(old.expires) {
			delete(s.byID, id)
			if s.proxied[old.operator] == old {
				delete(s.proxied, old.operator)
			}
		}
	}
	sess := &session{id: randomToken(), operator: operator, csrf: randomToken(), expires: now.Add(s.ttl)}
	s.byID[sess.id] = sess
	return sess
}

// forProxied returns the live session of a user a sign-on proxy names,
// starting one if there is none.
func (s *sessions) forProxied(operator string) *session {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sess, ok := s.proxied[operator]; ok && s.now().Before(sess.expires) && s.byID[sess.id] == sess {
		return sess
	}
	sess := s.createLocked(operator)
	s.proxied[operator] = sess
	return sess
}

// get returns the live session with this ID, or nil.
func (s *sessions) get(id string) *session {
	s.mu.Lock()
	defer s.mu.Unlock()
	sess, ok := s.byID[id]
	if !ok {
		return nil
	}
	if !s.now().Before(sess.expires) {
		delete(s.byID, id)
		return nil
	}
	return sess
}

func (s *sessions) drop(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.byID, id)
}

func (s *sessions) setFlash(sess *session, msg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sess.flash = msg
}

func (s *sessions) takeFlash(sess *session) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	msg := sess.flash
	sess.flash = ""
	return msg
}

// identify says who sent r: the user a trusted sign-on proxy names, else
// the operator of the session cookie, else nobody (nil). A name the proxy
// gives that cannot be an operator's is an error.
func (c *console) identify(w http.ResponseWriter, r *http.Request) (*operator, error) {
	var sess *session
	if cookie, err := r.Cookie(sessionCookie); err == nil {
		sess = c.sessions.get(cookie.Value)
	}
	name, fromProxy, err := c.proxyUser(r)
	if err != nil {
		return nil, err
	}
	if fromProxy {
		if sess == nil || sess.operator != name {
			// A session holds the proxied user's CSRF token and flash.
			sess = c.sessions.forProxied(name)
			c.setCookie(w, r, sess)
		}
		return &operator{name: name, teams: operatorTeams(c.Operators, name), session: sess, viaProxy: true}, nil
	}
	if sess == nil {
		return nil, nil
	}
	return &operator{name: sess.operator, teams: operatorTeams(c.Operators, sess.operator), session: sess}, nil
}

// proxyUser is the operator a trusted sign-on proxy names: the part of
// X-Forwarded-Email before the @, else X-Forwarded-User (the part before
// an @, if it holds one). Headers from any other peer are ignored.
func (c *console) proxyUser(r *http.Request) (name string, ok bool, err error) {
	if !c.trustedPeer(r) {
		return "", false, nil
	}
	user := strings.TrimSpace(r.Header.Get("X-Forwarded-Email"))
	if user == "" {
		user = strings.TrimSpace(r.Header.Get("X-Forwarded-User"))
	}
	if user == "" {
		return "", false, nil
	}
	name, _, _ = strings.Cut(user, "@")
	if api.CheckActor(name) != nil || strings.ContainsAny(name, "=;,") || !validUTF8Printable(name) {
		return "", false, fmt.Errorf("the sign-on proxy names you %q, which cannot be an operator's name (one word, as in SIGNALBOX_OPERATORS)", user)
	}
	return name, true, nil
}

func validUTF8Printable(s string) bool {
	return printable(s) == s && strings.ToValidUTF8(s, "") == s
}

// trustedPeer reports whether r's TCP peer is one of the trusted proxies.
func (c *console) trustedPeer(r *http.Request) bool {
	if len(c.Console.ConsoleTrustedProxies) == 0 {
		return false
	}
	peer, err := netip.ParseAddrPort(r.RemoteAddr)
	return err == nil && c.Console.ConsoleTrustedProxies.Trusts(peer.Addr())
}

// setCookie hands the browser the session's ID: never readable by scripts,
// never sent by other sites, Secure whenever the browser reached us over TLS.
func (c *console) setCookie(w http.ResponseWriter, r *http.Request, sess *session) {
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: sess.id, Path: "/", Expires: sess.expires,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: c.overTLS(r)})
}

// overTLS reports whether the browser's connection is encrypted: to us, or
// to the trusted proxy in front, or as SIGNALBOX_CONSOLE_SECURE_COOKIES says.
func (c *console) overTLS(r *http.Request) bool {
	return r.TLS != nil || c.Console.ConsoleSecureCookies ||
		(c.trustedPeer(r) && strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https"))
}

// signinBody is the sign-in page's.
type signinBody struct {
	Tokens, Proxy bool
	// Next is where to go once signed in.
	Next string
}

func (c *console) signinPage(w http.ResponseWriter, r *http.Request) {
	c.renderSignin(w, r, http.StatusOK, r.URL.Query().Get("next"), "")
}

func (c *console) renderSignin(w http.ResponseWriter, _ *http.Request, status int, next, problem string) {
	c.render(w, nil, status, "signin", view{Title: "Sign in", Error: problem,
		Body: signinBody{Tokens: len(c.Console.ConsoleTokens) > 0, Proxy: len(c.Console.ConsoleTrustedProxies) > 0, Next: localPath(next)}})
}

// signin exchanges an operator's token for a session.
func (c *console) signin(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil || !c.sameOrigin(r) {
		c.renderSignin(w, r, http.StatusBadRequest, "", "The sign-in form could not be read; try again.")
		return
	}
	next := localPath(r.PostForm.Get("next"))
	name, ok := c.Console.ConsoleTokens.Operator(r.PostForm.Get("token"))
	if !ok {
		c.renderSignin(w, r, http.StatusUnauthorized, next, "That token is not one of the console's (SIGNALBOX_CONSOLE_TOKENS).")
		return
	}
	if cookie, err := r.Cookie(sessionCookie); err == nil {
		c.sessions.drop(cookie.Value) // a new sign-in gets a new session ID
	}
	c.setCookie(w, r, c.sessions.create(name))
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (c *console) signout(w http.ResponseWriter, r *http.Request, op *operator) {
	c.sessions.drop(op.session.id)
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: c.overTLS(r)})
	http.Redirect(w, r, "/signin", http.StatusSeeOther)
}

// localPath is p if it is a path on this console, else "/": a sign-in
// never sends anyone to another site.
func localPath(p string) string {
	if !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") || strings.ContainsAny(p, "\\\r\n") {
		return "/"
	}
	return p
}
