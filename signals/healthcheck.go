package main

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"time"
)

// healthcheck asks a program's health endpoint whether it is ready: exit 0
// on 200, 1 otherwise. Container images without a shell or curl use it
// (docker-compose.yml's health checks).
func (a *app) healthcheck(ctx context.Context, args []string) error {
	if len(args) != 1 {
		fmt.Fprintln(a.stderr, "usage: signals healthcheck URL   (e.g. http://127.0.0.1:8080/healthz)")
		return errUsage
	}
	u, err := url.Parse(args[0])
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		fmt.Fprintf(a.stderr, "signals healthcheck: %q is not an http(s) URL\n", args[0])
		return errUsage
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("not healthy: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("not healthy: %s answered %s", u, resp.Status)
	}
	fmt.Fprintf(a.stdout, "healthy: %s\n", u)
	return nil
}
