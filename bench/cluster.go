package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/signalbox-dev/signalbox/stack"
	"github.com/signalbox-dev/signalbox/store/storetest"
)

const clusterHeading = "## Scale-out on a Temporal cluster"

// clusterResult is the scale-out section: the lead path on the local
// cluster with 1, 2 and 4 worker processes, beside the bare baseline on the
// same cluster and the lead path on the dev server.
type clusterResult struct {
	Started  time.Time
	Duration time.Duration
	Items    int
	// Baseline is the bare workflow on the cluster; DevServer signalbox on
	// the dev server with one worker; Scale signalbox on the cluster.
	Baseline, DevServer pathResult
	Scale               []scaleRun
	// BaselineRounds and SignalboxRounds are the throughputs (items/s) of
	// the alternating comparison rounds.
	BaselineRounds, SignalboxRounds []float64
	// Rate is the per-target limit across four workers.
	Rate rateRun
}

// scaleRun is one worker count on the cluster, and the CPU each process
// used while it ran (seconds of CPU per second of wall time).
type scaleRun struct {
	Workers int
	Path    pathResult
	CPU     map[string]float64
}

// rateRun is leads through four workers at SIGNALBOX_CRM_RATE=Rate.
type rateRun struct {
	Workers, Leads int
	Rate           float64
	Requests       int
	// MaxInSecond is the most CRM requests sent within any 1 s (send times).
	MaxInSecond int
}

// compareRounds alternate the baseline and signalbox on the cluster.
const compareRounds = 3

// median of xs (0 for none).
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	slices.Sort(s)
	return s[len(s)/2]
}

