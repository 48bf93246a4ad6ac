package stack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/signalbox-dev/signalbox/api"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
)

// TemporalCLIVersion is the pinned Temporal CLI; it is the newest that
// `go install` can build (later ones need replace directives).
const TemporalCLIVersion = "v1.5.1"

// IntakeToken is the bearer token of the stack's intake (source "local"). It
// guards a local stack only; never use it elsewhere.
const IntakeToken = "local-intake-token-not-a-secret"

// StripeMockVersion is the pinned stripe-mock.
const StripeMockVersion = "v0.203.0"

// Options describe a stack.
type Options struct {
	// BinDir holds the built programs: workers, starter, signals, sandbox.
	BinDir string
	// TemporalCLI is the temporal binary and StripeMock stripe-mock's; DataDir
	// receives logs (and the SQLite file).
	TemporalCLI string
	StripeMock  string
	DataDir     string
	// TemporalAddr and UIPort fix the dev server's ports; empty picks free ones.
	TemporalAddr string
	UIPort       string
	// EnableUI serves the Temporal UI; PersistTemporal keeps state in DataDir/temporal.db.
	EnableUI        bool
	PersistTemporal bool
	// RegisterSearchAttributes registers them with the dev server at start, as
	// `make run` does; otherwise the worker does it.
	RegisterSearchAttributes bool
	// DatabaseURL is the PostgreSQL database the programs use.
	DatabaseURL string
	// SandboxAddr, SandboxStripeAddr, IntakeAddr and StripeMockAddr fix those
	// ports; empty picks free ones.
	SandboxAddr       string
	SandboxStripeAddr string
	IntakeAddr        string
	StripeMockAddr    string
	// SandboxSeed and SandboxFaults configure the sandbox's fault injection.
	SandboxSeed   int64
	SandboxFaults string
	// Env adds variables to every signalbox program (e.g. SIGNALBOX_OPERATORS).
	Env []string
	// Cluster, when set, is a running local Temporal cluster the stack uses
	// instead of a dev server, in Namespace (registered if need be, with
	// signalbox's search attributes). The stack does not stop it.
	Cluster   *Cluster
	Namespace string
}

// Stack is a running local stack.
type Stack struct {
	opts       Options
	temporal   *testsuite.DevServer
	Client     client.Client
	StripeMock *Process
	Sandbox    *Process
	Worker     *Process
	Intake     *Process
	// Env is what a signalbox program needs to reach this stack.
	Env []string
}

// Start brings the stack up: dev server, sandbox, worker, intake.
//
// Ports left empty are picked free; a port picked free can be taken by
// another process (an outgoing connection's ephemeral port, say) before the
// program binds it, so a start that loses such a race is tried again on new
// ports. Fixed ports are never changed.
func Start(ctx context.Context, opts Options) (*Stack, error) {
	for attempt := 1; ; attempt++ {
		s, err := start(ctx, opts)
		if err == nil || attempt == 3 || !strings.Contains(err.Error(), "address already in use") {
			return s, err
		}
	}
}

