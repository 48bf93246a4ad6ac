package stack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/log"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/signalbox-dev/signalbox/api"
)

// TemporalServerVersion is the pinned Temporal server of the local cluster
// (`make cluster`): the version the pinned CLI's dev server embeds.
const TemporalServerVersion = "v1.29.1"

// Services are the cluster's services, in the order they start: starting
// them all at once on a fresh database fails with "failed to initialize
// current cluster metadata", and a frontend started before history and
// matching reports itself unhealthy for most of a minute.
var Services = []string{"history", "matching", "frontend", "worker"}

// ClusterOptions describe a local Temporal cluster.
type ClusterOptions struct {
	// BinDir holds temporal-server and temporal-sql-tool; ConfigDir the
	// server's config (deploy/temporal, env "cluster").
	BinDir, ConfigDir string
	// DataDir receives each service's log.
	DataDir string
	// DBHost, DBPort and DBUser reach PostgreSQL (trust auth here).
	DBHost, DBUser string
	DBPort         int
	// DB and VisibilityDB are the databases, created and migrated if need be.
	DB, VisibilityDB string
	// PortBase fixes the services' ports (base+33…base+43, as
	// deploy/temporal/cluster.yaml says); 0 picks a free range.
	PortBase int
	// Namespaces are registered once the cluster is up.
	Namespaces []string
	// MetricsPortBase fixes the services' Prometheus ports (base, base+1, …
	// in the order of Services) and their pprof ports (7936…); 0 picks free
	// ones.
	MetricsPortBase int
	// Env adds variables to every service.
	Env []string
}

// Cluster is a running local Temporal cluster: four server processes.
type Cluster struct {
	opts ClusterOptions
	// Services by name: frontend, history, matching, worker.
	Services map[string]*Process
	// MetricsAddrs are the services' Prometheus endpoints, by name.
	MetricsAddrs map[string]string
	// UI serves the Temporal UI, once StartUI ran.
	UI *Process
}

// FrontendAddr is the cluster's frontend, where clients connect.
func (c *Cluster) FrontendAddr() string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(c.opts.PortBase+33))
}

