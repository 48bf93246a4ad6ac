package config

import (
	"crypto/rand"
	"encoding/base64"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/converter"

	"github.com/signalbox-dev/signalbox/codec"
)

func payloadKey(t *testing.T) string {
	t.Helper()
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}

// encoding is how a client dialled with these settings writes a value.
func encoding(t *testing.T, tc Temporal) string {
	t.Helper()
	opts, err := tc.ClientOptions(nil)
	require.NoError(t, err)
	p, err := opts.DataConverter.ToPayload(map[string]string{"email": "ada@example.com"})
	require.NoError(t, err)
	return string(p.Metadata[converter.MetadataEncoding])
}

func TestEveryClientEncryptsWhenKeysAreSet(t *testing.T) {
	cleanEnv(t)
	t.Setenv("SIGNALBOX_PAYLOAD_KEYS", "k2="+payloadKey(t)+";k1="+payloadKey(t))
	var w Worker
	var i Intake
	var s Signals
	for _, spec := range []Validator{&w, &i, &s} {
		require.NoError(t, Load(spec))
	}
	for name, tc := range map[string]Temporal{"workers": w.Temporal, "starter": i.Temporal, "signals": s.Temporal} {
		require.Equal(t, codec.Encoding, encoding(t, tc), name)
		opts, err := tc.ClientOptions(nil)
		require.NoError(t, err)
		f := opts.FailureConverter.ErrorToFailure(os.ErrNotExist)
		require.NotContains(t, f.String(), os.ErrNotExist.Error(), "%s: failure messages are encrypted too", name)
	}
}

func TestNoKeysNoEncryption(t *testing.T) {
	cleanEnv(t)
	// Only the prefixed name is read: a bare PAYLOAD_KEYS belongs to someone else.
	t.Setenv("PAYLOAD_KEYS", "k1="+payloadKey(t))
	var w Worker
	require.NoError(t, Load(&w))
	require.Empty(t, w.PayloadKeys)
	require.Equal(t, converter.MetadataEncodingJSON, encoding(t, w.Temporal))
}

func TestBadPayloadKeysNameTheVariableNotTheKey(t *testing.T) {
	key := payloadKey(t)
	for value, want := range map[string]string{
		key:                        "config: SIGNALBOX_PAYLOAD_KEYS (value hidden): entry 1 is not ID=<base64 key>",
		"k1=" + key[:20]:           `config: SIGNALBOX_PAYLOAD_KEYS (value hidden): entry 1 (key ID "k1"): the key is 15 bytes; AES-256 needs 32`,
		"k1=" + key + ";k1=" + key: `entry 2 (key ID "k1"): the ID is given twice`,
	} {
		cleanEnv(t)
		t.Setenv("SIGNALBOX_PAYLOAD_KEYS", value)
		var w Worker
		err := Load(&w)
		require.ErrorContains(t, err, want)
		require.NotContains(t, err.Error(), key[:20])
		_, err = w.ClientOptions(nil)
		require.ErrorContains(t, err, "SIGNALBOX_PAYLOAD_KEYS", "no client dials with keys it cannot use")
	}
}

func TestPayloadKeysAreReadFromAFile(t *testing.T) {
	cleanEnv(t)
	path := filepath.Join(t.TempDir(), "payload-keys")
	require.NoError(t, os.WriteFile(path, []byte("k1="+payloadKey(t)+"\n"), 0o600))
	t.Setenv("SIGNALBOX_PAYLOAD_KEYS_FILE", path)
	var s Signals
	require.NoError(t, Load(&s))
	c, err := s.Codec()
	require.NoError(t, err)
	require.Equal(t, []string{"k1"}, c.KeyIDs())
}

func TestCodecServerSettings(t *testing.T) {
	t.Parallel()
	ok := CodecServer{CodecAddr: "127.0.0.1:8089", CodecOrigin: "http://localhost:8233"}
	require.NoError(t, ok.Validate())
	require.Equal(t, "http://localhost:8233", ok.UIOrigin())
	slash := ok
	slash.CodecOrigin = "https://temporal.example.com/"
	require.NoError(t, slash.Validate())
	require.Equal(t, "https://temporal.example.com", slash.UIOrigin(), "browsers send origins without a slash")
	remote := ok
	remote.CodecAddr, remote.CodecToken = "0.0.0.0:8089", "a-token-long-enough-for-it"
	require.NoError(t, remote.Validate())

	for name, tc := range map[string]struct {
		c    CodecServer
		want string
	}{
		"a bad address":            {CodecServer{CodecAddr: "8089", CodecOrigin: ok.CodecOrigin}, `SIGNALBOX_CODEC_ADDR="8089" must be host:port`},
		"an origin with a path":    {CodecServer{CodecAddr: ok.CodecAddr, CodecOrigin: "http://localhost:8233/namespaces"}, "SIGNALBOX_CODEC_ORIGIN=\"http://localhost:8233/namespaces\" must be the Temporal UI's origin"},
		"an origin without scheme": {CodecServer{CodecAddr: ok.CodecAddr, CodecOrigin: "localhost:8233"}, "SIGNALBOX_CODEC_ORIGIN"},
		"a short token":            {CodecServer{CodecAddr: ok.CodecAddr, CodecOrigin: ok.CodecOrigin, CodecToken: "short"}, "SIGNALBOX_CODEC_TOKEN (value hidden) must be at least 16 characters"},
		"all interfaces, no token": {CodecServer{CodecAddr: "0.0.0.0:8089", CodecOrigin: ok.CodecOrigin}, "set SIGNALBOX_CODEC_TOKEN, or listen on 127.0.0.1"},
	} {
		require.ErrorContains(t, tc.c.Validate(), tc.want, name)
	}
}
