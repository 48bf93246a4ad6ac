// Command devstack runs the whole local stack in the foreground — Temporal dev
// server and UI, sandbox, worker and intake — seeds demo items, and stops
// everything cleanly on Ctrl-C. `make run` builds the programs and runs it.
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	_ "embed"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/signal"
	"os/user"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/signalbox-dev/signalbox/api"
	"github.com/signalbox-dev/signalbox/codec"
	"github.com/signalbox-dev/signalbox/config"
	"github.com/signalbox-dev/signalbox/stack"
	"github.com/signalbox-dev/signalbox/store"
)

//go:embed demo/leads.json
var demoLeads []byte

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "devstack:", err)
		os.Exit(1)
	}
}

func run() error {
	seed := flag.Bool("seed", true, "post the demo leads once the stack is up")
	binDir := flag.String("bin", "bin", "where the built programs and the temporal CLI are")
	dataDir := flag.String("data", ".data", "where the dev server's SQLite file and the logs go")
	onCluster := flag.Bool("cluster", false, "run on a local Temporal cluster (four services on PostgreSQL, make cluster-tools) instead of the dev server")
	clusterOnly := flag.Bool("cluster-only", false, "run the local Temporal cluster and its UI only (make cluster)")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	busy := []string{"127.0.0.1:7233", "127.0.0.1:8233", "127.0.0.1:8080", "127.0.0.1:8091", "127.0.0.1:8092", "127.0.0.1:12111", codecAddr, consoleAddr}
	if *onCluster || *clusterOnly {
		busy = append(busy[2:], "127.0.0.1:7333", "127.0.0.1:7335", "127.0.0.1:7337", "127.0.0.1:7340", "127.0.0.1:8333")
	}
	if *clusterOnly {
		busy = busy[len(busy)-5:]
	}
	for _, addr := range busy {
		if err := checkFree(addr); err != nil {
			return err
		}
	}
	var cluster *stack.Cluster
	if *onCluster || *clusterOnly {
		fmt.Printf("starting the local Temporal cluster (logs in %s/) ...\n", filepath.Join(*dataDir, "logs"))
		c, err := startCluster(ctx, *binDir, filepath.Join(*dataDir, "logs"), !*clusterOnly)
		if err != nil {
			return err
		}
		defer func() {
			fmt.Println("stopping the Temporal cluster ...")
			c.Stop()
		}()
		cluster = c
		if *clusterOnly {
			fmt.Printf(`
the local Temporal cluster is running. Press Ctrl-C to stop it.

  frontend     %s   (namespace default; TEMPORAL_ADDRESS=%[1]s)
  Temporal UI  http://localhost:8333
  services     history, matching, frontend, worker: logs in %s/temporal-*.log
  metrics      %s
`, c.FrontendAddr(), filepath.Join(*dataDir, "logs"), metricsList(c))
			<-ctx.Done()
			return nil
		}
	}
	operator := "you"
	if u, err := user.Current(); err == nil && u.Username != "" {
		operator = u.Username
	}
	logs := filepath.Join(*dataDir, "logs")
	dbURL := envOr("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/signalbox")
	fmt.Printf("starting the local stack (logs in %s/) ...\n", logs)
	temporalAddr, uiPort := "127.0.0.1:7233", "8233"
	if cluster != nil {
		temporalAddr, uiPort = cluster.FrontendAddr(), "8333"
	}
	keys, keysHint, keysExport, err := payloadKeys(*dataDir)
	if err != nil {
		return err
	}
	tokens, tokensPath, err := consoleTokens(*dataDir)
	if err != nil {
		return err
	}
	s, err := stack.Start(ctx, stack.Options{
		BinDir:                   *binDir,
		TemporalCLI:              filepath.Join(*binDir, "temporal"),
		StripeMock:               filepath.Join(*binDir, "stripe-mock"),
		DataDir:                  logs,
		TemporalAddr:             temporalAddr,
		UIPort:                   uiPort,
		EnableUI:                 cluster == nil,
		PersistTemporal:          true,
		RegisterSearchAttributes: true,
		Cluster:                  cluster,
		DatabaseURL:              dbURL,
		// Payloads are encrypted, as in production; the codec server shows
		// them to the UI and the CLI.
		PayloadKeys:       keys,
		CodecServer:       true,
		CodecAddr:         codecAddr,
		SandboxAddr:       "127.0.0.1:8091",
		SandboxStripeAddr: "127.0.0.1:8092",
		StripeMockAddr:    "127.0.0.1:12111",
		IntakeAddr:        "127.0.0.1:8080",
		SandboxSeed:       1,
		Env: []string{
			// The demo operators, and you, may decide every team's
			// exceptions; the console runs with the same.
			"SIGNALBOX_OPERATORS=" + operatorsSetting(operator),
			// German-speaking leads to sales-dach, large companies to
			// sales-enterprise, the rest to sales; demo-niklaus is both.
			"SIGNALBOX_LEAD_ROUTES=sales-dach=country:DE|AT|CH;sales-enterprise=size>=1000;sales=otherwise",
			// Stripe's webhooks (POST /v1/webhooks/stripe) are signed with this.
			"SIGNALBOX_STRIPE_WEBHOOK_SECRET=" + localStripeWebhookSecret,
			// Worker Versioning, as in production (README, "Deploying a new version").
			"SIGNALBOX_DEPLOYMENT_NAME=" + localDeployment, "SIGNALBOX_BUILD_ID=" + localBuild,
		},
	})
	if err != nil {
		return err
	}
	var console *stack.Process
	defer func() {
		fmt.Println("\nstopping: console, intake, worker, sandbox, Temporal ...")
		if console != nil {
			_ = console.Stop(15 * time.Second)
		}
		s.Stop()
		fmt.Println("stopped.")
	}()
	if err := makeCurrent(ctx, s.Client, localDeployment, localBuild); err != nil {
		return err
	}
	// The operator console, as the stack starts its programs: the stack's
	// settings (SIGNALBOX_OPERATORS, Temporal, PostgreSQL, the payload keys)
	// and the demo operators' sign-in tokens, not any of your environment.
	console = &stack.Process{Name: "console", Path: filepath.Join(*binDir, "signals"), Args: []string{"serve"},
		Env: append(append([]string(nil), s.Env...), "SIGNALBOX_CONSOLE_ADDR="+consoleAddr,
			"SIGNALBOX_CONSOLE_TOKENS="+tokens.setting(), "SIGNALBOX_CONSOLE_TOKENS_FILE=", "SIGNALBOX_CONSOLE_TRUSTED_PROXIES="),
		LogPath: filepath.Join(logs, "console.log"), ReadyURL: "http://" + consoleAddr + "/healthz"}
	if err := console.Start(ctx); err != nil {
		return err
	}
	if *seed {
		if err := seedLeads(ctx, s.IntakeURL()); err != nil {
			return err
		}
		if err := seedInvoices(ctx, dbURL, s.IntakeURL()); err != nil {
			return err
		}
		if err := seedCustomers(ctx, dbURL, s.IntakeURL(), s.SandboxURL()); err != nil {
			return err
		}
	}
	fmt.Printf(`
signalbox is running. Press Ctrl-C to stop everything.

  Temporal UI  http://localhost:%s  (add the IntegrationStatus column; filter with IntegrationStatus="Blocked")
  codec server http://%s  decodes the encrypted payloads for the UI (pointed at it) and the temporal CLI
  console      http://%s  the operator console (docs/console.md); sign in as a demo operator with their token:
%s
  payloads     %s
  intake       http://127.0.0.1:8080  POST /v1/leads, POST /v1/invoices/{id}/sync, POST /v1/customers/{id}/sync,
                                      GET /v1/items/{id}
               with Authorization: Bearer %s
                                      POST /v1/webhooks/stripe, signed by Stripe-Signature
  sandbox      http://127.0.0.1:8091  GET /_sandbox/contacts, /_sandbox/companies, /_sandbox/messages, /_sandbox/requests
  Stripe       http://127.0.0.1:8092  the sandbox's pass-through to stripe-mock (127.0.0.1:12111)
  logs         %s/

Try, in another shell:%s
  %s
  ./bin/signals list
  ./bin/signals list --status Blocked
  ./bin/signals show lead-to-crm:demo-grace
  ./bin/signals approve lead-to-crm:demo-grace --reason "consent given on the phone, call #42"
  ./bin/signals approve lead-to-crm:demo-niklaus --choice sales-dach --reason "speaks German; DACH owns ETH"
  ./bin/signals approve invoice-to-billing:INV-DEMO-2 --reason "annual licence, contract signed"
  ./bin/signals amend invoice-to-billing:INV-DEMO-4 --set dueDate=%s --reason "customer agreed"
  ./bin/signals approve customer-sync:CUST-DEMO-2 --choice crm --reason "the group renamed itself"
  ./bin/signals schedule customer-sync --trigger      (polls both sides every SIGNALBOX_CUSTOMER_SYNC_EVERY)
  curl -X POST http://127.0.0.1:8091/_sandbox/companies/<id>/edit -d '{"properties":{"industry":"RETAIL"}}'
                                                      (edit a company as a sales rep; the next poll syncs it)
  ./bin/temporal workflow list --query "IntegrationStatus='Synced'"
  ./bin/temporal workflow show -w lead-to-crm:demo-grace --detailed                                   (ciphertext)
  ./bin/temporal workflow show -w lead-to-crm:demo-grace --detailed --codec-endpoint http://%s   (the lead, decoded)

Explain why records differ (nightly at SIGNALBOX_RECONCILE_AT; now, after editing something in the sandbox):
  curl -X POST http://127.0.0.1:8091/_sandbox/contacts/<id>/edit -d '{"properties":{"firstname":"Adam"}}'
  ./bin/signals reconcile lead-to-crm --now           (the report; the edit goes back through the lead's sync)
  ./bin/signals reconcile invoice-to-billing --now    (payment status and totals against Stripe)
  ./bin/signals reconcile show -o json

Stripe sends no webhooks to a local stack; sign one as Stripe would and post it (INV-DEMO-1 becomes paid):
  SIGNALBOX_STRIPE_WEBHOOK_SECRET=%s ./bin/starter stripe-event --type invoice.paid --invoice %s --invoice-id INV-DEMO-1
                                                      (--curl prints the curl command instead; its signature is valid for 5 minutes)
`, uiPort, codecAddr, consoleAddr, tokens.banner(tokensPath), keysHint, stack.IntakeToken, logs, shellHint(temporalAddr), keysExport, time.Now().AddDate(0, 1, 0).Format(time.DateOnly), codecAddr, localStripeWebhookSecret, demoStripeInvoice(ctx, dbURL))
	<-ctx.Done()
	return nil
}

