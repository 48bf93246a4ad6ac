package metrics

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// Vendor records one target's requests: it is the rest.Observer of that
// target's HTTP client.
type Vendor struct {
	e      *Exporter
	target attribute.KeyValue
	// byClass holds the attribute set of each class, made once.
	byClass map[string]metric.MeasurementOption
	plain   metric.MeasurementOption
}

// Vendor returns the observer of target's requests ("crm", "billing", "chat");
// call it once per target.
func (e *Exporter) Vendor(target string) *Vendor {
	v := &Vendor{e: e, target: attribute.String(LabelTarget, target), byClass: map[string]metric.MeasurementOption{}}
	v.plain = metric.WithAttributeSet(attribute.NewSet(v.target))
	for _, c := range Classes {
		v.byClass[c] = metric.WithAttributeSet(attribute.NewSet(v.target, attribute.String(LabelClass, c)))
		// Served as 0 from the start: a rate over a class that has not
		// happened yet is 0, not missing.
		e.vendorRequests.Add(context.Background(), 0, v.byClass[c])
	}
	return v
}

// Waited records how long a request waited for its turn before it was sent.
func (v *Vendor) Waited(d time.Duration) {
	v.e.vendorWait.Record(context.Background(), d.Seconds(), v.plain)
}

// Answered records a request sent: the answer's status code, or 0 with the
// error when no answer came, and how long it took.
func (v *Vendor) Answered(status int, _ error, took time.Duration) {
	ctx := context.Background()
	v.e.vendorRequests.Add(ctx, 1, v.byClass[Class(status)])
	v.e.vendorDuration.Record(ctx, took.Seconds(), v.plain)
}

// Classes are the values of the class label of VendorRequests.
var Classes = []string{"2xx", "3xx", "401", "403", "429", "4xx", "5xx", "network"}

// Class is the class of a vendor's answer: 401, 403 and 429 on their own
// (credentials refused, rate exceeded), other codes by hundreds, and
// "network" for a request that got no answer (status 0).
func Class(status int) string {
	switch {
	case status == 0:
		return "network"
	case status == http.StatusUnauthorized || status == http.StatusForbidden || status == http.StatusTooManyRequests:
		return strconv.Itoa(status)
	case status >= 500:
		return "5xx"
	case status >= 400:
		return "4xx"
	case status >= 300:
		return "3xx"
	default:
		return "2xx"
	}
}

// Intake counts next's answers by the route that served them (its pattern,
// such as "POST /v1/leads", never the path: no key becomes a label) and
// status code.
func (e *Exporter) Intake(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(rec, r)
		route := r.Pattern // set by the ServeMux that routed r
		if route == "" {
			route = "unmatched"
		}
		e.intakeRequests.Add(r.Context(), 1, metric.WithAttributes(
			attribute.String(LabelRoute, route), attribute.String(LabelCode, strconv.Itoa(rec.status))))
	})
}

// statusRecorder remembers the status code written.
type statusRecorder struct {
	http.ResponseWriter
	status  int
	written bool
}

func (r *statusRecorder) WriteHeader(code int) {
	if !r.written {
		r.status, r.written = code, true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	r.written = true
	return r.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the writer beneath.
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
