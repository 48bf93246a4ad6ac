// Command starter starts integration items: `starter serve` runs the HTTP
// intake, the other commands start items from the command line.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/signalbox-dev/signalbox/config"
	"github.com/signalbox-dev/signalbox/store"
	"github.com/signalbox-dev/signalbox/workflows"
)

const usage = `starter starts signalbox items.

Usage:
  starter serve                      run the HTTP intake on SIGNALBOX_INTAKE_ADDR
  starter lead --file lead.json      start a lead → CRM item from a JSON file ("-" reads stdin)
                [--key KEY]          the item's key (default: the lead's "id")
  starter invoice ID                 bill one invoice from PostgreSQL in Stripe
  starter invoices --status ready    start every invoice in that status (safe to run twice)

Configuration comes from the environment: see README.md, "Configuration".
`

// errUsage marks a command line that makes no sense; main exits 2.
var errUsage = errors.New("usage")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	switch {
	case errors.Is(err, errUsage):
		os.Exit(2)
	case err != nil:
		fmt.Fprintln(os.Stderr, "starter:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprint(stdout, usage)
		if len(args) == 0 {
			return errUsage
		}
		return nil
	}
	var cfg config.Intake
	if err := config.Load(&cfg); err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: cfg.Level()}))
	switch args[0] {
	case "serve":
		return serve(ctx, cfg, logger)
	case "lead":
		return startLead(ctx, cfg, logger, args[1:], stdin, stdout, stderr)
	case "invoice":
		return startInvoice(ctx, cfg, logger, args[1:], stdout, stderr)
	case "invoices":
		return startInvoices(ctx, cfg, logger, args[1:], stdout, stderr)
	default:
		fmt.Fprintf(stderr, "starter: unknown command %q\n\n%s", args[0], usage)
		return errUsage
	}
}

// dial connects to Temporal; serving waits for it a while, commands do not.
func dial(ctx context.Context, cfg config.Intake, logger *slog.Logger) (client.Client, error) {
	return cfg.Temporal.Dial(ctx, logger, 0)
}

