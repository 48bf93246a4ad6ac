// Package stack starts and supervises signalbox's local stack — the Temporal
// dev server, the sandbox, stripe-mock, the worker and the intake — as real
// processes. `make run` (devstack), the end-to-end tests, the chaos run and the
// benchmarks all use it, so they all exercise the same programs the same way.
package stack

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Process is one supervised program.
type Process struct {
	Name string
	Path string
	Args []string
	Env  []string
	// LogPath receives the program's stdout and stderr (appended across restarts).
	LogPath string
	// ReadyLine, when set, is a line fragment the program logs once it is ready.
	ReadyLine string
	// ReadyURL, when set, answers 200 once the program is ready.
	ReadyURL string
	// ReadyAddr, when set, accepts TCP connections once the program is ready.
	ReadyAddr string

	mu      sync.Mutex
	cmd     *exec.Cmd
	done    chan struct{}
	waitErr error
	logFrom int64
}

// Start launches the program and waits until it is ready.
func (p *Process) Start(ctx context.Context) error {
	p.mu.Lock()
	if p.cmd != nil && !p.exited() {
		p.mu.Unlock()
		return fmt.Errorf("%s is already running", p.Name)
	}
	logFile, err := os.OpenFile(p.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		p.mu.Unlock()
		return fmt.Errorf("%s: open log: %w", p.Name, err)
	}
	info, _ := logFile.Stat()
	p.logFrom = info.Size()
	cmd := exec.Command(p.Path, p.Args...)
	cmd.Env = p.Env
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		logFile.Close()
		p.mu.Unlock()
		return fmt.Errorf("start %s: %w", p.Name, err)
	}
	done := make(chan struct{})
	p.cmd, p.done, p.waitErr = cmd, done, nil
	go func() {
		err := cmd.Wait()
		logFile.Close()
		p.mu.Lock()
		p.waitErr = err
		p.mu.Unlock()
		close(done)
	}()
	p.mu.Unlock()
	return p.waitReady(ctx)
}

func (p *Process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// PID is the program's process ID, or 0.
func (p *Process) PID() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || p.cmd.Process == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

func (p *Process) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		if p.ready() {
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("%s exited before it was ready (%v); its log says:\n%s", p.Name, p.waitErr, p.Tail(20))
		case <-ctx.Done():
			return fmt.Errorf("%s not ready: %w; its log says:\n%s", p.Name, ctx.Err(), p.Tail(20))
		case <-tick.C:
		}
	}
}

func (p *Process) ready() bool {
	if p.ReadyAddr != "" {
		conn, err := net.DialTimeout("tcp", p.ReadyAddr, time.Second)
		if err != nil {
			return false
		}
		conn.Close()
	}
	if p.ReadyURL != "" {
		resp, err := http.Get(p.ReadyURL)
		if err != nil {
			return false
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return false
		}
	}
	if p.ReadyLine != "" {
		return strings.Contains(p.logSinceStart(), p.ReadyLine)
	}
	return true
}

func (p *Process) logSinceStart() string {
	f, err := os.Open(p.LogPath)
	if err != nil {
		return ""
	}
	defer f.Close()
	if _, err := f.Seek(p.logFrom, io.SeekStart); err != nil {
		return ""
	}
	b, _ := io.ReadAll(io.LimitReader(f, 8<<20))
	return string(b)
}

// Tail returns the last n lines the program logged since its last start.
func (p *Process) Tail(n int) string {
	var lines []string
	sc := bufio.NewScanner(strings.NewReader(p.logSinceStart()))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	return "  " + strings.Join(lines, "\n  ")
}

// Stop asks the program to stop (SIGTERM), then kills it after timeout.
func (p *Process) Stop(timeout time.Duration) error {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil {
		return nil
	}
	select {
	case <-done:
		return nil
	default:
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
		return p.exitError()
	case <-time.After(timeout):
		_ = cmd.Process.Kill()
		<-done
		return fmt.Errorf("%s did not stop within %s and was killed", p.Name, timeout)
	}
}

// Kill ends the program at once (SIGKILL), as a crash would.
func (p *Process) Kill() error {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil {
		return nil
	}
	_ = cmd.Process.Kill()
	<-done
	return nil
}

func (p *Process) exitError() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	var exit *exec.ExitError
	if errors.As(p.waitErr, &exit) && exit.ExitCode() == -1 {
		return nil // ended by our signal
	}
	return p.waitErr
}

// FreeAddr returns a loopback address with a port nobody listens on now.
func FreeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}