func start(ctx context.Context, opts Options) (_ *Stack, err error) {
	if err := os.MkdirAll(opts.DataDir, 0o755); err != nil {
		return nil, err
	}
	healthAddr := ""
	if opts.Namespace == "" {
		opts.Namespace = "default"
	}
	if opts.Cluster != nil {
		opts.TemporalAddr = opts.Cluster.FrontendAddr()
	}
	for _, addr := range []*string{&opts.TemporalAddr, &opts.SandboxAddr, &opts.SandboxStripeAddr, &opts.IntakeAddr, &opts.StripeMockAddr, &healthAddr} {
		if *addr == "" {
			if *addr, err = FreeAddr(); err != nil {
				return nil, err
			}
		}
	}
	s := &Stack{opts: opts}
	defer func() {
		if err != nil {
			s.Stop()
		}
	}()
	if err := s.StartTemporal(ctx); err != nil {
		return nil, err
	}
	s.Env = append(os.Environ(),
		"TEMPORAL_ADDRESS="+opts.TemporalAddr,
		"TEMPORAL_NAMESPACE="+opts.Namespace,
		"DATABASE_URL="+opts.DatabaseURL,
		"SIGNALBOX_CRM_BASE_URL=http://"+opts.SandboxAddr,
		"SIGNALBOX_CHAT_WEBHOOK_BASE_URL=http://"+opts.SandboxAddr+"/services",
		"SIGNALBOX_BILLING_BASE_URL=http://"+opts.SandboxStripeAddr,
		"SIGNALBOX_SANDBOX_STRIPE_ADDR="+opts.SandboxStripeAddr,
		"SIGNALBOX_SANDBOX_STRIPE_URL=http://"+opts.StripeMockAddr,
		"SIGNALBOX_SANDBOX_ADDR="+opts.SandboxAddr,
		"SIGNALBOX_INTAKE_ADDR="+opts.IntakeAddr,
		"SIGNALBOX_INTAKE_TOKENS=local="+IntakeToken,
		"SIGNALBOX_INTAKE_ROUTES=local=*", // the local stack's one source may use every route
		fmt.Sprintf("SIGNALBOX_SANDBOX_SEED=%d", opts.SandboxSeed),
		"SIGNALBOX_SANDBOX_FAULTS="+opts.SandboxFaults,
	)
	s.Env = append(s.Env, opts.Env...)
	if opts.UIPort != "" {
		s.Env = append(s.Env, "SIGNALBOX_UI_BASE_URL=http://localhost:"+opts.UIPort)
	}
	if _, err := os.Stat(opts.StripeMock); err != nil {
		return nil, fmt.Errorf("no stripe-mock at %s: run `make bin/stripe-mock` (go install github.com/stripe/stripe-mock@%s)", opts.StripeMock, StripeMockVersion)
	}
	s.StripeMock = &Process{Name: "stripe-mock", Path: opts.StripeMock, Args: []string{"-http-addr", opts.StripeMockAddr, "-https-addr", "127.0.0.1:"},
		LogPath: filepath.Join(opts.DataDir, "stripe-mock.log"), ReadyAddr: opts.StripeMockAddr}
	s.Sandbox = s.program("sandbox", nil, "", "http://"+opts.SandboxAddr+"/_sandbox/health")
	s.Worker = s.program("workers", nil, "", "http://"+healthAddr+"/healthz")
	s.Worker.Env = append(append([]string(nil), s.Env...), "SIGNALBOX_WORKER_HEALTH_ADDR="+healthAddr)
	s.Intake = s.program("starter", []string{"serve"}, "", "http://"+opts.IntakeAddr+"/healthz")
	s.Intake.Name = "intake"
	for _, p := range []*Process{s.StripeMock, s.Sandbox, s.Worker, s.Intake} {
		if err := p.Start(ctx); err != nil {
			return nil, err
		}
	}
	return s, nil
}

func (s *Stack) program(name string, args []string, readyLine, readyURL string) *Process {
	return &Process{
		Name: name, Path: filepath.Join(s.opts.BinDir, name), Args: args, Env: s.Env,
		LogPath: filepath.Join(s.opts.DataDir, name+".log"), ReadyLine: readyLine, ReadyURL: readyURL,
	}
}

