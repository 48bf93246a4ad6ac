package activities

import (
	"context"
	"time"

	"go.temporal.io/sdk/activity"
)

// heartbeating runs fn and, while it runs, records a heartbeat at half the
// activity's heartbeat timeout. A worker that dies mid-call is then noticed
// within that timeout instead of the whole start-to-close timeout, and a
// cancellation of the activity reaches fn's context (cancellations arrive
// with heartbeat responses). Calls that finish quickly never heartbeat.
func heartbeating[T any](ctx context.Context, fn func(context.Context) (T, error)) (T, error) {
	if !activity.IsActivity(ctx) {
		return fn(ctx)
	}
	timeout := activity.GetInfo(ctx).HeartbeatTimeout
	if timeout <= 0 {
		return fn(ctx)
	}
	done := make(chan struct{})
	defer close(done)
	go func() {
		tick := time.NewTicker(timeout / 2)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-tick.C:
				activity.RecordHeartbeat(ctx)
			}
		}
	}()
	return fn(ctx)
}
