// Package metricstest reads what the metrics endpoints serve and the
// alert rules that use it, for tests.
package metricstest

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
)

// Families are a parsed exposition, by family name.
type Families map[string]*dto.MetricFamily

// Parse reads an exposition in the text format; a name that is not a
// classic Prometheus name (letters, digits, underscores, colons) fails it.
func Parse(r io.Reader) (Families, error) {
	p := expfmt.NewTextParser(model.LegacyValidation)
	return p.TextToMetricFamilies(r)
}

// Scrape GETs a /metrics URL as Prometheus would and parses the answer.
func Scrape(url string) (Families, error) {
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return Parse(resp.Body)
}

// Series are the series of family name whose labels include want.
func (f Families) Series(name string, want map[string]string) []*dto.Metric {
	fam, ok := f[name]
	if !ok {
		return nil
	}
	var out []*dto.Metric
	for _, m := range fam.GetMetric() {
		if hasLabels(m, want) {
			out = append(out, m)
		}
	}
	return out
}

// Sum adds up the values (counters and gauges) or sample counts
// (histograms) of the series of name whose labels include want.
func (f Families) Sum(name string, want map[string]string) float64 {
	var sum float64
	for _, m := range f.Series(name, want) {
		switch {
		case m.Counter != nil:
			sum += m.GetCounter().GetValue()
		case m.Gauge != nil:
			sum += m.GetGauge().GetValue()
		case m.Histogram != nil:
			sum += float64(m.GetHistogram().GetSampleCount())
		}
	}
	return sum
}

// Has reports whether a series is named name: a family, or a histogram's
// _bucket, _sum or _count.
func (f Families) Has(name string) bool {
	if _, ok := f[name]; ok {
		return true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suffix); ok {
			if fam, ok := f[base]; ok && fam.GetType() == dto.MetricType_HISTOGRAM {
				return true
			}
		}
	}
	return false
}

// Bounds are the upper bounds of a histogram's buckets, +Inf left out.
func Bounds(m *dto.Metric) []float64 {
	var out []float64
	for _, b := range m.GetHistogram().GetBucket() {
		if !math.IsInf(b.GetUpperBound(), +1) {
			out = append(out, b.GetUpperBound())
		}
	}
	return out
}

func hasLabels(m *dto.Metric, want map[string]string) bool {
	for k, v := range want {
		if !slices.ContainsFunc(m.GetLabel(), func(l *dto.LabelPair) bool { return l.GetName() == k && l.GetValue() == v }) {
			return false
		}
	}
	return true
}

// Rules reads a Prometheus rule file with Prometheus's own parser (which
// also parses each expression and template) and returns its alerting rules
// and the metric names their expressions select, sorted.
func Rules(path string) ([]rulefmt.Rule, []string, error) {
	groups, errs := rulefmt.ParseFile(path, false, model.LegacyValidation, promql, slog.Default())
	if len(errs) > 0 {
		return nil, nil, fmt.Errorf("%s: %w", path, errs[0])
	}
	var rules []rulefmt.Rule
	var exprs []string
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			rules = append(rules, r)
			exprs = append(exprs, r.Expr)
		}
	}
	names, err := ExprNames(exprs...)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return rules, names, nil
}

// Dashboard reads a Grafana dashboard and returns the metric names its
// panels' queries select, sorted; a query PromQL does not parse fails it.
func Dashboard(path string) ([]string, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var d struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(raw, &d); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var exprs []string
	for _, p := range d.Panels {
		if len(p.Targets) == 0 {
			return nil, fmt.Errorf("%s: panel %q has no query", path, p.Title)
		}
		for _, t := range p.Targets {
			exprs = append(exprs, t.Expr)
		}
	}
	names, err := ExprNames(exprs...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return names, nil
}

// promql parses expressions as Prometheus does by default.
var promql = parser.NewParser(parser.Options{})

// ExprNames parses PromQL expressions and returns the metric names they
// select, sorted.
func ExprNames(exprs ...string) ([]string, error) {
	var names []string
	for _, e := range exprs {
		expr, err := promql.ParseExpr(e)
		if err != nil {
			return nil, fmt.Errorf("%q: %w", e, err)
		}
		parser.Inspect(expr, func(node parser.Node, _ []parser.Node) error {
			vs, ok := node.(*parser.VectorSelector)
			if !ok {
				return nil
			}
			name := vs.Name
			for _, m := range vs.LabelMatchers {
				if name == "" && m.Name == model.MetricNameLabel {
					name = m.Value
				}
			}
			if name != "" && !slices.Contains(names, name) {
				names = append(names, name)
			}
			return nil
		})
	}
	slices.Sort(names)
	return names, nil
}
