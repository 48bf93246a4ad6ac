// Command sandbox runs local emulators of the external APIs signalbox calls — a
// HubSpot-compatible CRM and Slack-compatible chat webhooks — with injectable
// faults and a request log that tests read to prove exactly-once effects.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/signalbox-dev/signalbox/config"
	"github.com/signalbox-dev/signalbox/sandbox/emulator"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "sandbox:", err)
		os.Exit(1)
	}
}

func run() error {
	var cfg config.Sandbox
	if err := config.Load(&cfg); err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: cfg.Level()}))
	plan, err := emulator.ParsePlan([]byte(cfg.SandboxFaults))
	if err != nil {
		return fmt.Errorf("SIGNALBOX_SANDBOX_FAULTS: %w", err)
	}
	ln, err := net.Listen("tcp", cfg.SandboxAddr)
	if err != nil {
		return fmt.Errorf("listen on SIGNALBOX_SANDBOX_ADDR=%s: %w", cfg.SandboxAddr, err)
	}
	srv := &http.Server{
		Handler:           emulator.NewServer(cfg.SandboxToken, cfg.SandboxSeed, plan, logger).Handler(),
		ReadHeaderTimeout: 10 * time.Second,
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	logger.Info("sandbox listening", "addr", ln.Addr().String(), "seed", cfg.SandboxSeed, "faults", len(plan))
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
