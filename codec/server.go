package codec

import (
	"crypto/subtle"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"

	commonpb "go.temporal.io/api/common/v1"
	"google.golang.org/protobuf/encoding/protojson"
)

// ServerOptions say who may use a codec server.
type ServerOptions struct {
	// Origin is the Temporal UI's origin (scheme://host:port): the only one
	// whose pages may call the server (CORS). A request from any other
	// origin is refused.
	Origin string
	// Token is the bearer token callers other than loopback must send. Empty:
	// loopback callers only.
	Token string
	// Namespace, when set, is the only namespace whose payloads the server
	// decodes for the UI (its X-Namespace header): these keys are that
	// namespace's.
	Namespace string
	// Logger receives refusals and failures; nil logs nowhere.
	Logger *slog.Logger
}

// maxBody bounds a request: Temporal limits a payload to 2 MB, and the UI
// sends a few at a time.
const maxBody = 16 << 20

// Handler serves Temporal's remote codec protocol, as the Temporal UI and
// the temporal CLI speak it: POST .../decode and .../encode with protojson
// Payloads, answered in kind. It answers CORS preflights itself (the SDK's
// handler answers POST only, and a browser sends a preflight before the
// UI's POST, which carries JSON and X-Namespace), and GET /healthz.
func (c *Codec) Handler(o ServerOptions) http.Handler {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &server{codec: c, o: o}
}

type server struct {
	codec *Codec
	o     ServerOptions
}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/healthz" && r.Method == http.MethodGet {
		fmt.Fprintln(w, "ok")
		return
	}
	w.Header().Add("Vary", "Origin")
	if origin := r.Header.Get("Origin"); origin != "" {
		if origin != s.o.Origin {
			s.refuse(w, r, http.StatusForbidden, fmt.Sprintf("pages of %s may not use this codec server: it serves the Temporal UI at %s (SIGNALBOX_CODEC_ORIGIN)", origin, s.o.Origin))
			return
		}
		w.Header().Set("Access-Control-Allow-Origin", origin)
		// The UI may be set to send cookies (codec.includeCredentials).
		w.Header().Set("Access-Control-Allow-Credentials", "true")
	}
	if r.Method == http.MethodOptions {
		// A preflight carries no credentials: it is answered for the
		// allowed origin alone, and the POST that follows is checked.
		w.Header().Set("Access-Control-Allow-Methods", "POST, OPTIONS")
		w.Header().Set("Access-Control-Allow-Headers", "Content-Type, X-Namespace, Authorization")
		w.Header().Set("Access-Control-Max-Age", "600")
		w.WriteHeader(http.StatusNoContent)
		return
	}
	// The protocol routes on the last part of the path only, so that the
	// server may be mounted anywhere behind a proxy.
	op := r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:]
	if op != "decode" && op != "encode" {
		http.Error(w, "not found: POST /decode or /encode", http.StatusNotFound)
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST, OPTIONS")
		http.Error(w, "method not allowed: POST protojson Payloads", http.StatusMethodNotAllowed)
		return
	}
	if !s.authorized(r) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="signalbox codec"`)
		s.refuse(w, r, http.StatusUnauthorized, "send Authorization: Bearer <SIGNALBOX_CODEC_TOKEN> (only loopback callers go without)")
		return
	}
	if ns := r.Header.Get("X-Namespace"); ns != "" && s.o.Namespace != "" && ns != s.o.Namespace {
		s.refuse(w, r, http.StatusForbidden, fmt.Sprintf("this codec server holds the keys of namespace %s, not %s", s.o.Namespace, ns))
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		http.Error(w, "read the request: "+err.Error(), http.StatusBadRequest)
		return
	}
	var in commonpb.Payloads
	if err := protojson.Unmarshal(body, &in); err != nil {
		http.Error(w, "the body is not protojson Payloads ({\"payloads\": [...]}): "+err.Error(), http.StatusBadRequest)
		return
	}
	convert := s.codec.Decode
	if op == "encode" {
		convert = s.codec.Encode
	}
	out, err := convert(in.GetPayloads())
	if err != nil {
		s.o.Logger.Warn("codec server: "+op+" failed", "namespace", r.Header.Get("X-Namespace"), "error", err)
		http.Error(w, op+": "+err.Error(), http.StatusBadRequest)
		return
	}
	b, err := protojson.Marshal(&commonpb.Payloads{Payloads: out})
	if err != nil {
		http.Error(w, "encode the answer: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b)
}

func (s *server) refuse(w http.ResponseWriter, r *http.Request, status int, msg string) {
	s.o.Logger.Warn("codec server: refused", "status", status, "remote", r.RemoteAddr, "origin", r.Header.Get("Origin"), "reason", msg)
	http.Error(w, msg, status)
}

// authorized: a loopback caller, or one with the token. A request a proxy
// forwarded (Forwarded, X-Forwarded-For) is not taken as loopback even when
// the proxy runs on this host: it came from elsewhere.
func (s *server) authorized(r *http.Request) bool {
	if auth, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok && s.o.Token != "" {
		return subtle.ConstantTimeCompare([]byte(strings.TrimSpace(auth)), []byte(s.o.Token)) == 1
	}
	if r.Header.Get("Forwarded") != "" || r.Header.Get("X-Forwarded-For") != "" {
		return false
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
