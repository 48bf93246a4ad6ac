package main

import (
	"context"
	"sync"
)

// eachParallel calls fn(i) for every i in [0, n), at most parallel at once,
// and returns when every call it began has returned. Once ctx ends it begins
// no more calls; the caller tells the skipped ones by what fn left unset.
func eachParallel(ctx context.Context, n, parallel int, fn func(i int)) {
	work := make(chan int)
	var wg sync.WaitGroup
	for range min(max(parallel, 1), n) {
		wg.Go(func() {
			for i := range work {
				fn(i)
			}
		})
	}
feed:
	for i := range n {
		select {
		case work <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(work)
	wg.Wait()
}
