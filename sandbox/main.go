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
	emu := emulator.NewServer(cfg.SandboxToken, cfg.SandboxSeed, plan, logger)
	emu.SetStripeURL(cfg.SandboxStripeURL)
	if err := emu.SetCRMLimit(cfg.SandboxCRMLimit); err != nil {
		return fmt.Errorf("SIGNALBOX_SANDBOX_CRM_LIMIT: %w", err)
	}
	// Contacts and companies live in memory; numbering from the clock keeps a
	// restarted sandbox from reusing the IDs that external_links still hold.
	// Companies are numbered apart from contacts (11 digits against 10).
	clock := int(time.Now().Unix()%100_000_000) * 10
	emu.SetFirstContactID(clock)
	emu.SetFirstCompanyID(20_000_000_000 + clock)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	errs := make(chan error, 2)
	for _, l := range []struct {
		variable, addr string
		handler        http.Handler
	}{
		{"SIGNALBOX_SANDBOX_ADDR", cfg.SandboxAddr, emu.Handler()},
		{"SIGNALBOX_SANDBOX_STRIPE_ADDR", cfg.SandboxStripeAddr, emu.StripeHandler()},
	} {
		ln, err := net.Listen("tcp", l.addr)
		if err != nil {
			return fmt.Errorf("listen on %s=%s: %w", l.variable, l.addr, err)
		}
		srv := &http.Server{Handler: l.handler, ReadHeaderTimeout: 10 * time.Second}
		go func() {
			<-ctx.Done()
			shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = srv.Shutdown(shutdown)
		}()
		go func() { errs <- srv.Serve(ln) }()
	}
	logger.Info("sandbox listening", "addr", cfg.SandboxAddr, "stripeAddr", cfg.SandboxStripeAddr, "stripeMock", cfg.SandboxStripeURL,
		"seed", cfg.SandboxSeed, "faults", len(plan), "crmLimit", cfg.SandboxCRMLimit)
	for range 2 {
		if err := <-errs; err != nil && !errors.Is(err, http.ErrServerClosed) {
			stop()
			return err
		}
	}
	return nil
}
