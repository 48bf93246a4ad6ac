package emulator

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// stripeProxy passes requests to stripe-mock — Stripe's own mock, which
// validates every request against Stripe's OpenAPI spec — so that the sandbox's
// faults and request log apply to Stripe calls too. stripe-mock is stateless;
// the proxy adds the rule signalbox's tests need that it lacks (Stripe
// refuses an invoice due in the past) and remembers invoices
// (stripeinvoices.go).
type stripeProxy struct {
	base     string
	client   *http.Client
	invoices stripeInvoices
}

// SetStripeURL points the proxy at stripe-mock (e.g. http://127.0.0.1:12111),
// before the sandbox serves.
func (s *Server) SetStripeURL(base string) {
	s.stripe.base, s.stripe.client = strings.TrimSuffix(base, "/"), &http.Client{Timeout: 30 * time.Second}
}

func stripeError(typ, message, param string) map[string]any {
	e := map[string]any{"type": typ, "message": message}
	if param != "" {
		e["param"] = param
	}
	return map[string]any{"error": e}
}

// forwardedHeaders are the request headers stripe-mock reads.
var forwardedHeaders = []string{"Authorization", "Content-Type", "Idempotency-Key", "Stripe-Version", "Stripe-Account", "User-Agent"}

func (s *Server) stripeForward(r *http.Request, body []byte) result {
	p := s.stripe
	if p.base == "" {
		return result{status: http.StatusBadGateway, body: stripeError("api_error", "the sandbox has no stripe-mock to pass to: set SIGNALBOX_SANDBOX_STRIPE_URL", "")}
	}
	if r.Method == http.MethodPost && r.URL.Path == "/v1/invoices" {
		if bad := dueDateInThePast(body, s.now()); bad != nil {
			return *bad
		}
	}
	target := p.base + r.URL.Path
	if r.URL.RawQuery != "" {
		target += "?" + r.URL.RawQuery
	}
	req, err := http.NewRequestWithContext(r.Context(), r.Method, target, bytes.NewReader(body))
	if err != nil {
		return result{status: http.StatusBadGateway, body: stripeError("api_error", err.Error(), "")}
	}
	for _, h := range forwardedHeaders {
		if v := r.Header.Get(h); v != "" {
			req.Header.Set(h, v)
		}
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return result{status: http.StatusBadGateway, body: stripeError("api_error", "stripe-mock did not answer: "+err.Error(), "")}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxRequestBody))
	if err != nil {
		return result{status: http.StatusBadGateway, body: stripeError("api_error", "reading stripe-mock's answer: "+err.Error(), "")}
	}
	ok := resp.StatusCode >= 200 && resp.StatusCode < 300
	return result{status: resp.StatusCode, body: raw, contentType: resp.Header.Get("Content-Type"),
		effect: ok && r.Method == http.MethodPost}
}

// dueDateInThePast refuses an invoice whose due_date has passed, as Stripe does.
func dueDateInThePast(body []byte, now time.Time) *result {
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return nil
	}
	due, err := strconv.ParseInt(form.Get("due_date"), 10, 64)
	if err != nil || due >= now.Unix() {
		return nil
	}
	return &result{status: http.StatusBadRequest, body: stripeError("invalid_request_error",
		fmt.Sprintf("Invoice due_date must be in the future, got %s.", time.Unix(due, 0).UTC().Format("2006-01-02")), "due_date")}
}
