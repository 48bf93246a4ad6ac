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
	"slices"
	"strings"
	"syscall"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/signalbox-dev/signalbox/api"
	"github.com/signalbox-dev/signalbox/config"
	"github.com/signalbox-dev/signalbox/metrics"
	"github.com/signalbox-dev/signalbox/store"
	"github.com/signalbox-dev/signalbox/workflows"
	"github.com/signalbox-dev/signalbox/workflows/spine"
)

// usage lists the commands: serve, and each integration's own.
func usage(integrations []spine.Integration) string {
	var b strings.Builder
	b.WriteString("starter starts signalbox items.\n\nUsage:\n")
	fmt.Fprintf(&b, "  %-40s %s\n", "starter serve", "run the HTTP intake on SIGNALBOX_INTAKE_ADDR")
	for _, in := range integrations {
		i := in.Intake
		if i.Command == "" {
			continue
		}
		fmt.Fprintf(&b, "  %-40s start one %s item (%s)\n", "starter "+i.Command+" "+i.Usage, in.Spec.Name, i.Route)
		if i.Bulk != "" {
			fmt.Fprintf(&b, "  %-40s start one for every record in that status (safe to run twice)\n", "starter "+i.Bulk+" --status "+i.Statuses[0])
		}
	}
	fmt.Fprintf(&b, "  %-40s %s\n", "starter "+stripeEventCommand+" --invoice in_…", "sign a Stripe event as Stripe would and post it to the intake (--curl prints it)")
	b.WriteString("\nA record file of \"-\" reads stdin; --key names the item (default: the record's \"id\").\n")
	b.WriteString("Configuration comes from the environment: see README.md, \"Configuration\".\n")
	return b.String()
}

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
	integrations, err := workflows.Integrations()
	if err != nil {
		return err
	}
	usage := usage(integrations)
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
	if args[0] == "serve" {
		return serve(ctx, cfg, logger, integrations)
	}
	if args[0] == stripeEventCommand {
		return stripeEvent(ctx, cfg, args[1:], stdout, stderr)
	}
	for _, in := range integrations {
		switch args[0] {
		case in.Intake.Command:
			return startOne(ctx, cfg, logger, in, args[1:], stdin, stdout, stderr)
		case in.Intake.Bulk:
			return startAll(ctx, cfg, logger, in, args[1:], stdout, stderr)
		}
	}
	fmt.Fprintf(stderr, "starter: unknown command %q\n\n%s", args[0], usage)
	return errUsage
}

// dial connects to Temporal; serving waits for it a while, commands do not.
func dial(ctx context.Context, cfg config.Intake, logger *slog.Logger) (client.Client, error) {
	return cfg.Temporal.Dial(ctx, logger, 0)
}

// itemsOn reads and starts items through c, dialled with cfg: it reads
// the inputs of runs with the payload converter c writes them with.
func itemsOn(c client.Client, cfg config.Intake, logger *slog.Logger) (*temporalItems, error) {
	opts, err := cfg.Temporal.ClientOptions(logger)
	if err != nil {
		return nil, err
	}
	return newTemporalItems(c, opts.DataConverter), nil
}

// signatureSweep is how often the intake forgets the signed requests too
// old to be taken anyway.
const signatureSweep = time.Minute