// StartCluster migrates the cluster's databases, starts its services one by
// one (each once its gRPC port answers) and registers the namespaces.
func StartCluster(ctx context.Context, opts ClusterOptions) (_ *Cluster, err error) {
	if opts.DBHost == "" {
		opts.DBHost = "127.0.0.1"
	}
	if opts.DBPort == 0 {
		opts.DBPort = 5432
	}
	if opts.DBUser == "" {
		opts.DBUser = "postgres"
	}
	if opts.DB == "" {
		opts.DB, opts.VisibilityDB = "temporal", "temporal_visibility"
	}
	for _, bin := range []string{"temporal-server", "temporal-sql-tool"} {
		if _, err := os.Stat(filepath.Join(opts.BinDir, bin)); err != nil {
			return nil, fmt.Errorf("no %s in %s: run `make cluster-tools` (go install go.temporal.io/server/cmd/...@%s)", bin, opts.BinDir, TemporalServerVersion)
		}
	}
	if err := os.MkdirAll(opts.DataDir, 0o755); err != nil {
		return nil, err
	}
	if err := opts.migrate(ctx); err != nil {
		return nil, err
	}
	if opts.PortBase == 0 {
		if opts.PortBase, err = freePortRange(); err != nil {
			return nil, err
		}
	}
	c := &Cluster{opts: opts, Services: map[string]*Process{}, MetricsAddrs: map[string]string{}}
	defer func() {
		if err != nil {
			c.Stop()
		}
	}()
	// Ready when it listens: on gRPC, or for the worker service (which
	// serves none) on its membership port.
	offsets := map[string]int{"frontend": 33, "history": 35, "matching": 37, "worker": 40}
	for _, name := range Services {
		metrics, pprof := "", ""
		if opts.MetricsPortBase > 0 {
			// Fixed, for a cluster people scrape: 9091… and 7936… in turn.
			i := slices.Index(Services, name)
			metrics, pprof = net.JoinHostPort("127.0.0.1", strconv.Itoa(opts.MetricsPortBase+i)), net.JoinHostPort("127.0.0.1", strconv.Itoa(7936+i))
		} else {
			if metrics, err = FreeAddr(); err != nil {
				return nil, err
			}
			if pprof, err = FreeAddr(); err != nil {
				return nil, err
			}
		}
		_, pprofPort, _ := net.SplitHostPort(pprof)
		c.MetricsAddrs[name] = metrics
		env := append(os.Environ(), opts.Env...)
		env = append(env, "TEMPORAL_PORT_BASE="+strconv.Itoa(opts.PortBase), "TEMPORAL_DB="+opts.DB, "TEMPORAL_VISIBILITY_DB="+opts.VisibilityDB,
			"TEMPORAL_DB_HOST="+opts.DBHost, "TEMPORAL_DB_PORT="+strconv.Itoa(opts.DBPort), "TEMPORAL_DB_USER="+opts.DBUser,
			"TEMPORAL_METRICS_ADDR="+metrics, "TEMPORAL_PPROF_PORT="+pprofPort,
			"TEMPORAL_DYNAMIC_CONFIG="+filepath.Join(opts.ConfigDir, "dynamicconfig.yaml"))
		c.Services[name] = &Process{
			Name: "temporal-" + name, Path: filepath.Join(opts.BinDir, "temporal-server"), Env: env,
			Args:      []string{"--root", "/", "--config", strings.TrimPrefix(opts.ConfigDir, "/"), "--env", "cluster", "--allow-no-auth", "start", "--service", name},
			LogPath:   filepath.Join(opts.DataDir, "temporal-"+name+".log"),
			ReadyAddr: net.JoinHostPort("127.0.0.1", strconv.Itoa(opts.PortBase+offsets[name])),
		}
	}
	for _, name := range Services {
		if err := c.startService(ctx, name); err != nil {
			return nil, err
		}
	}
	if err := c.registerNamespaces(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// startService starts a service; one that exits during its first boot
// (cluster metadata not written yet by another) is started again.
func (c *Cluster) startService(ctx context.Context, name string) error {
	var err error
	p := c.Services[name]
	for attempt := 1; attempt <= 5; attempt++ {
		if err = p.Start(ctx); err == nil {
			return nil
		}
		_ = p.Kill() // one that never got ready
		if ctx.Err() != nil {
			break
		}
		time.Sleep(time.Duration(attempt) * 500 * time.Millisecond)
	}
	return fmt.Errorf("start temporal %s: %w", name, err)
}

// RestartService kills a service with SIGKILL and starts it again, as a
// crash and a supervisor's restart would.
func (c *Cluster) RestartService(ctx context.Context, name string) error {
	p, ok := c.Services[name]
	if !ok {
		return fmt.Errorf("no service %q: the cluster runs %s", name, strings.Join(Services, ", "))
	}
	if err := p.Kill(); err != nil {
		return err
	}
	return c.startService(ctx, name)
}

// StartUI serves the Temporal UI against the cluster on port, showing
// namespace first (deploy/temporal/ui; bin/temporal-ui-server), its pages
// decoding payloads with the codec server at codecEndpoint, if not empty
// (TEMPORAL_CODEC_ENDPOINT).
func (c *Cluster) StartUI(ctx context.Context, port int, namespace, codecEndpoint string) error {
	ui, err := c.UIProcess(port, namespace, codecEndpoint, filepath.Join(c.opts.DataDir, "temporal-ui.log"))
	if err != nil {
		return err
	}
	c.UI = ui
	return c.UI.Start(ctx)
}

// UIProcess is a Temporal UI server against the cluster on port, showing
// namespace first and decoding payloads through codecEndpoint (if any),
// logging to logPath; the caller starts and stops it.
func (c *Cluster) UIProcess(port int, namespace, codecEndpoint, logPath string) (*Process, error) {
	bin := filepath.Join(c.opts.BinDir, "temporal-ui-server")
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("no temporal-ui-server in %s: run `make cluster-tools`", c.opts.BinDir)
	}
	return &Process{Name: "temporal-ui", Path: bin,
		Args: []string{"--root", "/", "--config", strings.TrimPrefix(filepath.Join(c.opts.ConfigDir, "ui"), "/"), "--env", "cluster", "start"},
		Env: append(os.Environ(), "TEMPORAL_ADDRESS="+c.FrontendAddr(), "TEMPORAL_UI_PORT="+strconv.Itoa(port), "TEMPORAL_NAMESPACE="+namespace,
			"TEMPORAL_CODEC_ENDPOINT="+codecEndpoint),
		LogPath: logPath, ReadyAddr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port))}, nil
}

