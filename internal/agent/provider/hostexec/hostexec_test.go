package hostexec

import (
	"context"
	"errors"
	"strings"
	"testing"
)

func TestExecCapturesStdout(t *testing.T) {
	x := &Exec{Env: []string{"OUTPOST_A=1"}}
	out, err := x.RunCmd(context.Background(), Cmd{
		Name:  "sh",
		Args:  []string{"-c", `read line; echo "$line $OUTPOST_A $OUTPOST_B"`},
		Env:   []string{"OUTPOST_B=2"},
		Stdin: "hello\n",
	})
	if err != nil {
		t.Fatal(err)
	}
	if out != "hello 1 2\n" {
		t.Errorf("stdout = %q", out)
	}
}

func TestExecErrorNamesCommandAndStderr(t *testing.T) {
	x := &Exec{}
	script := `for i in 1 2 3 4 5 6 7 8; do echo "line $i" >&2; done; echo out; exit 3`
	out, err := x.Run(context.Background(), "sh", "-c", script)
	if err == nil {
		t.Fatal("no error from exit 3")
	}
	if out != "out\n" {
		t.Errorf("stdout = %q", out)
	}
	msg := err.Error()
	for _, want := range []string{"sh -c", "exit status 3", "line 8", "line 3 | line 4"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q lacks %q", msg, want)
		}
	}
	if strings.Contains(msg, "line 2") {
		t.Errorf("error %q keeps more than the last lines", msg)
	}
	if ExitCode(err) != 3 {
		t.Errorf("exit code %d", ExitCode(err))
	}
	var e *Error
	if !errors.As(err, &e) || e.Cmd == "" {
		t.Errorf("error is not an *Error: %T", err)
	}
}

func TestExecMissingBinary(t *testing.T) {
	_, err := (&Exec{}).Run(context.Background(), "/nonexistent/outpost-tool", "x")
	if err == nil || !strings.Contains(err.Error(), "/nonexistent/outpost-tool x") {
		t.Fatalf("err = %v", err)
	}
	if ExitCode(err) != -1 {
		t.Errorf("exit code %d for a command that never ran", ExitCode(err))
	}
}

func TestExecCapsOutput(t *testing.T) {
	x := &Exec{MaxOutput: 10}
	out, err := x.Run(context.Background(), "sh", "-c", "head -c 100000 /dev/zero | tr '\\0' a")
	if err != nil {
		t.Fatal(err)
	}
	if out != strings.Repeat("a", 10) {
		t.Errorf("stdout %d bytes, want the first 10", len(out))
	}
}

func TestExecCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := (&Exec{}).Run(ctx, "sleep", "5"); err == nil {
		t.Fatal("a cancelled command succeeded")
	}
}

func TestQuote(t *testing.T) {
	for in, want := range map[string]string{
		"":                      "''",
		"plain-word_1.2/x:y=z,": "plain-word_1.2/x:y=z,",
		"two words":             "'two words'",
		"it's":                  `'it'\''s'`,
		`{.status.conditions[?(@.type=="Ready")].status}`: `'{.status.conditions[?(@.type=="Ready")].status}'`,
	} {
		if got := Quote(in); got != want {
			t.Errorf("Quote(%q) = %s, want %s", in, got, want)
		}
	}
	c := Cmd{Name: "apt-get", Args: []string{"install", "-y", "jq"}, Env: []string{"DEBIAN_FRONTEND=noninteractive"}}
	if got := c.String(); got != "DEBIAN_FRONTEND=noninteractive apt-get install -y jq" {
		t.Errorf("String() = %s", got)
	}
}

func TestRecorder(t *testing.T) {
	r := &Recorder{}
	ctx := context.Background()
	notFound := r.On("kubectl get node n1", "")
	notFound.Err, notFound.Times = errors.New(`Error from server (NotFound): nodes "n1" not found`), 1
	r.On("kubectl get node n1", "True")
	created := false
	r.On("kubeadm init", "").Do = func(Cmd) error { created = true; return nil }

	if _, err := r.Run(ctx, "kubectl", "get", "node", "n1"); err == nil || !strings.Contains(err.Error(), "NotFound") {
		t.Errorf("first answer: %v", err)
	}
	if out, err := r.Run(ctx, "kubectl", "get", "node", "n1"); err != nil || out != "True" {
		t.Errorf("second answer: %q %v", out, err)
	}
	if _, err := r.RunCmd(ctx, Cmd{Name: "kubeadm", Args: []string{"init", "--config", "/etc/kubernetes/kubeadm-config.yaml"}}); err != nil || !created {
		t.Errorf("Do not run: %v %v", created, err)
	}
	if out, err := r.Run(ctx, "systemctl", "daemon-reload"); out != "" || err != nil {
		t.Errorf("unmatched command: %q %v", out, err)
	}
	want := []string{
		"kubectl get node n1",
		"kubectl get node n1",
		"kubeadm init --config /etc/kubernetes/kubeadm-config.yaml",
		"systemctl daemon-reload",
	}
	if got := r.Lines(); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("lines:\n%s", strings.Join(got, "\n"))
	}
	r.Reset()
	if len(r.Calls()) != 0 {
		t.Error("Reset kept calls")
	}
}
