package hostexec

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strings"
)

// Cmd is one command to run.
type Cmd struct {
	Name string
	Args []string
	// Env is added to the runner's environment (KEY=value).
	Env []string
	// Stdin is fed to the command; empty for none. It may hold secrets
	// (a password hash, a token), which is why String leaves it out.
	Stdin string
}

// String is the command as one would type it in a shell: env assignments,
// then the name and its arguments, quoted where the shell needs it.
func (c Cmd) String() string {
	var b strings.Builder
	for _, e := range c.Env {
		b.WriteString(Quote(e))
		b.WriteByte(' ')
	}
	b.WriteString(c.Line())
	return b.String()
}

// Line is the name and arguments without the environment: what a
// Recorder's answers match.
func (c Cmd) Line() string {
	parts := make([]string, 0, len(c.Args)+1)
	parts = append(parts, Quote(c.Name))
	for _, a := range c.Args {
		parts = append(parts, Quote(a))
	}
	return strings.Join(parts, " ")
}

// Quote returns s as a single shell word.
func Quote(s string) string {
	if s == "" {
		return "''"
	}
	safe := true
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./:=,+@%^", r)) {
			safe = false
			break
		}
	}
	if safe {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// Runner runs host commands and returns what they wrote to stdout.
type Runner interface {
	Run(ctx context.Context, name string, args ...string) (stdout string, err error)
	RunCmd(ctx context.Context, c Cmd) (stdout string, err error)
}

// Error is a command that failed: it names the command and carries the
// last lines the command wrote to stderr (or stdout when stderr is empty),
// since that is where tools say why.
type Error struct {
	Cmd  string
	Err  error
	Tail string
}

func (e *Error) Error() string {
	if e.Tail == "" {
		return fmt.Sprintf("%s: %v", e.Cmd, e.Err)
	}
	return fmt.Sprintf("%s: %v: %s", e.Cmd, e.Err, e.Tail)
}

func (e *Error) Unwrap() error { return e.Err }

// ExitCode is the exit status of a command that ran and failed, or -1.
func ExitCode(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	return -1
}

// Defaults of Exec.
const (
	DefaultMaxOutput = 8 << 20
	tailLines        = 6
	tailBytes        = 2048
)

// Exec runs commands on the real host with os/exec.
type Exec struct {
	// Env is added to the agent's own environment for every command.
	Env []string
	// MaxOutput caps the stdout kept (more is read and dropped, so the
	// command does not block); default DefaultMaxOutput.
	MaxOutput int
	// Log gets every command at debug level; nil for none.
	Log *slog.Logger
}

var _ Runner = (*Exec)(nil)

// Run runs name with args.
func (x *Exec) Run(ctx context.Context, name string, args ...string) (string, error) {
	return x.RunCmd(ctx, Cmd{Name: name, Args: args})
}

// RunCmd runs c and waits for it. A command that exits non-zero is an
// *Error; so is one that could not start.
func (x *Exec) RunCmd(ctx context.Context, c Cmd) (string, error) {
	limit := x.MaxOutput
	if limit <= 0 {
		limit = DefaultMaxOutput
	}
	cmd := exec.CommandContext(ctx, c.Name, c.Args...)
	if len(x.Env) > 0 || len(c.Env) > 0 {
		cmd.Env = append(append(os.Environ(), x.Env...), c.Env...)
	}
	if c.Stdin != "" {
		cmd.Stdin = strings.NewReader(c.Stdin)
	}
	stdout := &capped{max: limit}
	stderr := &capped{max: 64 << 10, keepTail: true}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	if x.Log != nil {
		x.Log.Debug("run", "cmd", c.String())
	}
	err := cmd.Run()
	out := stdout.String()
	if err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (%w)", err, ctx.Err())
		}
		tail := lastLines(stderr.String())
		if tail == "" {
			tail = lastLines(out)
		}
		return out, &Error{Cmd: c.String(), Err: err, Tail: tail}
	}
	return out, nil
}

// capped keeps at most max bytes: the first ones, or the last ones with
// keepTail (for stderr, whose end says what went wrong).
type capped struct {
	buf      bytes.Buffer
	max      int
	keepTail bool
}

func (c *capped) Write(p []byte) (int, error) {
	n := len(p)
	if c.keepTail {
		c.buf.Write(p)
		if extra := c.buf.Len() - c.max; extra > 0 {
			c.buf.Next(extra)
		}
		return n, nil
	}
	if room := c.max - c.buf.Len(); room > 0 {
		c.buf.Write(p[:min(room, len(p))])
	}
	return n, nil
}

func (c *capped) String() string { return c.buf.String() }

var _ io.Writer = (*capped)(nil)

// lastLines is the end of a command's output, on one line, for an error
// message.
func lastLines(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	var keep []string
	for i := len(lines) - 1; i >= 0 && len(keep) < tailLines; i-- {
		if l := strings.TrimSpace(lines[i]); l != "" {
			keep = append(keep, l)
		}
	}
	for i, j := 0, len(keep)-1; i < j; i, j = i+1, j-1 {
		keep[i], keep[j] = keep[j], keep[i]
	}
	out := strings.Join(keep, " | ")
	if len(out) > tailBytes {
		out = "…" + out[len(out)-tailBytes:]
	}
	return out
}
