// Package metrics exports what workers and the intake measure, for
// Prometheus: the Temporal SDK's metrics (through the SDK's OpenTelemetry
// handler) and signalbox's own, all through one OpenTelemetry meter
// provider and its Prometheus exporter, served at GET /metrics.
//
// Names: an instrument keeps its name, and the exporter adds Prometheus's
// suffixes: _total to a counter, _seconds to anything measured in seconds
// (the SDK's temporal_request becomes temporal_request_total, its
// temporal_workflow_task_execution_latency becomes
// temporal_workflow_task_execution_latency_seconds_bucket/_sum/_count).
// docs/metrics.md lists every series.
//
// Labels are of low cardinality only: integrations, statuses, exception
// kinds, actions, targets and status classes, never an item's key or
// anything personal.
package metrics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.temporal.io/sdk/client"
	temporalotel "go.temporal.io/sdk/contrib/opentelemetry"

	"github.com/signalbox-dev/signalbox/config"
)

// Instrument names of signalbox's own metrics, as recorded; the exporter
// adds _total to counters and _seconds to durations.
const (
	// ItemsStarted counts runs of items that began work (Pending → Running,
	// the audit trail's "started"), by integration.
	ItemsStarted = "signalbox_items_started"
	// ItemsEnded counts items that reached a terminal status, by
	// integration and status.
	ItemsEnded = "signalbox_items_ended"
	// ExceptionsRaised counts exceptions raised, by integration, exception
	// and the status the item waits in (Blocked or Failed).
	ExceptionsRaised = "signalbox_exceptions_raised"
	// Decisions counts decisions, by integration, action, outcome (applied
	// or refused) and way (update, signal or deadline).
	Decisions = "signalbox_decisions"
	// DecisionWait is the time from an exception's raise to the decision
	// applied to it, by integration and exception (seconds).
	DecisionWait = "signalbox_decision_wait"
	// VendorRequests counts requests sent to a target, by target and class
	// (2xx, 3xx, 401, 403, 429, other 4xx, 5xx, network: no answer).
	VendorRequests = "signalbox_vendor_requests"
	// VendorRequestDuration is the time from sending a request to its
	// answer's headers, by target (seconds).
	VendorRequestDuration = "signalbox_vendor_request_duration"
	// VendorRateLimitWait is the time a request waited for its turn before
	// it was sent, by target: the target's rate (shared by every worker
	// process) and any Retry-After pause (seconds).
	VendorRateLimitWait = "signalbox_vendor_rate_limit_wait"
	// ItemsWaiting is how many items wait for a person, by integration,
	// status and exception, as visibility counted them last.
	ItemsWaiting = "signalbox_items_waiting"
	// ItemsOverSLA is how many of them have waited longer than their
	// exception's SLA.
	ItemsOverSLA = "signalbox_items_over_sla"
	// OldestWait is how long the longest-waiting of them has waited (seconds).
	OldestWait = "signalbox_oldest_wait"
	// WaitingRefreshErrors counts visibility refreshes that failed; the
	// waiting gauges keep their last values meanwhile.
	WaitingRefreshErrors = "signalbox_waiting_refresh_errors"
	// IntakeRequests counts the intake's answers, by route and code.
	IntakeRequests = "signalbox_intake_requests"
)

// Label names.
const (
	LabelIntegration = "integration"
	LabelStatus      = "status"
	LabelException   = "exception"
	LabelAction      = "action"
	LabelOutcome     = "outcome"
	LabelVia         = "via"
	LabelTarget      = "target"
	LabelClass       = "class"
	LabelRoute       = "route"
	LabelCode        = "code"
)

// LatencyBuckets are the bucket bounds (seconds) of every histogram but
// DecisionWait: requests, polls, tasks and vendor calls last milliseconds
// to minutes.
var LatencyBuckets = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600}

// DecisionBuckets are DecisionWait's bucket bounds (seconds): people decide
// in minutes to days (1m, 5m, 15m, 30m, 1h, 2h, 4h, 8h, 1d, 3d, 7d).
var DecisionBuckets = []float64{60, 300, 900, 1800, 3600, 7200, 14400, 28800, 86400, 259200, 604800}

// Exporter is one program's metrics: a meter provider whose readings the
// Prometheus exporter serves, with the Go runtime's and the process's.
type Exporter struct {
	registry *prometheus.Registry
	provider *sdkmetric.MeterProvider
	sdk      client.MetricsHandler
	meter    metric.Meter
	logger   *slog.Logger
	// logged holds the errors logged once: the SDK's handler reports one at
	// every recording of a broken instrument.
	logged sync.Map
	// The instruments signalbox records outside workflows.
	vendorRequests, intakeRequests metric.Int64Counter
	vendorDuration, vendorWait     metric.Float64Histogram
}