// seedLeads posts the demo leads through the intake, as a web form would.
func seedLeads(ctx context.Context, intakeURL string) error {
	var leads []json.RawMessage
	if err := json.Unmarshal(demoLeads, &leads); err != nil {
		return fmt.Errorf("demo leads: %w", err)
	}
	fmt.Printf("seeding %d demo leads:\n", len(leads))
	for _, l := range leads {
		if err := seedItem(ctx, intakeURL, "/v1/leads", l); err != nil {
			return err
		}
	}
	return nil
}

// seedItem posts one demo item to the intake, as its source would, and
// reports how it went.
func seedItem(ctx context.Context, intakeURL, path string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, intakeURL+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+stack.IntakeToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	var answer struct {
		WorkflowID string          `json:"workflowId"`
		Error      string          `json:"error"`
		Fields     api.FieldErrors `json:"fields"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&answer)
	resp.Body.Close()
	report(ctx, intakeURL, resp.StatusCode, answer.WorkflowID, answer.Error, answer.Fields)
	return nil
}

// report prints how a demo start went, waiting for the item to settle so that
// each demo item finds what the previous ones made.
func report(ctx context.Context, intakeURL string, status int, workflowID, problem string, fields api.FieldErrors) {
	if status == http.StatusAccepted {
		fmt.Printf("  %-34s %s\n", workflowID, settle(ctx, intakeURL, workflowID))
		return
	}
	msg := problem
	if len(fields) > 0 {
		msg += " (" + fields.Error() + ")"
	}
	fmt.Printf("  %-34s refused %d: %s\n", "(invalid demo item)", status, msg)
}

// seedInvoices stores the demo invoices in PostgreSQL, as the billing system
// would, and asks the intake to bill each.
func seedInvoices(ctx context.Context, dbURL, intakeURL string) error {
	pool, err := store.Open(ctx, dbURL)
	if err != nil {
		return err
	}
	defer pool.Close()
	st := store.New(pool)
	fmt.Printf("seeding %d demo invoices:\n", len(demoInvoices()))
	for _, inv := range demoInvoices() {
		if err := st.InsertInvoice(ctx, inv); err != nil {
			return err
		}
		if err := seedItem(ctx, intakeURL, "/v1/invoices/"+inv.ID+"/sync", []byte("{}")); err != nil {
			return err
		}
	}
	return nil
}

// localStripeWebhookSecret signs the Stripe webhooks of the local stack
// (starter stripe-event). It guards a local stack only; never use it elsewhere.
const localStripeWebhookSecret = "whsec_local_stack_not_a_secret"

// demoStripeInvoice is the Stripe invoice INV-DEMO-1 was billed as, or a
// placeholder while it is not billed.
func demoStripeInvoice(ctx context.Context, dbURL string) string {
	pool, err := store.Connect(ctx, dbURL)
	if err != nil {
		return "<in_… of INV-DEMO-1: not billed yet>"
	}
	defer pool.Close()
	inv, err := store.New(pool).GetInvoice(ctx, "INV-DEMO-1")
	if err != nil || inv.StripeInvoiceID == "" {
		return "<in_… of INV-DEMO-1: not billed yet; see ./bin/signals show invoice-to-billing:INV-DEMO-1>"
	}
	return inv.StripeInvoiceID
}

// seedCustomers stores the demo customers, syncs each to a CRM company, then
// edits one company's name as a sales rep would and syncs again: the name
// is finance's (rule ask), so that item waits with a Conflict.
func seedCustomers(ctx context.Context, dbURL, intakeURL, sandboxURL string) error {
	pool, err := store.Open(ctx, dbURL)
	if err != nil {
		return err
	}
	defer pool.Close()
	st := store.New(pool)
	customers := []store.Customer{
		{ID: "CUST-DEMO-1", LegalName: "Acme GmbH", Domain: "acme.example", BillingEmail: "ap@acme.example", PaymentTerms: "net30",
			CreditLimit: 50000, Phone: "+49 30 1234567", AddressLine1: "Hauptstr. 1", City: "Berlin", PostalCode: "10115", Country: "DE"},
		{ID: "CUST-DEMO-2", LegalName: "Globex Corporation", Domain: "globex.example", BillingEmail: "billing@globex.example",
			PaymentTerms: "net45", CreditLimit: 250000, City: "Springfield", Country: "US"},
	}
	// The sandbox's CRM starts empty on every run; links an earlier run made
	// to it point nowhere (against a real CRM that would be ArchivedInCRM).
	if _, err := pool.Exec(ctx, `DELETE FROM external_links WHERE integration = $1`, api.IntegrationCustomerSync); err != nil {
		return fmt.Errorf("seed: forget the demo customers' links of an earlier run: %w", err)
	}
	fmt.Printf("seeding %d demo customers:\n", len(customers))
	for _, c := range customers {
		// A stack started again keeps its database: the demo customers stay.
		if _, err := st.InsertCustomer(ctx, c); err != nil && !errors.Is(err, store.ErrExists) {
			return err
		}
		if err := seedItem(ctx, intakeURL, "/v1/customers/"+c.ID+"/sync", []byte("{}")); err != nil {
			return err
		}
	}
	var all struct {
		Companies []struct {
			ID         string            `json:"id"`
			Properties map[string]string `json:"properties"`
		} `json:"companies"`
	}
	resp, err := http.Get(sandboxURL + "/_sandbox/companies")
	if err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	err = json.NewDecoder(resp.Body).Decode(&all)
	resp.Body.Close()
	if err != nil {
		return fmt.Errorf("seed: read the sandbox's companies: %w", err)
	}
	for _, co := range all.Companies {
		if co.Properties["signalbox_customer_id"] == "CUST-DEMO-2" {
			edit := []byte(`{"properties":{"name":"Globex Group"}}`)
			resp, err := http.Post(sandboxURL+"/_sandbox/companies/"+co.ID+"/edit", "application/json", bytes.NewReader(edit))
			if err != nil {
				return fmt.Errorf("seed: %w", err)
			}
			resp.Body.Close()
			return seedItem(ctx, intakeURL, "/v1/customers/CUST-DEMO-2/sync", []byte("{}"))
		}
	}
	fmt.Println("  (CUST-DEMO-2 has no CRM company: its item from an earlier run still waits for a decision)")
	return nil
}

// demoInvoices: one billed at once, one above the approval threshold, one
// invalid, and one Stripe refuses because its due date has passed.
func demoInvoices() []store.Invoice {
	due := time.Now().UTC().AddDate(0, 0, 30).Truncate(24 * time.Hour)
	inv := func(id, customer, currency string, due time.Time, lines ...store.InvoiceLine) store.Invoice {
		return store.Invoice{ID: id, CustomerID: customer, CustomerName: customer + " Ltd", CustomerEmail: "ap@" + strings.ToLower(customer) + ".example",
			Currency: currency, DueDate: due, Status: store.InvoiceReady, Lines: lines}
	}
	return []store.Invoice{
		inv("INV-DEMO-1", "Acme", "eur", due,
			store.InvoiceLine{LineNo: 1, Description: "Consulting, November", Quantity: 12, UnitAmount: 15000},
			store.InvoiceLine{LineNo: 2, Description: "Travel", Quantity: 1, UnitAmount: 42000}),
		inv("INV-DEMO-2", "Globex", "usd", due,
			store.InvoiceLine{LineNo: 1, Description: "Annual licence", Quantity: 1, UnitAmount: 2_400_000}),
		inv("INV-DEMO-3", "Initech", "zzz", due),
		inv("INV-DEMO-4", "Umbrella", "gbp", due.AddDate(0, -2, 0),
			store.InvoiceLine{LineNo: 1, Description: "Support plan", Quantity: 3, UnitAmount: 9900}),
	}
}

// settle waits briefly for an item to leave Pending and Running.
func settle(ctx context.Context, intakeURL, id string) api.Status {
	var state api.ItemState
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, intakeURL+"/v1/items/"+id, nil)
		if err != nil {
			break
		}
		req.Header.Set("Authorization", "Bearer "+stack.IntakeToken)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			_ = json.NewDecoder(resp.Body).Decode(&state)
			resp.Body.Close()
			if state.Status != "" && state.Status != api.StatusPending && state.Status != api.StatusRunning {
				break
			}
		}
		select {
		case <-ctx.Done():
			return state.Status
		case <-time.After(100 * time.Millisecond):
		}
	}
	if state.Exception != nil {
		return state.Status + " (" + api.Status(state.Exception.Kind) + ")"
	}
	return state.Status
}

func checkFree(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		var opErr *net.OpError
		if errors.As(err, &opErr) {
			return fmt.Errorf("%s is in use: is another `make run` (or a Temporal server) running? Stop it first", addr)
		}
		return err
	}
	ln.Close()
	return nil
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// startCluster starts the local Temporal cluster on its fixed ports (frontend
// 127.0.0.1:7333, UI 8333, metrics 9091–9094), on the databases temporal and
// temporal_visibility, which it creates or migrates.
func startCluster(ctx context.Context, binDir, logs string, withCodec bool) (*stack.Cluster, error) {
	configDir, err := filepath.Abs(filepath.Join("deploy", "temporal"))
	if err != nil {
		return nil, err
	}
	c, err := stack.StartCluster(ctx, stack.ClusterOptions{BinDir: binDir, ConfigDir: configDir, DataDir: logs,
		DBHost: envOr("TEMPORAL_DB_HOST", "127.0.0.1"), PortBase: 7300, MetricsPortBase: 9091, Namespaces: []string{"default"}})
	if err != nil {
		return nil, err
	}
	codecEndpoint := ""
	if withCodec {
		codecEndpoint = "http://" + codecAddr
	}
	if err := c.StartUI(ctx, 8333, "default", codecEndpoint); err != nil {
		c.Stop()
		return nil, err
	}
	return c, nil
}

// metricsList names each service's Prometheus endpoint.
func metricsList(c *stack.Cluster) string {
	var parts []string
	for _, name := range stack.Services {
		parts = append(parts, name+" http://"+c.MetricsAddrs[name]+"/metrics")
	}
	return strings.Join(parts, "\n               ")
}

// The local stack's Worker Deployment, and this build's ID in it.
var (
	localDeployment = "signalbox"
	localBuild      = config.Worker{}.Build()
)

// makeCurrent makes build the current version of deployment, once the
// server has seen its workers poll: new items start on it.
func makeCurrent(ctx context.Context, c client.Client, deployment, build string) error {
	h := c.WorkerDeploymentClient().GetHandle(deployment)
	deadline := time.Now().Add(time.Minute)
	for {
		_, err := h.SetCurrentVersion(ctx, client.WorkerDeploymentSetCurrentVersionOptions{BuildID: build})
		if err == nil {
			fmt.Printf("worker deployment %s: version %s is current\n", deployment, build)
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("make version %s of worker deployment %s current: %w", build, deployment, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// codecAddr is where the local stack's codec server listens (the default
// of SIGNALBOX_CODEC_ADDR).
const codecAddr = "127.0.0.1:8089"

// payloadKeys are the local stack's SIGNALBOX_PAYLOAD_KEYS: yours, when your
// environment sets them, else a local key made on the first run and kept in
// dataDir beside the dev server's database, whose payloads it encrypted. It
// returns the keys, what to print about them, and the line another shell
// needs to read the items.
func payloadKeys(dataDir string) (keys, hint, export string, err error) {
	if os.Getenv("SIGNALBOX_PAYLOAD_KEYS") != "" || os.Getenv("SIGNALBOX_PAYLOAD_KEYS_FILE") != "" {
		// The stack takes them from the environment, as its programs do.
		return "", "encrypted with SIGNALBOX_PAYLOAD_KEYS from your environment",
			"(SIGNALBOX_PAYLOAD_KEYS, or its _FILE, is set in your environment: signals and starter read payloads with it)", nil
	}
	path, b, err := localSecret(dataDir, "payload-keys", func() []byte {
		return []byte("local1=" + base64.StdEncoding.EncodeToString(randomBytes(32)) + "\n")
	})
	if err == nil {
		_, err = codec.Parse(string(b))
	}
	if err != nil {
		return "", "", "", fmt.Errorf("the local payload key %s: %w (deleting it makes a new one, and leaves what it encrypted unreadable: delete %s with it)", path, err, dataDir)
	}
	return strings.TrimSpace(string(b)), "encrypted (AES-256-GCM) with the local key in " + path + " (docs/encryption.md)",
		"export SIGNALBOX_PAYLOAD_KEYS_FILE=" + path + "   (signals and starter read the items' encrypted payloads with it)", nil
}

// localSecret is the content of the file name in dataDir: made by generate on
// the first run and kept there, readable by you alone (0600), for the runs
// after. It returns the file's absolute path too, for messages about it.
func localSecret(dataDir, name string, generate func() []byte) (path string, content []byte, err error) {
	path, err = filepath.Abs(filepath.Join(dataDir, name))
	if err != nil {
		return "", nil, err
	}
	content, err = os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		content = generate()
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return path, nil, err
		}
		err = os.WriteFile(path, content, 0o600)
	}
	return path, content, err
}

// randomBytes are n bytes from crypto/rand.
func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return b
}

// consoleAddr is where the local stack's console listens (the default of
// SIGNALBOX_CONSOLE_ADDR).
const consoleAddr = "127.0.0.1:8088"

// demoTeams are the local stack's teams and their demo operators.
var demoTeams = []struct {
	team      string
	operators []string
}{
	{"sales", []string{"alice", "bob"}},
	{"sales-dach", []string{"dieter"}},
	{"sales-enterprise", []string{"erin"}},
	{"sales-ops", []string{"olga"}},
	{"finance", []string{"carol"}},
}

// operatorsSetting is the local stack's SIGNALBOX_OPERATORS: each team's
// demo operators, and you (you) in every team.
func operatorsSetting(you string) string {
	var teams []string
	for _, t := range demoTeams {
		teams = append(teams, t.team+"="+strings.Join(append(slices.Clone(t.operators), you), ","))
	}
	return strings.Join(teams, ";")
}

// demoToken is one demo operator's console sign-in token.
type demoToken struct{ operator, team, token string }

// demoTokens are the demo operators' tokens, in demoTeams' order.
type demoTokens []demoToken

// consoleTokens are the console's sign-in tokens of the demo operators:
// random (24 bytes from crypto/rand, in hex), one each, made on the first
// run and kept in dataDir/console-tokens (0600) as SIGNALBOX_CONSOLE_TOKENS
// holds them, so that a console started by hand can read them with
// SIGNALBOX_CONSOLE_TOKENS_FILE. It returns them and the file's path.
func consoleTokens(dataDir string) (demoTokens, string, error) {
	path, b, err := localSecret(dataDir, "console-tokens", func() []byte {
		var entries []string
		for _, t := range demoTeams {
			for _, op := range t.operators {
				entries = append(entries, op+"="+hex.EncodeToString(randomBytes(24)))
			}
		}
		return []byte(strings.Join(entries, ";") + "\n")
	})
	if err != nil {
		return nil, path, fmt.Errorf("the console's sign-in tokens %s: %w", path, err)
	}
	setting := strings.TrimSpace(string(b))
	var valid config.ConsoleTokens
	if err := valid.Decode(setting); err != nil {
		return nil, path, fmt.Errorf("the console's sign-in tokens %s: %w (delete it: the next run makes new ones)", path, err)
	}
	given := map[string]string{}
	for _, entry := range strings.Split(setting, ";") {
		if op, token, ok := strings.Cut(entry, "="); ok {
			given[strings.TrimSpace(op)] = strings.TrimSpace(token)
		}
	}
	var tokens demoTokens
	for _, t := range demoTeams {
		for _, op := range t.operators {
			if given[op] == "" {
				return nil, path, fmt.Errorf("the console's sign-in tokens %s: no token of %s (delete it: the next run makes new ones)", path, op)
			}
			tokens = append(tokens, demoToken{operator: op, team: t.team, token: given[op]})
		}
	}
	return tokens, path, nil
}

// setting is the tokens as SIGNALBOX_CONSOLE_TOKENS.
func (ts demoTokens) setting() string {
	entries := make([]string, len(ts))
	for i, t := range ts {
		entries[i] = t.operator + "=" + t.token
	}
	return strings.Join(entries, ";")
}

// banner lists the tokens for the banner devstack prints, a line each.
func (ts demoTokens) banner(path string) string {
	lines := make([]string, 0, len(ts)+1)
	for _, t := range ts {
		lines = append(lines, fmt.Sprintf("                 %-7s %s  (%s)", t.operator, t.token, t.team))
	}
	lines = append(lines, "               (kept in "+path+"; delete it for new ones)")
	return strings.Join(lines, "\n")
}

// shellHint is what another shell needs to reach Temporal, when it is not
// the programs' default address.
func shellHint(temporalAddr string) string {
	if temporalAddr == "127.0.0.1:7233" {
		return ""
	}
	return "\n  export TEMPORAL_ADDRESS=" + temporalAddr + "   (the cluster's frontend: signals, starter and temporal use it)"
}
