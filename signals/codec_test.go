package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/signalbox-dev/signalbox/codec"
)

func TestCodecServerHelp(t *testing.T) {
	t.Setenv("SIGNALBOX_PAYLOAD_KEYS", "")
	a, out, _ := newTestApp()
	require.NoError(t, a.run(context.Background(), []string{"codec-server", "--help"}))
	require.Contains(t, out.String(), "usage: signals codec-server")
	require.Contains(t, out.String(), "--ui-codec-endpoint")

	a, _, errOut := newTestApp()
	require.ErrorIs(t, a.run(context.Background(), []string{"codec-server", "extra"}), errUsage)
	require.Contains(t, errOut.String(), "usage: signals codec-server")
}

func TestCodecServerNeedsTheKeys(t *testing.T) {
	t.Setenv("SIGNALBOX_PAYLOAD_KEYS", "")
	a, _, _ := newTestApp()
	err := a.run(context.Background(), []string{"codec-server"})
	require.ErrorContains(t, err, "SIGNALBOX_PAYLOAD_KEYS is not set: set it (or SIGNALBOX_PAYLOAD_KEYS_FILE)")

	t.Setenv("SIGNALBOX_PAYLOAD_KEYS", "k1=c2hvcnQ=")
	err = a.run(context.Background(), []string{"codec-server"})
	require.ErrorContains(t, err, `SIGNALBOX_PAYLOAD_KEYS (value hidden): entry 1 (key ID "k1"): the key is 5 bytes`)
}

func TestCodecServerServesUntilInterrupted(t *testing.T) {
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	spec := "k1=" + base64.StdEncoding.EncodeToString(key)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	ln.Close()
	t.Setenv("SIGNALBOX_PAYLOAD_KEYS", spec)
	t.Setenv("SIGNALBOX_CODEC_ADDR", addr)
	t.Setenv("SIGNALBOX_CODEC_TOKEN", "")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a, out, _ := newTestApp()
	done := make(chan error, 1)
	go func() { done <- a.run(ctx, []string{"codec-server"}) }()
	require.Eventually(t, func() bool {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 10*time.Second, 20*time.Millisecond)

	c, err := codec.Parse(spec)
	require.NoError(t, err)
	p, err := c.DataConverter().ToPayloads("ada@example.com")
	require.NoError(t, err)
	body, err := protojson.Marshal(p)
	require.NoError(t, err)
	resp, err := http.Post("http://"+addr+"/decode", "application/json", strings.NewReader(string(body)))
	require.NoError(t, err)
	answer, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, string(answer))
	var decoded commonpb.Payloads
	require.NoError(t, protojson.Unmarshal(answer, &decoded))
	require.Equal(t, `"ada@example.com"`, string(decoded.Payloads[0].Data))

	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("the codec server did not stop when interrupted")
	}
	require.Contains(t, out.String(), "codec server listening on http://"+addr)
	require.Contains(t, out.String(), "--ui-codec-endpoint http://"+addr)
	require.NotContains(t, out.String(), spec[3:13], "keys are never printed")
	_, err = http.Get("http://" + addr + "/healthz")
	require.Error(t, err, "stopped listening")
}