func serve(ctx context.Context, cfg config.Intake, logger *slog.Logger, integrations []spine.Integration) error {
	err := cfg.CheckIntakeAuth()
	if err != nil {
		return err
	}
	sc, err := newScopes(cfg, integrations)
	if err != nil {
		return err
	}
	var c client.Client
	var exporter *metrics.Exporter
	if cfg.MetricsAddr != "" {
		if exporter, err = metrics.New(logger); err != nil {
			return err
		}
		defer func() { _ = exporter.Shutdown(context.Background()) }()
		// On a listener of its own: the intake's faces the senders of leads.
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", exporter.Handler())
		stopMetrics, err := metrics.Serve(cfg.MetricsAddr, "SIGNALBOX_METRICS_ADDR", mux)
		if err != nil {
			return err
		}
		defer stopMetrics()
		c, err = exporter.Dial(ctx, cfg.Temporal, logger, 2*time.Minute)
	} else {
		c, err = cfg.Temporal.Dial(ctx, logger, 2*time.Minute)
	}
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
	items, err := itemsOn(c, cfg, logger)
	if err != nil {
		return err
	}
	st := store.New(pool)
	limits := newLimiter(cfg.RateLimitOf)
	in := &intake{items: items, records: st, integrations: integrations, logger: logger,
		auth: newAuthenticator(cfg.IntakeTokens, cfg.IntakeHMACSecrets), scopes: sc, limits: limits, ledger: st, now: time.Now}
	for _, source := range cfg.IntakeSources() {
		logger.Info("intake source", "source", source, "routes", sc.of(source), "limit", cfg.RateLimitOf(source).String())
	}
	go forgetSignatures(ctx, st, logger)
	handler := withStripeWebhook(in.routes(), &stripeWebhook{secret: cfg.StripeWebhookSecret, events: items, deliveries: st, limits: limits, logger: logger})
	if exporter != nil {
		handler = exporter.Intake(handler)
	}
	srv := &http.Server{
		Handler:           handler,
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

// forgetSignatures forgets, every signatureSweep until ctx ends, the signed
// requests older than any the intake still takes.
func forgetSignatures(ctx context.Context, st *store.Store, logger *slog.Logger) {
	tick := time.NewTicker(signatureSweep)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			if _, err := st.ForgetIntakeSignatures(ctx, now.Add(-signatureTolerance-time.Minute)); err != nil && ctx.Err() == nil {
				logger.Warn("could not forget old signed requests; trying again in a minute", "error", err)
			}
		}
	}
}