// StartTemporal starts (or restarts, on the same port and file) the dev
// server; on a cluster it registers the stack's namespace and connects.
func (s *Stack) StartTemporal(ctx context.Context) error {
	if c := s.opts.Cluster; c != nil {
		if err := c.RegisterNamespace(ctx, s.opts.Namespace); err != nil {
			return err
		}
		cl, err := c.Dial(ctx, s.opts.Namespace)
		if err != nil {
			return fmt.Errorf("connect to the cluster's frontend %s: %w", c.FrontendAddr(), err)
		}
		s.Client = cl
		return nil
	}
	logFile, err := os.OpenFile(filepath.Join(s.opts.DataDir, "temporal.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logFile.Close()
	devOpts := testsuite.DevServerOptions{
		ExistingPath: s.opts.TemporalCLI,
		ClientOptions: &client.Options{
			HostPort:  s.opts.TemporalAddr,
			Namespace: "default",
			Logger:    log.NewStructuredLogger(slog.New(slog.NewTextHandler(logFile, &slog.HandlerOptions{Level: slog.LevelWarn}))),
		},
		EnableUI:  s.opts.EnableUI,
		UIPort:    s.opts.UIPort,
		LogLevel:  "warn",
		LogFormat: "json",
		Stdout:    logFile,
		Stderr:    logFile,
	}
	if s.opts.PersistTemporal {
		devOpts.DBFilename = filepath.Join(s.opts.DataDir, "temporal.db")
	}
	if s.opts.RegisterSearchAttributes {
		var updates []temporal.SearchAttributeUpdate
		for name, typ := range api.SearchAttributes() {
			switch typ {
			case enumspb.INDEXED_VALUE_TYPE_DATETIME:
				updates = append(updates, temporal.NewSearchAttributeKeyTime(name).ValueSet(time.Time{}))
			default:
				updates = append(updates, temporal.NewSearchAttributeKeyKeyword(name).ValueSet(""))
			}
		}
		devOpts.SearchAttributes = temporal.NewSearchAttributes(updates...)
	}
	if _, err := os.Stat(s.opts.TemporalCLI); err != nil {
		return fmt.Errorf("no Temporal CLI at %s: run `make bin/temporal` (go install github.com/temporalio/cli/cmd/temporal@%s)", s.opts.TemporalCLI, TemporalCLIVersion)
	}
	startCtx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	srv, err := testsuite.StartDevServer(startCtx, devOpts)
	if err != nil {
		return fmt.Errorf("start the Temporal dev server on %s: %w (see %s)", s.opts.TemporalAddr, err, logFile.Name())
	}
	s.temporal = srv
	s.Client = srv.Client()
	return nil
}

// StopTemporal stops the dev server (its SQLite file, if any, stays); a
// cluster is left running, its client closed.
func (s *Stack) StopTemporal() error {
	if s.opts.Cluster != nil && s.Client != nil {
		s.Client.Close()
		s.Client = nil
	}
	if s.temporal == nil {
		return nil
	}
	s.Client.Close()
	err := s.temporal.Stop()
	s.temporal, s.Client = nil, nil
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return nil // it exits non-zero on SIGINT
	}
	return err
}

// TemporalAddr is the frontend address of the dev server or cluster.
func (s *Stack) TemporalAddr() string { return s.opts.TemporalAddr }

// Namespace is the stack's Temporal namespace.
func (s *Stack) Namespace() string { return s.opts.Namespace }

// Cluster is the cluster the stack runs on, or nil on a dev server.
func (s *Stack) Cluster() *Cluster { return s.opts.Cluster }

// RestartTemporal restarts what serves Temporal, as a crash and a
// supervisor would: the dev server (stopped, started again on its file), or
// one of the cluster's services, killed with SIGKILL (history, then matching,
// in turn: turn counts the restarts so far).
func (s *Stack) RestartTemporal(ctx context.Context, turn int) (what string, err error) {
	if c := s.opts.Cluster; c != nil {
		name := []string{"history", "matching"}[turn%2]
		if err := c.RestartService(ctx, name); err != nil {
			return "temporal " + name, err
		}
		return "temporal " + name, c.WaitServing(ctx, s.Namespace())
	}
	if err := s.StopTemporal(); err != nil {
		return "", err
	}
	time.Sleep(time.Second)
	return "the dev server", s.StartTemporal(ctx)
}

// IntakeURL is the intake's base URL.
func (s *Stack) IntakeURL() string { return "http://" + s.opts.IntakeAddr }

// SandboxURL is the sandbox's base URL.
func (s *Stack) SandboxURL() string { return "http://" + s.opts.SandboxAddr }

// Command runs one of the stack's programs (signals, starter) to completion
// with the stack's environment, returning its stdout, stderr and exit code.
func (s *Stack) Command(ctx context.Context, stdin string, name string, args ...string) (stdout, stderr string, code int, err error) {
	cmd := exec.CommandContext(ctx, filepath.Join(s.opts.BinDir, name), args...)
	cmd.Env = s.Env
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return out.String(), errOut.String(), exit.ExitCode(), nil
	}
	return out.String(), errOut.String(), 0, err
}

// Stop stops every process, intake first, dev server last.
func (s *Stack) Stop() {
	for _, p := range []*Process{s.Intake, s.Worker, s.Sandbox, s.StripeMock} {
		if p != nil {
			_ = p.Stop(15 * time.Second)
		}
	}
	_ = s.StopTemporal()
}