// Stop stops the UI and the services.
func (c *Cluster) Stop() {
	if c.UI != nil {
		_ = c.UI.Stop(5 * time.Second)
	}
	for _, name := range Services {
		if p := c.Services[name]; p != nil {
			_ = p.Stop(15 * time.Second)
		}
	}
}

// Dial connects a client to the cluster's frontend, in namespace.
func (c *Cluster) Dial(ctx context.Context, namespace string) (client.Client, error) {
	return client.DialContext(ctx, client.Options{HostPort: c.FrontendAddr(), Namespace: namespace,
		Logger: log.NewStructuredLogger(slog.New(slog.DiscardHandler))})
}

// registerNamespaces registers the namespaces (a cluster has none but its
// system namespace) and signalbox's search attributes in each, retrying
// while the frontend warms up.
func (c *Cluster) registerNamespaces(ctx context.Context) error {
	var cl client.Client
	err := retry(ctx, func() (err error) {
		cl, err = c.Dial(ctx, "temporal-system")
		return err
	})
	if err != nil {
		return fmt.Errorf("connect to the cluster's frontend %s: %w", c.FrontendAddr(), err)
	}
	defer cl.Close()
	for _, ns := range c.opts.Namespaces {
		if err := register(ctx, cl, ns); err != nil {
			return err
		}
	}
	return nil
}

// RegisterNamespace registers namespace, if need be, with signalbox's
// search attributes.
func (c *Cluster) RegisterNamespace(ctx context.Context, namespace string) error {
	cl, err := c.Dial(ctx, "temporal-system")
	if err != nil {
		return fmt.Errorf("connect to the cluster's frontend %s: %w", c.FrontendAddr(), err)
	}
	defer cl.Close()
	return register(ctx, cl, namespace)
}

func register(ctx context.Context, cl client.Client, ns string) error {
	if err := retry(ctx, func() error { return registerNamespace(ctx, cl, ns) }); err != nil {
		return fmt.Errorf("register namespace %s: %w", ns, err)
	}
	if err := retry(ctx, func() error { return addSearchAttributes(ctx, cl.OperatorService(), ns) }); err != nil {
		return fmt.Errorf("register search attributes in %s: %w", ns, err)
	}
	// A namespace just registered takes a moment to reach every service's
	// cache (system.namespaceCacheRefreshInterval): wait until a workflow
	// can start in it.
	return waitServing(ctx, cl, ns)
}

// WaitServing returns once workflows can start in namespace on every
// history shard: after a service restarts, the shards it owned answer
// "unavailable" until they are acquired again.
func (c *Cluster) WaitServing(ctx context.Context, namespace string) error {
	cl, err := c.Dial(ctx, namespace)
	if err != nil {
		return fmt.Errorf("connect to the cluster's frontend %s: %w", c.FrontendAddr(), err)
	}
	defer cl.Close()
	return waitServing(ctx, cl, namespace)
}

// probes is how many workflow IDs waitServing starts: the server places an
// ID on a shard by hash, so 32 IDs miss one of cluster.yaml's 4 shards with
// a probability of 4·(3/4)^32, about 0.04%.
const probes = 32

