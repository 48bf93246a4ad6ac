// Package activities adapts connectors and the store to Temporal: activity
// structs whose dependencies are injected once in the worker, and the one place
// where connector errors become Temporal errors.
package activities

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/signalbox-dev/signalbox/api"
	"github.com/signalbox-dev/signalbox/connectors/rest"
)

// MaxRetryAfter caps how long a Retry-After can postpone the next attempt.
const MaxRetryAfter = rest.MaxRetryAfter

// RetryAfterMargin is added to a Retry-After. On a loaded machine the dev
// server was seen to start a retry 1.3s before its NextRetryDelay ended. The
// worker that got the answer holds its requests to the target until the
// Retry-After has passed anyway (rest.HTTPClient); the margin is for a retry
// that lands on another worker.
const RetryAfterMargin = 2 * time.Second

// Classify turns an error from a connector or the store into the Temporal error
// the activity returns. It is the only place where that decision is made.
// Expected refusals are marked benign so they do not raise alarms in metrics or logs.
func Classify(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) {
		return err
	}
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		return err // already classified
	}
	var e *rest.Error
	if !errors.As(err, &e) {
		return temporal.NewApplicationErrorWithOptions(redact(err.Error()), string(api.ErrorInternal), temporal.ApplicationErrorOptions{})
	}
	msg := redact(e.Error())
	status := e.StatusCode
	// A Retry-After on any answer we retry is the next attempt's delay. Zero
	// means "now": the retry policy's backoff applies then.
	retry := temporal.ApplicationErrorOptions{}
	if e.HasRetryAfter && e.RetryAfter > 0 {
		retry.NextRetryDelay = min(e.RetryAfter+RetryAfterMargin, MaxRetryAfter)
	}
	switch {
	case e.RateLimited():
		retry.Category = temporal.ApplicationErrorCategoryBenign
		return temporal.NewApplicationErrorWithOptions(msg, string(api.ErrorRateLimited), retry)
	case status == 0 || status == http.StatusRequestTimeout || status >= 500:
		return temporal.NewApplicationErrorWithOptions(msg, string(api.ErrorTargetUnavailable), retry)
	case e.Idempotency && status == http.StatusConflict:
		// The key's first request (say, an attempt that timed out) is still running.
		return temporal.NewApplicationErrorWithOptions(msg+" (a request with the same idempotency key is still running; retrying)",
			string(api.ErrorTargetUnavailable), retry)
	case e.Idempotency:
		return temporal.NewApplicationErrorWithOptions(
			msg+" (signalbox sent an idempotency key again with other parameters: this is a bug in signalbox, please report it;"+
				" check in the target whether the step took effect, then resolve or cancel the item)",
			string(api.ErrorIdempotencyMisuse), temporal.ApplicationErrorOptions{NonRetryable: true, Details: []any{rejection(e)}})
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return temporal.NewApplicationErrorWithOptions(
			fmt.Sprintf("%s (check the %s credentials, then decide retry)", msg, e.Target),
			string(api.ErrorAuthFailed), temporal.ApplicationErrorOptions{NonRetryable: true})
	case status == http.StatusConflict:
		return temporal.NewApplicationErrorWithOptions(msg, string(api.ErrorConflict),
			temporal.ApplicationErrorOptions{NonRetryable: true, Category: temporal.ApplicationErrorCategoryBenign, Details: []any{rejection(e)}})
	default:
		return temporal.NewApplicationErrorWithOptions(msg, string(api.ErrorTargetRejected),
			temporal.ApplicationErrorOptions{NonRetryable: true, Category: temporal.ApplicationErrorCategoryBenign, Details: []any{rejection(e)}})
	}
}

// Rejection is what a target said when it refused a request; it travels as the
// details of TargetRejected and Conflict errors so operators see it.
type Rejection struct {
	Target  string `json:"target"`
	Status  int    `json:"status"`
	Code    string `json:"code,omitempty"`
	Message string `json:"message,omitempty"`
	Param   string `json:"param,omitempty"`
}

func rejection(e *rest.Error) Rejection {
	return Rejection{Target: e.Target, Status: e.StatusCode, Code: e.Code, Message: redact(e.Message), Param: e.Param}
}

var emailLike = regexp.MustCompile(`[^\s"'<>@,;:\[\]]+@[^\s"'<>@,;:\[\]]+\.[A-Za-z]{2,}`)

// redact hides email addresses in a vendor's message: error messages reach
// logs and failure metrics, where personal data must not.
func redact(msg string) string {
	return emailLike.ReplaceAllString(msg, "<email>")
}
