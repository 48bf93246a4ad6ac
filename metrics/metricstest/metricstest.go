// Package metricstest reads what the metrics endpoints serve and the
// alert rules that use it, for tests.
package metricstest

import (
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
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
	p := parser.NewParser(parser.Options{})
	groups, errs := rulefmt.ParseFile(path, false, model.LegacyValidation, p, slog.Default())
	if len(errs) > 0 {
		return nil, nil, fmt.Errorf("%s: %w", path, errs[0])
	}
	var rules []rulefmt.Rule
	var names []string
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			expr, err := p.ParseExpr(r.Expr)
			if err != nil {
				return nil, nil, fmt.Errorf("%s: rule %s: %w", path, r.Alert, err)
			}
			parser.Inspect(expr, func(node parser.Node, _ []parser.Node) error {
				if vs, ok := node.(*parser.VectorSelector); ok {
					name := vs.Name
					if name == "" {
						for _, m := range vs.LabelMatchers {
							if m.Name == model.MetricNameLabel {
								name = m.Value
							}
						}
					}
					if name != "" && !slices.Contains(names, name) {
						names = append(names, name)
					}
				}
				return nil
			})
			rules = append(rules, r)
		}
	}
	slices.Sort(names)
	return rules, names, nil
}