// startOne starts one item from the command line and says how to follow it:
// from a record file (--file, --key) or a record's key in the source of truth.
func startOne(ctx context.Context, cfg config.Intake, logger *slog.Logger, in spine.Integration, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	name := "starter " + in.Intake.Command
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.String("file", "", `JSON file holding the record ("-" for stdin)`)
	key := fs.String("key", "", `the item's key (default: the record's "id")`)
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	var input func(string) any
	if in.Intake.Decode != nil {
		if *file == "" || fs.NArg() > 0 {
			fmt.Fprintf(stderr, "%s: give exactly --file FILE\n", name)
			return errUsage
		}
		body, err := readInput(*file, stdin)
		if err != nil {
			return err
		}
		id, in, err := in.Intake.Decode(body)
		if err == nil {
			*key, err = sourceKey(*key, id)
		}
		if err != nil {
			return describeRefusal(err)
		}
		input = in
	} else {
		if fs.NArg() != 1 || *file != "" || *key != "" {
			fmt.Fprintf(stderr, "usage: %s %s\n", name, in.Intake.Usage)
			return errUsage
		}
		*key = fs.Arg(0)
		pool, err := store.Open(ctx, cfg.Database.URL)
		if err != nil {
			return err
		}
		defer pool.Close()
		if err := checkKey(ctx, store.New(pool), in.Intake, *key); err != nil {
			return describeRefusal(err)
		}
		input = func(startedBy string) any { return in.Intake.Input(*key, startedBy) }
	}
	c, err := dial(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer c.Close()
	items, err := itemsOn(c, cfg, logger)
	if err != nil {
		return err
	}
	s, err := items.Start(ctx, in.Spec, *key, input("cli"))
	if err != nil {
		return fmt.Errorf("start %s: %w", api.ItemID(in.Spec.Name, *key), err)
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

// describeRefusal renders a refusal with every field problem on its own line.
func describeRefusal(err error) error {
	var bad *spine.Refused
	if !errors.As(err, &bad) {
		return err
	}
	msg := bad.Message
	for _, f := range bad.Fields {
		msg += fmt.Sprintf("\n  %s: %s", f.Field, f.Problem)
	}
	return errors.New(msg)
}

// startAll starts an item for every record in a status. Running it twice is
// safe: an item already running is returned as it is.
func startAll(ctx context.Context, cfg config.Intake, logger *slog.Logger, in spine.Integration, args []string, stdout, stderr io.Writer) error {
	name := "starter " + in.Intake.Bulk
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	statuses := in.Intake.Statuses
	status := fs.String("status", statuses[0], "start the records in this status: "+strings.Join(statuses, " or "))
	var backfill *bool
	if in.Poll != nil {
		backfill = fs.Bool("backfill", false, "compare every record of both systems, creating what is missing in batches (a full poll)")
	}
	if err := fs.Parse(args); err != nil || fs.NArg() > 0 {
		return errUsage
	}
	if backfill != nil && *backfill {
		return runBackfill(ctx, cfg, logger, in, stdout)
	}
	if !slices.Contains(statuses, *status) {
		fmt.Fprintf(stderr, "%s: --status must be %s\n", name, strings.Join(statuses, " or "))
		return errUsage
	}
	pool, err := store.Open(ctx, cfg.Database.URL)
	if err != nil {
		return err
	}
	defer pool.Close()
	keys, err := in.Intake.Keys(ctx, store.New(pool), *status)
	if err != nil {
		return err
	}
	if len(keys) == 0 {
		fmt.Fprintf(stdout, "no %s %s\n", *status, in.Intake.Bulk)
		return nil
	}
	c, err := dial(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer c.Close()
	items, err := itemsOn(c, cfg, logger)
	if err != nil {
		return err
	}
	failed := 0
	for i, key := range keys {
		s, err := items.Start(ctx, in.Spec, key, in.Intake.Input(key, "cli"))
		if err != nil {
			failed++
			fmt.Fprintf(stdout, "[%d/%d] %s: not started: %v\n", i+1, len(keys), key, err)
			continue
		}
		fmt.Fprintf(stdout, "[%d/%d] %s started (run %s)\n", i+1, len(keys), s.WorkflowID, s.RunID)
	}
	fmt.Fprintf(stdout, "started %d of %d; follow them: signals list --integration %s\n", len(keys)-failed, len(keys), in.Spec.Name)
	if failed > 0 {
		return fmt.Errorf("%d item(s) not started; run the command again to retry them", failed)
	}
	return nil
}

// runBackfill runs the integration's poll over every record (not only those
// changed since its watermarks) and reports its progress every few seconds.
// Running it again while it runs follows the running one.
func runBackfill(ctx context.Context, cfg config.Intake, logger *slog.Logger, in spine.Integration, stdout io.Writer) error {
	c, err := dial(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer c.Close()
	id := api.ScheduleID(in.Spec.Name) + "-backfill"
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: api.TaskQueueIntegrations,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING}, in.Poll.WorkflowType, map[string]any{"full": true})
	if err != nil {
		return fmt.Errorf("start the backfill of %s: %w", in.Spec.Name, err)
	}
	fmt.Fprintf(stdout, "backfill of %s: %s (follow it in the Temporal UI too)\n", in.Spec.Name, id)
	err = api.Follow(ctx, run, 2*time.Second, nil, func() { fmt.Fprintln(stdout, progressOf(ctx, c, id)) })
	if err != nil {
		return fmt.Errorf("backfill of %s: %w", in.Spec.Name, err)
	}
	fmt.Fprintln(stdout, progressOf(ctx, c, id))
	return nil
}

// progressOf asks a running poll how far it is.
func progressOf(ctx context.Context, c client.Client, id string) string {
	v, err := c.QueryWorkflow(ctx, id, "", api.QueryProgress)
	if err != nil {
		return "progress unknown: " + err.Error()
	}
	var p api.PollProgress
	if err := v.Get(&p); err != nil {
		return "progress unknown: " + err.Error()
	}
	return p.String()
}