func waitServing(ctx context.Context, cl client.Client, ns string) error {
	probe, err := dialNamespace(ctx, cl, ns)
	if err != nil {
		return err
	}
	defer probe.Close()
	for i := range probes {
		err := retry(ctx, func() error {
			run, err := probe.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: fmt.Sprintf("namespace-ready-probe-%d", i), TaskQueue: "namespace-ready-probe",
				WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_TERMINATE_EXISTING}, "NamespaceReadyProbe")
			if err != nil {
				return err
			}
			return probe.TerminateWorkflow(ctx, run.GetID(), run.GetRunID(), "the namespace is ready")
		})
		if err != nil {
			return fmt.Errorf("namespace %s does not serve workflows: %w", ns, err)
		}
	}
	return nil
}

// dialNamespace is a client of ns on the connection of cl.
func dialNamespace(ctx context.Context, cl client.Client, ns string) (client.Client, error) {
	return client.NewClientFromExisting(cl, client.Options{Namespace: ns, Logger: log.NewStructuredLogger(slog.New(slog.DiscardHandler))})
}

func registerNamespace(ctx context.Context, cl client.Client, ns string) error {
	_, err := cl.WorkflowService().RegisterNamespace(ctx, &workflowservice.RegisterNamespaceRequest{
		Namespace: ns, WorkflowExecutionRetentionPeriod: durationpb.New(72 * time.Hour)})
	var exists *serviceerror.NamespaceAlreadyExists
	if errors.As(err, &exists) {
		return nil
	}
	return err
}

func addSearchAttributes(ctx context.Context, ops operatorservice.OperatorServiceClient, ns string) error {
	have, err := ops.ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: ns})
	if err != nil {
		return err
	}
	missing := map[string]enumspb.IndexedValueType{}
	for name, typ := range api.SearchAttributes() {
		if _, ok := have.GetCustomAttributes()[name]; !ok {
			missing[name] = typ
		}
	}
	if len(missing) == 0 {
		return nil
	}
	_, err = ops.AddSearchAttributes(ctx, &operatorservice.AddSearchAttributesRequest{Namespace: ns, SearchAttributes: missing})
	return err
}

// retry calls fn until it succeeds, for up to a minute.
func retry(ctx context.Context, fn func() error) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for {
		err := fn()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// migrate creates the databases if need be and brings their schemas up to
// date with the schemas the SQL tool carries.
func (o ClusterOptions) migrate(ctx context.Context) error {
	for db, schema := range map[string]string{o.DB: "postgresql/v12/temporal", o.VisibilityDB: "postgresql/v12/visibility"} {
		base := []string{"--plugin", "postgres12", "--ep", o.DBHost, "--port", strconv.Itoa(o.DBPort), "--user", o.DBUser, "--db", db}
		steps := [][]string{
			append(append([]string{}, base...), "create-database"),
			append(append([]string{}, base...), "setup-schema", "-v", "0.0"),
			append(append([]string{}, base...), "update-schema", "--schema-name", schema),
		}
		for i, args := range steps {
			out, err := exec.CommandContext(ctx, filepath.Join(o.BinDir, "temporal-sql-tool"), args...).CombinedOutput()
			if err != nil && !(i < 2 && strings.Contains(string(out), "already exists")) {
				return fmt.Errorf("temporal-sql-tool %s: %w\n%s", strings.Join(args[len(base):], " "), err, out)
			}
		}
	}
	return nil
}

// freePortRange finds a base whose eleven service ports are all free. The
// ports stay below 32768: the cluster records membership ports in a smallint.
func freePortRange() (int, error) {
	for range 50 {
		base := 20000 + rand.IntN(12000)
		free := true
		for off := 33; off <= 43 && free; off++ {
			l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(base+off)))
			if err != nil {
				free = false
				continue
			}
			l.Close()
		}
		if free {
			return base, nil
		}
	}
	return 0, errors.New("no free range of ports for the cluster's services")
}
