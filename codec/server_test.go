package codec

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/encoding/protojson"
)

const (
	uiOrigin = "http://localhost:8233"
	token    = "codec-token-for-tests-0123456789"
	remote   = "192.0.2.10:40000" // a caller on another host
	loopback = "127.0.0.1:40000"
)

// codecRequest is one call to the codec server: from remoteAddr, with the
// given headers.
func codecRequest(t *testing.T, h http.Handler, method, path, remoteAddr, body string, header map[string]string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	r.RemoteAddr = remoteAddr
	for k, v := range header {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// encryptedBody is a /decode request body, as the UI sends it: the lead
// encrypted by c.
func encryptedBody(t *testing.T, c *Codec) string {
	t.Helper()
	enc, err := c.Encode(leadPayloads(t)[:1])
	require.NoError(t, err)
	b, err := protojson.Marshal(&commonpb.Payloads{Payloads: enc})
	require.NoError(t, err)
	return string(b)
}

func decodedData(t *testing.T, w *httptest.ResponseRecorder) string {
	t.Helper()
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	var out commonpb.Payloads
	require.NoError(t, protojson.Unmarshal(w.Body.Bytes(), &out))
	require.Len(t, out.Payloads, 1)
	return string(out.Payloads[0].Data)
}

func TestServerDecodesForTheUI(t *testing.T) {
	c := mustParse(t, "k1="+newKey(t))
	h := c.Handler(ServerOptions{Origin: uiOrigin, Token: token, Namespace: "default"})
	// The UI's request: POST <endpoint>/decode, JSON, X-Namespace, from its origin.
	w := codecRequest(t, h, http.MethodPost, "/decode", loopback, encryptedBody(t, c),
		map[string]string{"Origin": uiOrigin, "Content-Type": "application/json", "X-Namespace": "default"})
	require.Contains(t, decodedData(t, w), "ada@example.com")
	require.Equal(t, uiOrigin, w.Header().Get("Access-Control-Allow-Origin"))
	require.Equal(t, "application/json", w.Header().Get("Content-Type"))

	// Mounted deeper behind a proxy: the last part of the path decides.
	w = codecRequest(t, h, http.MethodPost, "/codec/default/decode", remote, encryptedBody(t, c), map[string]string{"Authorization": "Bearer " + token})
	require.Contains(t, decodedData(t, w), "ada@example.com")
}

func TestServerPreflightIsAnsweredForTheUIOriginOnly(t *testing.T) {
	h := mustParse(t, "k1="+newKey(t)).Handler(ServerOptions{Origin: uiOrigin, Token: token})
	// A browser's preflight carries no Authorization, from anywhere.
	preflight := map[string]string{"Origin": uiOrigin, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type,x-namespace"}
	w := codecRequest(t, h, http.MethodOptions, "/decode", remote, "", preflight)
	require.Equal(t, http.StatusNoContent, w.Code)
	require.Equal(t, uiOrigin, w.Header().Get("Access-Control-Allow-Origin"))
	require.Contains(t, w.Header().Get("Access-Control-Allow-Methods"), "POST")
	for _, header := range []string{"Content-Type", "X-Namespace", "Authorization"} {
		require.Contains(t, w.Header().Get("Access-Control-Allow-Headers"), header)
	}

	preflight["Origin"] = "https://evil.example"
	w = codecRequest(t, h, http.MethodOptions, "/decode", loopback, "", preflight)
	require.Equal(t, http.StatusForbidden, w.Code)
	require.Empty(t, w.Header().Get("Access-Control-Allow-Origin"))
}

func TestServerRefusesOtherOrigins(t *testing.T) {
	c := mustParse(t, "k1="+newKey(t))
	h := c.Handler(ServerOptions{Origin: uiOrigin})
	for _, origin := range []string{"https://evil.example", "http://localhost:8234", "http://127.0.0.1:8233", "null"} {
		w := codecRequest(t, h, http.MethodPost, "/decode", loopback, encryptedBody(t, c), map[string]string{"Origin": origin})
		require.Equal(t, http.StatusForbidden, w.Code, origin)
		require.Empty(t, w.Header().Get("Access-Control-Allow-Origin"), origin)
		require.NotContains(t, w.Body.String(), "ada@example.com", origin)
		require.Contains(t, w.Body.String(), "SIGNALBOX_CODEC_ORIGIN", origin)
	}
}

func TestServerWantsTheTokenExceptFromLoopback(t *testing.T) {
	c := mustParse(t, "k1="+newKey(t))
	withToken := c.Handler(ServerOptions{Origin: uiOrigin, Token: token})
	loopbackOnly := c.Handler(ServerOptions{Origin: uiOrigin})
	body := encryptedBody(t, c)
	for name, tc := range map[string]struct {
		h      http.Handler
		from   string
		header map[string]string
		want   int
	}{
		"remote without a token":                    {withToken, remote, nil, http.StatusUnauthorized},
		"remote with a wrong token":                 {withToken, remote, map[string]string{"Authorization": "Bearer " + token + "x"}, http.StatusUnauthorized},
		"remote with the token as Basic":            {withToken, remote, map[string]string{"Authorization": "Basic " + token}, http.StatusUnauthorized},
		"remote with the token":                     {withToken, remote, map[string]string{"Authorization": "Bearer " + token}, http.StatusOK},
		"loopback without a token":                  {withToken, loopback, nil, http.StatusOK},
		"loopback over IPv6 without a token":        {withToken, "[::1]:40000", nil, http.StatusOK},
		"loopback with a wrong token":               {withToken, loopback, map[string]string{"Authorization": "Bearer wrong"}, http.StatusUnauthorized},
		"forwarded by a proxy on this host":         {withToken, loopback, map[string]string{"X-Forwarded-For": "198.51.100.7"}, http.StatusUnauthorized},
		"forwarded (RFC 7239) by a proxy":           {withToken, loopback, map[string]string{"Forwarded": "for=198.51.100.7"}, http.StatusUnauthorized},
		"forwarded by a proxy that adds the token":  {withToken, loopback, map[string]string{"X-Forwarded-For": "198.51.100.7", "Authorization": "Bearer " + token}, http.StatusOK},
		"remote, no token configured":               {loopbackOnly, remote, map[string]string{"Authorization": "Bearer anything"}, http.StatusUnauthorized},
		"loopback, no token configured":             {loopbackOnly, loopback, nil, http.StatusOK},
		"loopback, UI passing its own access token": {loopbackOnly, loopback, map[string]string{"Authorization": "Bearer ui-oidc-token"}, http.StatusOK},
	} {
		w := codecRequest(t, tc.h, http.MethodPost, "/decode", tc.from, body, tc.header)
		require.Equal(t, tc.want, w.Code, "%s: %s", name, w.Body.String())
		if tc.want == http.StatusUnauthorized {
			require.Contains(t, w.Header().Get("WWW-Authenticate"), "Bearer", name)
			require.Contains(t, w.Body.String(), "SIGNALBOX_CODEC_TOKEN", name)
			require.NotContains(t, w.Body.String(), "ada@example.com", name)
		}
	}
}

func TestServerSaysWhatIsWrong(t *testing.T) {
	c := mustParse(t, "k1="+newKey(t))
	h := c.Handler(ServerOptions{Origin: uiOrigin, Namespace: "default"})
	other := encryptedBody(t, mustParse(t, "k7="+newKey(t)))
	for name, tc := range map[string]struct {
		method, path, body string
		header             map[string]string
		want               int
		says               string
	}{
		"GET":                {http.MethodGet, "/decode", "", nil, http.StatusMethodNotAllowed, "POST"},
		"another path":       {http.MethodPost, "/decrypt", "{}", nil, http.StatusNotFound, "/decode"},
		"not protojson":      {http.MethodPost, "/decode", "[1,2]", nil, http.StatusBadRequest, "protojson Payloads"},
		"an unknown key":     {http.MethodPost, "/decode", other, nil, http.StatusBadRequest, `key ID "k7", which SIGNALBOX_PAYLOAD_KEYS does not hold`},
		"another namespace":  {http.MethodPost, "/decode", encryptedBody(t, c), map[string]string{"X-Namespace": "payments"}, http.StatusForbidden, "namespace default, not payments"},
		"health, no secrets": {http.MethodGet, "/healthz", "", nil, http.StatusOK, "ok"},
	} {
		w := codecRequest(t, h, tc.method, tc.path, loopback, tc.body, tc.header)
		require.Equal(t, tc.want, w.Code, "%s: %s", name, w.Body.String())
		require.Contains(t, w.Body.String(), tc.says, name)
	}
}

// The temporal CLI and the SDKs call a codec server through the SDK's remote
// codec; it must understand this one both ways.
func TestServerSpeaksTheSDKsRemoteCodecProtocol(t *testing.T) {
	c := mustParse(t, "k1="+newKey(t))
	srv := httptest.NewServer(c.Handler(ServerOptions{Origin: uiOrigin, Token: token}))
	defer srv.Close()
	remoteCodec := converter.NewRemotePayloadCodec(converter.RemotePayloadCodecOptions{Endpoint: srv.URL,
		ModifyRequest: func(r *http.Request) error { r.Header.Set("Authorization", "Bearer "+token); return nil }})

	plain := leadPayloads(t)
	enc, err := remoteCodec.Encode(plain)
	require.NoError(t, err)
	require.Equal(t, Encoding, string(enc[0].Metadata[converter.MetadataEncoding]))
	local, err := c.Decode(enc)
	require.NoError(t, err, "what the server encrypts, the workers read")
	require.Equal(t, plain[0].Data, local[0].Data)

	fromWorker, err := c.Encode(plain)
	require.NoError(t, err)
	dec, err := remoteCodec.Decode(fromWorker)
	require.NoError(t, err)
	require.Equal(t, plain[1].Data, dec[1].Data)

	resp, err := http.Post(srv.URL+"/decode", "application/json", strings.NewReader(`{"payloads":[]}`))
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, string(b))
}
