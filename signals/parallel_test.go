package main

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestEachParallelCallsEveryIndexAtMostParallelAtOnce(t *testing.T) {
	var running, most, calls atomic.Int32
	seen := make([]atomic.Bool, 50)
	eachParallel(context.Background(), len(seen), 4, func(i int) {
		n := running.Add(1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		time.Sleep(time.Millisecond)
		seen[i].Store(true)
		calls.Add(1)
		running.Add(-1)
	})
	require.EqualValues(t, 50, calls.Load())
	for i := range seen {
		require.True(t, seen[i].Load(), "index %d", i)
	}
	require.LessOrEqual(t, most.Load(), int32(4))
}

func TestEachParallelBeginsNothingOnceCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var calls atomic.Int32
	eachParallel(ctx, 100, 4, func(int) { calls.Add(1) })
	require.Less(t, calls.Load(), int32(100))
}
