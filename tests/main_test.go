// Package tests holds signalbox's end-to-end tests: the real Temporal dev
// server, real PostgreSQL, the sandbox, and the real worker and intake
// programs, built from this checkout.
package tests

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/signalbox-dev/signalbox/stack"
	"github.com/signalbox-dev/signalbox/store/storetest"
)

// Operators is who may decide in the end-to-end stack.
const Operators = "sales=alice,bob;finance=carol;sales-ops=olga;sales-dach=dieter"

var (
	root   string // the repository
	binDir string // the programs built for this run
	shared *env   // the stack most tests share

	onCluster = flag.Bool("cluster", false, "run against a local Temporal cluster (four services on PostgreSQL; make test-cluster) instead of the dev server")
	// cluster is that cluster; each stack has a namespace of its own on it.
	cluster    *stack.Cluster
	namespaces atomic.Int64
)

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		fmt.Println("tests: end-to-end tests skipped in -short mode")
		os.Exit(0)
	}
	os.Exit(run(m))
}

func run(m *testing.M) int {
	ctx := context.Background()
	var err error
	if root, err = filepath.Abs(".."); err != nil {
		return fail(err)
	}
	tmp, err := os.MkdirTemp("", "signalbox-e2e-")
	if err != nil {
		return fail(err)
	}
	defer os.RemoveAll(tmp)
	binDir = filepath.Join(tmp, "bin")
	if err := build(binDir); err != nil {
		return fail(err)
	}
	if *onCluster {
		stop, err := startCluster(ctx, filepath.Join(tmp, "data"))
		if err != nil {
			return fail(err)
		}
		defer stop()
	}
	url, drop, err := storetest.NewDatabase(storetest.ServerURL())
	if err != nil {
		return fail(err)
	}
	defer func() {
		if err := drop(); err != nil {
			fmt.Fprintln(os.Stderr, "tests: drop database:", err)
		}
	}()
	s, err := stack.Start(ctx, options(filepath.Join(tmp, "data"), url))
	if err != nil {
		return fail(err)
	}
	shared = &env{Stack: s, dbURL: url}
	code := m.Run()
	shared.close()
	shared.Stop()
	if code == 0 {
		if err := checkLogsClean(filepath.Join(tmp, "data")); err != nil {
			fmt.Fprintln(os.Stderr, "tests:", err)
			code = 1
		}
	}
	if code != 0 {
		printLogs(filepath.Join(tmp, "data"))
	}
	return code
}

// secretsAndPersonalData are strings the tests send that signalbox's own
// programs must never log: the leads' and invoices' email domains, the
// intake's token and the Stripe key.
var secretsAndPersonalData = []string{"@example.com", "@acme.example", stack.IntakeToken, "sk_test_signalbox"}

// checkLogsClean reads the logs of signalbox's programs (not the dev
// server's, nor the emulators') after every test has run.
func checkLogsClean(dir string) error {
	for _, name := range []string{"workers.log", "starter.log"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return err
		}
		for _, s := range secretsAndPersonalData {
			if i := strings.Index(string(b), s); i >= 0 {
				start := max(0, i-200)
				return fmt.Errorf("%s logged %q: ...%s...", name, s, b[start:min(len(b), i+100)])
			}
		}
	}
	return nil
}

// options describe a stack like the shared one, logging into dataDir.
func options(dataDir, dbURL string) stack.Options {
	// Every alert is posted (no aggregation): tests that share a stack must
	// not hold back each other's alerts.
	env := []string{"SIGNALBOX_OPERATORS=" + Operators, "SIGNALBOX_LOG_LEVEL=warn", "SIGNALBOX_ALERT_INTERVAL=0s"}
	if *recordHistories {
		// Short enough that a reminder and a deadline happen while recording.
		env = append(env, "SIGNALBOX_SLAS=ConsentMissing=3s/12s", "SIGNALBOX_LEAD_ROUTES="+recordedRoutes)
	}
	opts := stack.Options{
		BinDir:      binDir,
		TemporalCLI: filepath.Join(root, "bin", "temporal"),
		StripeMock:  filepath.Join(root, "bin", "stripe-mock"),
		DataDir:     dataDir,
		DatabaseURL: dbURL,
		Env:         env,
	}
	if cluster != nil {
		opts.Cluster, opts.Namespace = cluster, fmt.Sprintf("e2e-%d", namespaces.Add(1))
	}
	return opts
}

// startCluster starts the local Temporal cluster the suite runs on, on
// databases of its own, and returns what stops it and drops them.
func startCluster(ctx context.Context, dataDir string) (stop func(), err error) {
	var names []string
	var drops []func() error
	for range 2 {
		url, drop, err := storetest.NewDatabase(storetest.ServerURL())
		if err != nil {
			return nil, err
		}
		names, drops = append(names, url[strings.LastIndex(url, "/")+1:]), append(drops, drop)
	}
	dropAll := func() {
		for _, drop := range drops {
			if err := drop(); err != nil {
				fmt.Fprintln(os.Stderr, "tests: drop a cluster database:", err)
			}
		}
	}
	c, err := stack.StartCluster(ctx, stack.ClusterOptions{BinDir: filepath.Join(root, "bin"), ConfigDir: filepath.Join(root, "deploy", "temporal"),
		DataDir: dataDir, DB: names[0], VisibilityDB: names[1]})
	if err != nil {
		dropAll()
		return nil, err
	}
	cluster = c
	return func() { c.Stop(); dropAll() }, nil
}

// build compiles the programs under test from this checkout.
func build(dir string) error {
	cmd := exec.Command("go", "build", "-o", dir+string(filepath.Separator), "./workers", "./starter", "./signals", "./sandbox")
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("build the programs: %v\n%s", err, out)
	}
	return nil
}

func fail(err error) int {
	fmt.Fprintln(os.Stderr, "tests:", err)
	return 1
}

func printLogs(dir string) {
	logs, _ := filepath.Glob(filepath.Join(dir, "*.log"))
	for _, l := range logs {
		b, _ := os.ReadFile(l)
		if len(b) > 4000 {
			b = b[len(b)-4000:]
		}
		fmt.Fprintf(os.Stderr, "----- %s (tail) -----\n%s\n", filepath.Base(l), b)
	}
}
