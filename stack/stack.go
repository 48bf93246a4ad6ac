package stack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/signalbox-dev/signalbox/api"
	"github.com/signalbox-dev/signalbox/codec"
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
	// PayloadKeys, when set, turns payload encryption on: every program
	// gets them as SIGNALBOX_PAYLOAD_KEYS and the stack's Client decodes
	// with them. Empty takes SIGNALBOX_PAYLOAD_KEYS (or the file
	// SIGNALBOX_PAYLOAD_KEYS_FILE names) from this process's environment,
	// which the programs inherit: a run with it set (make chaos) is
	// encrypted throughout, its Client included.
	PayloadKeys string
	// CodecServer runs `signals codec-server` on CodecAddr (empty picks a
	// free port) with the stack's keys, for the UI at UIPort (picked free
	// if empty), and points the dev server's UI at it (--ui-codec-endpoint).
	CodecServer bool
	CodecAddr   string
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
	// Codec is the codec server, when Options.CodecServer asked for it.
	Codec *Process
	// UI is the Temporal UI of a stack on a cluster, when Options.EnableUI
	// asked for one (the dev server serves its own).
	UI *Process
	// Env is what a signalbox program needs to reach this stack.
	Env []string
	// payloads is the codec of the stack's keys (one without keys when
	// encryption is off).
	payloads *codec.Codec
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
	addrs := []*string{&opts.TemporalAddr, &opts.SandboxAddr, &opts.SandboxStripeAddr, &opts.IntakeAddr, &opts.StripeMockAddr, &healthAddr}
	uiAddr := ""
	if opts.CodecServer || (opts.EnableUI && opts.Cluster != nil) {
		// The codec server admits the UI's origin alone, and a cluster's UI
		// is a process of the stack's: its port must be known.
		if opts.UIPort == "" {
			addrs = append(addrs, &uiAddr)
		}
	}
	if opts.CodecServer {
		addrs = append(addrs, &opts.CodecAddr)
	}
	for _, addr := range addrs {
		if *addr == "" {
			if *addr, err = FreeAddr(); err != nil {
				return nil, err
			}
		}
	}
	if uiAddr != "" {
		_, opts.UIPort, _ = strings.Cut(uiAddr, ":")
	}
	keysGiven := opts.PayloadKeys != ""
	if !keysGiven {
		if opts.PayloadKeys, err = payloadKeysFromEnv(); err != nil {
			return nil, err
		}
	}
	payloads, err := codec.Parse(opts.PayloadKeys)
	if err != nil {
		return nil, fmt.Errorf("stack: %w", err)
	}
	if opts.CodecServer && !payloads.Encrypts() {
		return nil, errors.New("stack: a codec server needs PayloadKeys (or SIGNALBOX_PAYLOAD_KEYS)")
	}
	s := &Stack{opts: opts, payloads: payloads}
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
	if keysGiven {
		// These keys, not any the environment holds (nor its _FILE).
		s.Env = append(s.Env, "SIGNALBOX_PAYLOAD_KEYS="+opts.PayloadKeys, "SIGNALBOX_PAYLOAD_KEYS_FILE=")
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
	procs := []*Process{s.StripeMock, s.Sandbox, s.Worker, s.Intake}
	if opts.CodecServer {
		s.Codec = s.program("signals", []string{"codec-server"}, "", s.CodecURL()+"/healthz")
		s.Codec.Name, s.Codec.LogPath = "codec-server", filepath.Join(opts.DataDir, "codec-server.log")
		s.Codec.Env = append(append([]string(nil), s.Env...), "SIGNALBOX_CODEC_ADDR="+opts.CodecAddr, "SIGNALBOX_CODEC_ORIGIN="+s.UIOrigin())
		procs = append(procs, s.Codec)
	}
	if opts.EnableUI && opts.Cluster != nil {
		port, _ := strconv.Atoi(opts.UIPort)
		codecEndpoint := ""
		if opts.CodecServer {
			codecEndpoint = s.CodecURL()
		}
		if s.UI, err = opts.Cluster.UIProcess(port, s.Namespace(), codecEndpoint, filepath.Join(opts.DataDir, "temporal-ui.log")); err != nil {
			return nil, err
		}
		procs = append(procs, s.UI)
	}
	for _, p := range procs {
		if err := p.Start(ctx); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// payloadKeysFromEnv is SIGNALBOX_PAYLOAD_KEYS as the programs will read it
// from the environment they inherit.
func payloadKeysFromEnv() (string, error) {
	path := os.Getenv("SIGNALBOX_PAYLOAD_KEYS_FILE")
	if path == "" {
		return os.Getenv("SIGNALBOX_PAYLOAD_KEYS"), nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("stack: SIGNALBOX_PAYLOAD_KEYS_FILE: %w", err)
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}

// clientOptions are the options of the stack's own clients: they read and
// write payloads as its programs do.
func (s *Stack) clientOptions(hostPort, namespace string, logger log.Logger) client.Options {
	return client.Options{HostPort: hostPort, Namespace: namespace, Logger: logger,
		DataConverter: s.payloads.DataConverter(), FailureConverter: s.payloads.FailureConverter()}
}

// Encrypted reports whether the stack's programs encrypt payloads.
func (s *Stack) Encrypted() bool { return s.payloads.Encrypts() }

// PayloadKeys are the stack's SIGNALBOX_PAYLOAD_KEYS (empty when encryption is off).
func (s *Stack) PayloadKeys() string { return s.opts.PayloadKeys }

// CodecURL is the codec server's base URL (when Options.CodecServer).
func (s *Stack) CodecURL() string { return "http://" + s.opts.CodecAddr }

// UIOrigin is the Temporal UI's origin, as a browser on this host sees it.
func (s *Stack) UIOrigin() string { return "http://localhost:" + s.opts.UIPort }

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
		cl, err := client.DialContext(ctx, s.clientOptions(c.FrontendAddr(), s.opts.Namespace, log.NewStructuredLogger(slog.New(slog.DiscardHandler))))
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
	clientOpts := s.clientOptions(s.opts.TemporalAddr, "default",
		log.NewStructuredLogger(slog.New(slog.NewTextHandler(logFile, &slog.HandlerOptions{Level: slog.LevelWarn}))))
	devOpts := testsuite.DevServerOptions{
		ExistingPath:  s.opts.TemporalCLI,
		ClientOptions: &clientOpts,
		EnableUI:      s.opts.EnableUI,
		UIPort:        s.opts.UIPort,
		LogLevel:      "warn",
		LogFormat:     "json",
		Stdout:        logFile,
		Stderr:        logFile,
	}
	if s.opts.PersistTemporal {
		devOpts.DBFilename = filepath.Join(s.opts.DataDir, "temporal.db")
	}
	if s.opts.EnableUI && s.opts.CodecServer {
		// The UI's pages call the codec server from the browser.
		devOpts.ExtraArgs = append(devOpts.ExtraArgs, "--ui-codec-endpoint", s.CodecURL())
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
	for _, p := range []*Process{s.UI, s.Codec, s.Intake, s.Worker, s.Sandbox, s.StripeMock} {
		if p != nil {
			_ = p.Stop(15 * time.Second)
		}
	}
	_ = s.StopTemporal()
}
