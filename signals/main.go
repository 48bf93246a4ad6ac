// Command signals is the operator CLI: find the items that need attention, see
// everything about one, decide its exception, and print an integration's card.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"os/user"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.temporal.io/sdk/client"

	"github.com/signalbox-dev/signalbox/config"
	"github.com/signalbox-dev/signalbox/store"
)

const usage = `signals is signalbox's operator CLI.

Find what needs attention:
  signals list [--status S] [--integration I] [--owner TEAM] [--team TEAM] [--exception KIND]
               [--older-than 2h] [--query 'VISIBILITY QUERY'] [--limit N] [--all-runs] [-o table|json]
                                          the latest run of each item (--all-runs: every run);
                                          "Blocked (terminated)": the run ended before the item did
  signals count [same filters]
  signals show ID [-o text|json]          status, exception, allowed decisions, audit trail

Decide (as $SIGNALBOX_OPERATOR, else your OS user, unless --as says otherwise):
  signals approve|reject|amend|retry|resolve|cancel ID --reason "why"
          [--as ACTOR] [--choice NAME] [--set field=value ...] [--external-ref REF]
  signals approve|... --query 'VISIBILITY QUERY' --reason "why" [--yes] [--parallel N]
          progress on stderr every second; every refusal and failure listed at the end
  signals reassign ID --to TEAM --reason "why"   hand a waiting item to another team; it keeps waiting

Learn an integration:
  signals describe INTEGRATION [-o text|markdown]

The operator console in a browser (docs/console.md):
  signals serve                           inbox, items, decisions, integrations on SIGNALBOX_CONSOLE_ADDR

Its change polling (customer-sync):
  signals schedule INTEGRATION [--pause "why" | --resume | --trigger]
Explain why records differ (reports kept in PostgreSQL):
  signals reconcile INTEGRATION [--now [--no-wait]]   compare source, target and last synced values
  signals reconcile show [--run ID | --integration I] [-o table|json]

Personal data (an operator of every owning team; docs/privacy.md):
  signals erase --email ADDRESS --reason "why" [--as ACTOR] [--yes] [--dry-run] [--wait 2m]
                                          find a person's data in PostgreSQL and Temporal, cancel their
                                          waiting items, delete the executions, mask or delete the rows

Signed decisions (where the workers set SIGNALBOX_DECISION_KEYS):
  signals keygen --operator NAME [--out FILE]   an ed25519 key pair; decisions are signed
                                          with SIGNALBOX_OPERATOR_KEY_FILE

Encrypted payloads (SIGNALBOX_PAYLOAD_KEYS; docs/encryption.md):
  signals codec-server                    decode payloads for the Temporal UI and the temporal CLI

Check a program's health (container health checks):
  signals healthcheck URL
IDs look like lead-to-crm:lead-8f2c. Exit status: 0 done, 1 refused or failed, 2 bad usage.
`

// errUsage marks a command line that makes no sense; main exits 2.
var errUsage = errors.New("usage")

// errRefused marks a decision (or some of a bulk run) that was refused; main exits 1.
var errRefused = errors.New("refused")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	a := &app{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, now: time.Now}
	err := a.run(ctx, os.Args[1:])
	stop()
	a.close()
	switch {
	case errors.Is(err, errUsage):
		os.Exit(2)
	case errors.Is(err, errRefused):
		os.Exit(1)
	case err != nil:
		fmt.Fprintln(os.Stderr, "signals:", err)
		os.Exit(1)
	}
}

// app holds what the commands share; connections are opened on first use.
type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	now            func() time.Time
	cfg            config.Signals
	client         client.Client
	pool           *pgxpool.Pool
	// opKey signs decisions (SIGNALBOX_OPERATOR_KEY_FILE), if set.
	opKey *operatorKey
}

func (a *app) run(ctx context.Context, args []string) error {
	if len(args) == 0 {
		fmt.Fprint(a.stderr, usage)
		return errUsage
	}
	cmd, rest := args[0], args[1:]
	if cmd == "help" || cmd == "-h" || cmd == "--help" {
		fmt.Fprint(a.stdout, usage)
		return nil
	}
	if cmd == "describe" {
		return a.describe(rest)
	}
	if cmd == "healthcheck" {
		return a.healthcheck(ctx, rest)
	}
	if cmd == "keygen" {
		return a.keygen(rest)
	}
	if err := config.Load(&a.cfg); err != nil {
		return err
	}
	switch cmd {
	case "list":
		return a.list(ctx, rest, false)
	case "count":
		return a.list(ctx, rest, true)
	case "show":
		return a.show(ctx, rest)
	case "approve", "reject", "amend", "retry", "resolve", "cancel", "reassign":
		return a.decide(ctx, cmd, rest)
	case "schedule":
		return a.schedule(ctx, rest)
	case "reconcile":
		return a.reconcile(ctx, rest)
	case "erase":
		return a.erase(ctx, rest)
	case "codec-server":
		return a.codecServer(ctx, rest)
	case "serve":
		return a.serve(ctx, rest)
	default:
		fmt.Fprintf(a.stderr, "signals: unknown command %q\n\n%s", cmd, usage)
		return errUsage
	}
}

func (a *app) temporal(ctx context.Context) (client.Client, error) {
	if a.client != nil {
		return a.client, nil
	}
	c, err := a.cfg.Temporal.Dial(ctx, slog.New(slog.NewTextHandler(a.stderr, &slog.HandlerOptions{Level: slog.LevelWarn})), 0)
	if err != nil {
		return nil, err
	}
	a.client = c
	return c, nil
}

// store connects to PostgreSQL without creating or migrating it: operators
// need no more than read and write rights on signalbox's tables.
func (a *app) store(ctx context.Context) (*store.Store, error) {
	if a.pool == nil {
		pool, err := store.Connect(ctx, a.cfg.Database.URL)
		if err != nil {
			return nil, err
		}
		a.pool = pool
	}
	return store.New(a.pool), nil
}

func (a *app) close() {
	if a.client != nil {
		a.client.Close()
	}
	if a.pool != nil {
		a.pool.Close()
	}
}

// actor is who decides: --as, else SIGNALBOX_OPERATOR, else the OS user.
func (a *app) actor(flagValue string) string {
	if flagValue != "" {
		return flagValue
	}
	if a.cfg.Operator != "" {
		return a.cfg.Operator
	}
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return ""
}
