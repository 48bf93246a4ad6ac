package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/signalbox-dev/signalbox/codec"
)

const codecServerUsage = `usage: signals codec-server

Decodes signalbox's encrypted payloads for the Temporal UI and the temporal
CLI (Temporal's remote codec protocol: POST /decode and /encode), with the
keys of SIGNALBOX_PAYLOAD_KEYS (or SIGNALBOX_PAYLOAD_KEYS_FILE). It runs until
interrupted.

  SIGNALBOX_CODEC_ADDR    where it listens (default 127.0.0.1:8089)
  SIGNALBOX_CODEC_ORIGIN  the Temporal UI's origin, the only one whose pages may
                          call it (default http://localhost:8233)
  SIGNALBOX_CODEC_TOKEN   the bearer token callers other than loopback must send
                          (default: none, loopback callers only)

Point the UI at it with temporal server start-dev --ui-codec-endpoint URL (or
TEMPORAL_CODEC_ENDPOINT for the UI server), and the CLI with
temporal --codec-endpoint URL [--codec-auth "Bearer TOKEN"]. docs/encryption.md.
`

// codecServer serves the payload codec for the Temporal UI and CLI.
func (a *app) codecServer(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("signals codec-server", flag.ContinueOnError)
	fs.SetOutput(a.stderr)
	fs.Usage = func() { fmt.Fprint(a.stderr, codecServerUsage) }
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(a.stdout, codecServerUsage)
			return nil
		}
		return errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprint(a.stderr, codecServerUsage)
		return errUsage
	}
	if err := a.cfg.CodecServer.Validate(); err != nil {
		return err
	}
	keys, err := a.cfg.Temporal.Codec()
	if err != nil {
		return err
	}
	if !keys.Encrypts() {
		return errors.New("codec-server: SIGNALBOX_PAYLOAD_KEYS is not set: set it (or SIGNALBOX_PAYLOAD_KEYS_FILE) to the keys signalbox's workers encrypt with")
	}
	ln, err := net.Listen("tcp", a.cfg.CodecAddr)
	if err != nil {
		return fmt.Errorf("codec-server: listen on SIGNALBOX_CODEC_ADDR=%s: %w", a.cfg.CodecAddr, err)
	}
	logger := slog.New(slog.NewTextHandler(a.stderr, nil))
	srv := &http.Server{
		Handler: keys.Handler(codec.ServerOptions{Origin: a.cfg.UIOrigin(), Token: a.cfg.CodecToken,
			Namespace: a.cfg.Namespace, Logger: logger}),
		ReadHeaderTimeout: 10 * time.Second,
	}
	who := "loopback callers only (SIGNALBOX_CODEC_TOKEN is not set)"
	if a.cfg.CodecToken != "" {
		who = "loopback callers, and others with Authorization: Bearer $SIGNALBOX_CODEC_TOKEN"
	}
	url := "http://" + ln.Addr().String()
	fmt.Fprintf(a.stdout, `codec server listening on %s
  keys        %s (the first encrypts), namespace %s
  UI origin   %s
  callers     %s
  Temporal UI temporal server start-dev --ui-codec-endpoint %[1]s  (or TEMPORAL_CODEC_ENDPOINT=%[1]s for the UI server)
  CLI         temporal workflow show --workflow-id ID --detailed --codec-endpoint %[1]s
`, url, strings.Join(keys.KeyIDs(), ", "), a.cfg.Namespace, a.cfg.UIOrigin(), who)

	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		return fmt.Errorf("codec-server: %w", err)
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil {
		return fmt.Errorf("codec-server: stop: %w", err)
	}
	fmt.Fprintln(a.stdout, "codec server stopped")
	return nil
}