func serve(ctx context.Context, cfg config.Intake, logger *slog.Logger) error {
	if err := cfg.CheckIntakeAuth(); err != nil {
		return err
	}
	c, err := cfg.Temporal.Dial(ctx, logger, 2*time.Minute)
	if err != nil {
		return err
	}
	defer c.Close()
	pool, err := store.Open(ctx, cfg.Database.URL)
	if err != nil {
		return err
	}
	defer pool.Close()
	ln, err := net.Listen("tcp", cfg.IntakeAddr)
	if err != nil {
		return fmt.Errorf("listen on SIGNALBOX_INTAKE_ADDR=%s: %w", cfg.IntakeAddr, err)
	}
	in := &intake{items: &temporalItems{client: c}, invoices: store.New(pool), logger: logger,
		auth: newAuthenticator(cfg.IntakeTokens, cfg.IntakeHMACSecrets)}
	srv := &http.Server{
		Handler:           in.routes(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       60 * time.Second,
	}
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	logger.Info("intake listening", "addr", ln.Addr().String())
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func startLead(ctx context.Context, cfg config.Intake, logger *slog.Logger, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("starter lead", flag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.String("file", "", `JSON file holding the lead ("-" for stdin)`)
	key := fs.String("key", "", `the item's key (default: the lead's "id")`)
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	if *file == "" || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "starter lead: give exactly --file FILE")
		return errUsage
	}
	body, err := readInput(*file, stdin)
	if err != nil {
		return err
	}
	lead, err := decodeLead(body)
	if err == nil {
		*key, err = sourceKey(*key, lead.ID)
	}
	if err != nil {
		return describeBadInput(err)
	}
	return startOne(ctx, cfg, logger, stdout, workflows.LeadToCRMSpec(), *key,
		workflows.LeadInput{ItemInput: workflows.ItemInput{StartedBy: "cli"}, Lead: lead})
}

// startOne starts one item from the command line and says how to follow it.
func startOne(ctx context.Context, cfg config.Intake, logger *slog.Logger, stdout io.Writer, spec workflows.Spec, key string, input any) error {
	c, err := dial(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer c.Close()
	s, err := (&temporalItems{client: c}).Start(ctx, spec, key, input)
	if err != nil {
		return fmt.Errorf("start %s: %w", workflows.ItemID(spec.Name, key), err)
	}
	fmt.Fprintf(stdout, "started %s (run %s)\nfollow it: signals show %s\n", s.WorkflowID, s.RunID, s.WorkflowID)
	return nil
}

func readInput(file string, stdin io.Reader) ([]byte, error) {
	var r io.Reader = stdin
	if file != "-" {
		f, err := os.Open(file)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = f
	}
	body, err := io.ReadAll(io.LimitReader(r, maxBody+1))
	if err != nil {
		return nil, err
	}
	if len(body) > maxBody {
		return nil, fmt.Errorf("%s exceeds %d bytes", file, maxBody)
	}
	return body, nil
}

// describeBadInput renders a refusal with every field problem on its own line.
func describeBadInput(err error) error {
	var bad *badInput
	if !errors.As(err, &bad) {
		return err
	}
	msg := bad.problem.Error
	for _, f := range bad.Fields {
		msg += fmt.Sprintf("\n  %s: %s", f.Field, f.Problem)
	}
	return errors.New(msg)
}

func startInvoice(ctx context.Context, cfg config.Intake, logger *slog.Logger, args []string, stdout, stderr io.Writer) error {
	if len(args) != 1 || strings.HasPrefix(args[0], "-") {
		fmt.Fprintln(stderr, "usage: starter invoice ID")
		return errUsage
	}
	pool, err := store.Open(ctx, cfg.Database.URL)
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := checkInvoiceToSync(ctx, store.New(pool), args[0]); err != nil {
		return describeBadInput(err)
	}
	return startOne(ctx, cfg, logger, stdout, workflows.InvoiceToBillingSpec(), args[0], invoiceInput(args[0], "cli"))
}

// startInvoices starts an item for every invoice in a status. Running it twice
// is safe: an item already running is returned as it is, and a billed invoice
// leaves the ready status.
func startInvoices(ctx context.Context, cfg config.Intake, logger *slog.Logger, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("starter invoices", flag.ContinueOnError)
	fs.SetOutput(stderr)
	status := fs.String("status", store.InvoiceReady, "start the invoices in this status (ready, or billed to refresh payment status)")
	if err := fs.Parse(args); err != nil || fs.NArg() > 0 {
		return errUsage
	}
	if *status != store.InvoiceReady && *status != store.InvoiceBilled {
		fmt.Fprintln(stderr, "starter invoices: --status must be ready or billed")
		return errUsage
	}
	pool, err := store.Open(ctx, cfg.Database.URL)
	if err != nil {
		return err
	}
	defer pool.Close()
	ids, err := store.New(pool).InvoiceIDs(ctx, *status)
	if err != nil {
		return err
	}
	if len(ids) == 0 {
		fmt.Fprintf(stdout, "no %s invoices\n", *status)
		return nil
	}
	c, err := dial(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer c.Close()
	items := &temporalItems{client: c}
	failed := 0
	for i, id := range ids {
		s, err := items.Start(ctx, workflows.InvoiceToBillingSpec(), id, invoiceInput(id, "cli"))
		if err != nil {
			failed++
			fmt.Fprintf(stdout, "[%d/%d] %s: not started: %v\n", i+1, len(ids), id, err)
			continue
		}
		fmt.Fprintf(stdout, "[%d/%d] %s started (run %s)\n", i+1, len(ids), s.WorkflowID, s.RunID)
	}
	fmt.Fprintf(stdout, "started %d of %d; follow them: signals list --integration %s\n", len(ids)-failed, len(ids), workflows.IntegrationInvoiceToBilling)
	if failed > 0 {
		return fmt.Errorf("%d invoice(s) not started; run the command again to retry them", failed)
	}
	return nil
}