// New returns the exporter of a program. It logs what it cannot record,
// and never panics for it.
func New(logger *slog.Logger) (*Exporter, error) {
	if logger == nil {
		logger = slog.Default()
	}
	reg := prometheus.NewRegistry()
	if err := reg.Register(collectors.NewGoCollector()); err != nil {
		return nil, err
	}
	if err := reg.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})); err != nil {
		return nil, err
	}
	exp, err := otelprom.New(otelprom.WithRegisterer(reg), otelprom.WithoutScopeInfo(), otelprom.WithoutTargetInfo())
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	e := &Exporter{
		registry: reg,
		provider: sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp), sdkmetric.WithView(secondsBuckets)),
		logger:   logger,
	}
	e.sdk = temporalotel.NewMetricsHandler(temporalotel.MetricsHandlerOptions{
		Meter:                e.provider.Meter("temporal-sdk-go"),
		UseMonotonicCounters: true,
		OnError:              e.onError,
	})
	e.meter = e.provider.Meter("signalbox")
	e.vendorRequests, err = e.meter.Int64Counter(VendorRequests, metric.WithDescription("Requests sent to a target, by status class"))
	if err != nil {
		return nil, err
	}
	e.vendorDuration, err = e.meter.Float64Histogram(VendorRequestDuration, metric.WithUnit("s"), metric.WithDescription("Time from sending a request to its answer"))
	if err != nil {
		return nil, err
	}
	e.vendorWait, err = e.meter.Float64Histogram(VendorRateLimitWait, metric.WithUnit("s"), metric.WithDescription("Time a request waited for the target's rate or pause before it was sent"))
	if err != nil {
		return nil, err
	}
	e.intakeRequests, err = e.meter.Int64Counter(IntakeRequests, metric.WithDescription("The intake's answers, by route and code"))
	if err != nil {
		return nil, err
	}
	return e, nil
}

// secondsBuckets gives every histogram second-scale buckets: DecisionWait
// its own, every other one LatencyBuckets (the OpenTelemetry default,
// 0…10000, suits milliseconds).
func secondsBuckets(i sdkmetric.Instrument) (sdkmetric.Stream, bool) {
	if i.Kind != sdkmetric.InstrumentKindHistogram {
		return sdkmetric.Stream{}, false
	}
	bounds := LatencyBuckets
	if i.Name == DecisionWait {
		bounds = DecisionBuckets
	}
	return sdkmetric.Stream{Name: i.Name, Description: i.Description, Unit: i.Unit,
		Aggregation: sdkmetric.AggregationExplicitBucketHistogram{Boundaries: bounds}}, true
}

func (e *Exporter) onError(err error) {
	if _, seen := e.logged.LoadOrStore(err.Error(), true); !seen {
		e.logger.Warn("metrics: an instrument cannot be recorded", "error", err)
	}
}

// SDK is the handler for the Temporal client's options: the SDK's metrics,
// and what workflow code records through workflow.GetMetricsHandler.
func (e *Exporter) SDK() client.MetricsHandler { return e.sdk }

// Meter records signalbox's own metrics outside workflows.
func (e *Exporter) Meter() metric.Meter { return e.meter }

// Dial connects to Temporal as t.Dial does (waiting up to patience for the
// server, and saying what is wrong when it cannot), with a connection that
// reports the SDK's metrics here. The handler must be the connection's, not
// only the client's: the SDK records a poll's requests
// (temporal_long_request) with the handler the connection was dialled
// with. Workers built on the client report theirs, and their workflows'
// signalbox metrics, here too.
func (e *Exporter) Dial(ctx context.Context, t config.Temporal, logger *slog.Logger, patience time.Duration) (client.Client, error) {
	waited, err := t.Dial(ctx, logger, patience)
	if err != nil {
		return nil, err
	}
	defer waited.Close()
	opts, err := t.ClientOptions(logger)
	if err != nil {
		return nil, err
	}
	opts.MetricsHandler = e.sdk
	c, err := client.DialContext(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("connect to Temporal at %s (namespace %s): %w", t.Address, t.Namespace, err)
	}
	return c, nil
}

// Handler serves the exposition (text, or OpenMetrics when asked for).
func (e *Exporter) Handler() http.Handler {
	return promhttp.HandlerFor(e.registry, promhttp.HandlerOpts{
		ErrorHandling: promhttp.ContinueOnError,
		ErrorLog:      errorLog{e.logger},
	})
}

type errorLog struct{ logger *slog.Logger }

func (l errorLog) Println(v ...any) { l.logger.Warn("metrics: " + fmt.Sprint(v...)) }

// Shutdown stops the meter provider.
func (e *Exporter) Shutdown(ctx context.Context) error { return e.provider.Shutdown(ctx) }

// Serve serves mux on addr until stop is called; variables names the
// setting(s) the address comes from, for the error when it cannot listen.
func Serve(addr, variables string, mux http.Handler) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s=%s: %w", variables, addr, err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, WriteTimeout: 30 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			slog.Default().Warn("metrics server stopped", "addr", addr, "error", err)
		}
	}()
	return func() { _ = srv.Close(); <-done }, nil
}