// benchCluster runs the scale-out section on a cluster of its own.
func benchCluster(ctx context.Context, o options) (res clusterResult, err error) {
	res = clusterResult{Started: time.Now(), Items: o.items}
	defer func() { res.Duration = time.Since(res.Started) }()
	dataDir, err := os.MkdirTemp("", "signalbox-bench-cluster-")
	if err != nil {
		return res, err
	}
	defer keepLogsOnFailure(dataDir, &err)
	var names []string
	for range 3 {
		url, drop, err := storetest.NewDatabase(storetest.ServerURL())
		if err != nil {
			return res, err
		}
		defer func() { _ = drop() }()
		names = append(names, url[strings.LastIndex(url, "/")+1:])
	}
	configDir, err := filepath.Abs(filepath.Join("deploy", "temporal"))
	if err != nil {
		return res, err
	}
	progress("scale-out: starting a Temporal cluster (history, matching, frontend, worker) on PostgreSQL")
	cl, err := stack.StartCluster(ctx, stack.ClusterOptions{BinDir: o.binDir, ConfigDir: configDir, DataDir: dataDir, DB: names[0], VisibilityDB: names[1]})
	if err != nil {
		return res, err
	}
	defer cl.Stop()
	env := []string{"SIGNALBOX_OPERATORS=sales=alice", "SIGNALBOX_LOG_LEVEL=warn",
		"SIGNALBOX_CRM_RATE=100000", "SIGNALBOX_CHAT_RATE=100000", "SIGNALBOX_CRM_CONCURRENCY=64", "SIGNALBOX_CHAT_CONCURRENCY=64"}
	dbURL, drop, err := storetest.NewDatabase(storetest.ServerURL())
	if err != nil {
		return res, err
	}
	defer func() { _ = drop() }()
	s, err := stack.Start(ctx, stack.Options{BinDir: o.binDir, TemporalCLI: filepath.Join(o.binDir, "temporal"), StripeMock: filepath.Join(o.binDir, "stripe-mock"),
		DataDir: dataDir, DatabaseURL: dbURL, Env: env, Cluster: cl, Namespace: "bench"})
	if err != nil {
		return res, err
	}
	defer s.Stop()
	b := &custBench{o: o, s: s, web: &http.Client{Timeout: time.Minute}}

	stopBaseline, err := startBaselineWorker(s)
	if err != nil {
		return res, err
	}
	warm := o
	warm.items = 2 * o.concurrency
	progress("scale-out: warming up")
	if _, err := happyPath(ctx, s.Client, warm, "bench-bare", startBaseline); err != nil {
		return res, err
	}
	if _, err := happyPath(ctx, s.Client, warm, "bench-lead", startLead(true)); err != nil {
		return res, err
	}
	defer stopBaseline()

	workers := []*stack.Process{s.Worker}
	for _, n := range []int{1, 2, 4} {
		for len(workers) < n {
			p, err := b.startWorker(ctx, dataDir, len(workers)+1)
			if err != nil {
				return res, err
			}
			defer func() { _ = p.Stop(15 * time.Second) }()
			workers = append(workers, p)
		}
		procs := map[string]int{}
		for name, p := range cl.Services {
			procs["temporal "+name] = p.PID()
		}
		for i, w := range workers {
			procs[fmt.Sprintf("signalbox worker %d", i+1)] = w.PID()
		}
		procs["sandbox"], procs["bench (starts items)"] = s.Sandbox.PID(), os.Getpid()
		before, t0 := cpuOf(procs), time.Now()
		progress("scale-out: %d signalbox items on the cluster, %d worker process(es)", o.items, n)
		path, err := happyPath(ctx, s.Client, o, fmt.Sprintf("bench-lead-%d", n), startLead(true))
		if err != nil {
			return res, err
		}
		after, wall := cpuOf(procs), time.Since(t0).Seconds()
		run := scaleRun{Workers: n, Path: path, CPU: map[string]float64{}}
		for name := range after {
			run.CPU[name] = (after[name] - before[name]) / wall
		}
		res.Scale = append(res.Scale, run)
	}

	// Signalbox against the bare baseline: rounds that alternate the two,
	// each judged by its median (one run of either swings with the
	// machine's load), signalbox on the most workers.
	for round := 1; round <= compareRounds; round++ {
		progress("scale-out: comparison round %d of %d: baseline, then signalbox on %d workers", round, compareRounds, len(workers))
		bare, err := happyPath(ctx, s.Client, o, "bench-bare", startBaseline)
		if err != nil {
			return res, err
		}
		lead, err := happyPath(ctx, s.Client, o, fmt.Sprintf("bench-cmp-%d", round), startLead(true))
		if err != nil {
			return res, err
		}
		res.BaselineRounds, res.SignalboxRounds = append(res.BaselineRounds, bare.throughput()), append(res.SignalboxRounds, lead.throughput())
		if round == 1 {
			res.Baseline = bare
		}
	}

	// The per-target limit holds across processes: four workers at 20/s.
	const rate = 20.0
	progress("scale-out: four workers at SIGNALBOX_CRM_RATE=%g", rate)
	for _, w := range workers {
		_ = w.Stop(15 * time.Second)
	}
	for i := range 4 {
		p, err := b.startWorker(ctx, dataDir, 10+i, fmt.Sprintf("SIGNALBOX_CRM_RATE=%g", rate))
		if err != nil {
			return res, err
		}
		defer func() { _ = p.Stop(15 * time.Second) }()
	}
	mark, err := b.lastSeq(ctx)
	if err != nil {
		return res, err
	}
	lim := o
	lim.items, lim.concurrency = 200, 40
	if _, err := happyPath(ctx, s.Client, lim, "bench-rate", startLead(true)); err != nil {
		return res, err
	}
	reqs, err := b.crmRequests(ctx, mark)
	if err != nil {
		return res, err
	}
	w := window(reqs, time.Duration(float64(time.Second)/rate), func(sbRequest) bool { return true })
	res.Rate = rateRun{Workers: 4, Leads: lim.items, Rate: rate, Requests: w.Requests, MaxInSecond: w.MaxInSecond}

	progress("scale-out: the same signalbox items on the dev server, one worker")
	if res.DevServer, err = devServerPath(ctx, o); err != nil {
		return res, err
	}
	return res, nil
}

