package hostexec

import (
	"context"
	"strings"
	"sync"
)

// Answer is what a Recorder says to the commands it matches.
type Answer struct {
	// Prefix matches commands whose Line starts with it.
	Prefix string
	Stdout string
	Err    error
	// Times is how many commands it answers before it is used up; 0 is
	// every one.
	Times int
	// Do runs when the answer is used, before it is returned: it stands
	// for what the real command would leave on the host (kubeadm init
	// writing admin.conf). Its error is the command's.
	Do func(Cmd) error

	used int
}

// Recorder is a Runner that runs nothing: it records every command and
// answers from its script. The first answer that matches and is not used
// up wins; a command nothing matches succeeds with no output.
type Recorder struct {
	mu     sync.Mutex
	calls  []Cmd
	script []*Answer
}

var _ Runner = (*Recorder)(nil)

// On adds an answer for commands starting with prefix and returns it, so
// that a test can set Times, Err or Do.
func (r *Recorder) On(prefix, stdout string) *Answer {
	a := &Answer{Prefix: prefix, Stdout: stdout}
	r.Add(a)
	return a
}

// Add appends a to the script.
func (r *Recorder) Add(a *Answer) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.script = append(r.script, a)
}

// Run records and answers name with args.
func (r *Recorder) Run(ctx context.Context, name string, args ...string) (string, error) {
	return r.RunCmd(ctx, Cmd{Name: name, Args: args})
}

// RunCmd records c and answers it.
func (r *Recorder) RunCmd(ctx context.Context, c Cmd) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	c.Args = append([]string(nil), c.Args...)
	c.Env = append([]string(nil), c.Env...)
	line := c.Line()
	r.mu.Lock()
	r.calls = append(r.calls, c)
	var hit *Answer
	for _, a := range r.script {
		if strings.HasPrefix(line, a.Prefix) && (a.Times == 0 || a.used < a.Times) {
			a.used++
			hit = a
			break
		}
	}
	r.mu.Unlock()
	if hit == nil {
		return "", nil
	}
	if hit.Do != nil {
		if err := hit.Do(c); err != nil {
			return "", &Error{Cmd: c.String(), Err: err}
		}
	}
	if hit.Err != nil {
		return hit.Stdout, &Error{Cmd: c.String(), Err: hit.Err}
	}
	return hit.Stdout, nil
}

// Calls returns the commands run so far, in order.
func (r *Recorder) Calls() []Cmd {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Cmd(nil), r.calls...)
}

// Lines returns the commands run so far as Cmd.String gives them.
func (r *Recorder) Lines() []string {
	calls := r.Calls()
	out := make([]string, len(calls))
	for i, c := range calls {
		out[i] = c.String()
	}
	return out
}

// Reset forgets the commands recorded and the script.
func (r *Recorder) Reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls, r.script = nil, nil
}