// devServerPath runs the lead path on a dev-server stack with one worker.
func devServerPath(ctx context.Context, o options) (pathResult, error) {
	dbURL, drop, err := storetest.NewDatabase(storetest.ServerURL())
	if err != nil {
		return pathResult{}, err
	}
	defer func() { _ = drop() }()
	dataDir, err := os.MkdirTemp("", "signalbox-bench-dev-")
	if err != nil {
		return pathResult{}, err
	}
	defer os.RemoveAll(dataDir)
	s, err := stack.Start(ctx, stack.Options{BinDir: o.binDir, TemporalCLI: filepath.Join(o.binDir, "temporal"), StripeMock: filepath.Join(o.binDir, "stripe-mock"),
		DataDir: dataDir, DatabaseURL: dbURL, Env: []string{"SIGNALBOX_OPERATORS=sales=alice", "SIGNALBOX_LOG_LEVEL=warn",
			"SIGNALBOX_CRM_RATE=100000", "SIGNALBOX_CHAT_RATE=100000", "SIGNALBOX_CRM_CONCURRENCY=64", "SIGNALBOX_CHAT_CONCURRENCY=64"}})
	if err != nil {
		return pathResult{}, err
	}
	defer s.Stop()
	warm := o
	warm.items = 2 * o.concurrency
	if _, err := happyPath(ctx, s.Client, warm, "bench-lead", startLead(true)); err != nil {
		return pathResult{}, err
	}
	return happyPath(ctx, s.Client, o, "bench-lead-dev", startLead(true))
}

// cpuOf reads each process's CPU time so far, in seconds (Linux /proc),
// and that of every PostgreSQL process together (its backends serve the
// cluster, signalbox and the sandbox alike).
func cpuOf(procs map[string]int) map[string]float64 {
	out := map[string]float64{}
	for name, pid := range procs {
		if cpu, _, ok := procCPU(pid); ok {
			out[name] = cpu
		}
	}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if cpu, comm, ok := procCPU(pid); ok && (comm == "postgres" || strings.HasPrefix(comm, "postgres:")) {
			out["postgresql (all processes)"] += cpu
		}
	}
	return out
}

// procCPU is a process's user and system CPU time in seconds, and its name.
func procCPU(pid int) (float64, string, bool) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, "", false
	}
	line := string(raw)
	open, end := strings.IndexByte(line, '('), strings.LastIndexByte(line, ')')
	if open < 0 || end < open {
		return 0, "", false
	}
	// After the name: utime and stime are the 12th and 13th fields.
	f := strings.Fields(line[end+1:])
	if len(f) < 13 {
		return 0, "", false
	}
	u, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (u + st) / clockTicks, line[open+1 : end], true
}

// clockTicks is USER_HZ, 100 on Linux.
const clockTicks = 100

// clusterSection is the report's scale-out section.
func (r *report) clusterSection() string {
	c := r.Cluster
	if c == nil {
		return ""
	}
	b := sectionStart(clusterHeading, c.Started, c.Duration)
	fmt.Fprintf(b, "Command: `make bench-cluster` (`go run ./bench -only cluster -items %d -concurrency %d`).\n\n```\n", r.Options.items, r.Options.concurrency)
	fmt.Fprintf(b, "%-52s %10s %12s %12s\n", "lead path (items at concurrency "+strconv.Itoa(r.Options.concurrency)+")", "items/s", "p50", "p95")
	line := func(name string, p pathResult) {
		p50, p95 := percentile(p.Latencies, 0.5), percentile(p.Latencies, 0.95)
		fmt.Fprintf(b, "%-52s %10.1f %12s %12s\n", name, p.throughput(), ms(p50), ms(p95))
	}
	line("bare baseline, cluster (in-process worker; round 1)", c.Baseline)
	line("signalbox, dev server, 1 worker", c.DevServer)
	for _, s := range c.Scale {
		line(fmt.Sprintf("signalbox, cluster, %d worker process(es)", s.Workers), s.Path)
	}
	rounds := func(xs []float64) string {
		var parts []string
		for _, x := range xs {
			parts = append(parts, fmt.Sprintf("%.1f", x))
		}
		return strings.Join(parts, ", ")
	}
	ratio := median(c.SignalboxRounds) / max(median(c.BaselineRounds), 1e-9)
	fmt.Fprintf(b, "\n%d alternating rounds on the cluster, items/s: baseline %s (median %.1f); signalbox on %d workers %s (median %.1f)\n",
		len(c.BaselineRounds), rounds(c.BaselineRounds), median(c.BaselineRounds), c.Scale[len(c.Scale)-1].Workers, rounds(c.SignalboxRounds), median(c.SignalboxRounds))
	fmt.Fprintf(b, "signalbox ÷ bare baseline on the cluster (medians): %.2f (target ≥ 0.95: %s)\n", ratio, verdict(ratio >= 0.95))
	fmt.Fprintf(b, "four workers at SIGNALBOX_CRM_RATE=%g, %d leads: %d CRM requests, at most %d sent in any 1 s (≤ %g: %s)\n",
		c.Rate.Rate, c.Rate.Leads, c.Rate.Requests, c.Rate.MaxInSecond, c.Rate.Rate, verdict(float64(c.Rate.MaxInSecond) <= c.Rate.Rate))
	b.WriteString("\nCPU while each run ran (CPU-seconds per wall second; the machine has 2 cores):\n")
	for _, s := range c.Scale {
		fmt.Fprintf(b, "  %d worker(s):", s.Workers)
		for _, name := range sortedKeys(s.CPU) {
			fmt.Fprintf(b, " %s %.2f;", name, s.CPU[name])
		}
		b.WriteString("\n")
	}
	b.WriteString("```\n\n")
	b.WriteString(c.reading())
	return b.String()
}

// reading names the bottleneck from the CPU figures of the largest run.
func (c *clusterResult) reading() string {
	if len(c.Scale) == 0 {
		return ""
	}
	last := c.Scale[len(c.Scale)-1]
	var workers, total float64
	busiest, most := "", 0.0
	for name, cpu := range last.CPU {
		total += cpu
		if strings.HasPrefix(name, "signalbox worker") {
			workers += cpu
		}
		if cpu > most {
			busiest, most = name, cpu
		}
	}
	lo, hi := c.Scale[0].Path.throughput(), c.Scale[0].Path.throughput()
	for _, s := range c.Scale {
		lo, hi = min(lo, s.Path.throughput()), max(hi, s.Path.throughput())
	}
	return fmt.Sprintf(`### Reading it

Everything shares one 2-core machine: the cluster's four services, PostgreSQL, the sandbox, the
bench and the workers. From 1 to %d worker processes the lead path ran at %.1f–%.1f items/s. With
%d workers, the processes measured used %.2f CPU-seconds per second in all. The workers used
%.2f of that, and the busiest process was %s, at %.2f. The workers are not what limits
throughput here: the cluster is, that is its history service and the PostgreSQL it persists to,
with each step a database write. The dev server keeps its state in SQLite in its own process
and so is faster on one machine.

On separate hosts, the workers' share moves off the server's machine. More worker processes then
raise throughput only once the server has room: more history hosts or shards, and a larger
PostgreSQL. The figures here say the workers need about %.2f CPU per item per second
(%.2f CPU-seconds at %.1f items/s). The rate row is measured from the requests' send times,
across four processes that share one vendor limit.
`, last.Workers, lo, hi, last.Workers, total, workers, busiest, most, workers/max(last.Path.throughput(), 1e-9), workers, last.Path.throughput())
}
