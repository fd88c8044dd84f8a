package cli

import (
	"bytes"
	"crypto/x509"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/outpost-edge/outpost/api/v1"
	"github.com/outpost-edge/outpost/internal/errs"
)

// run executes the command tree with an empty environment except env.
func run(t *testing.T, env map[string]string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	if env == nil {
		env = map[string]string{}
	}
	if env[envConfig] == "" {
		env[envConfig] = filepath.Join(t.TempDir(), "config.yaml")
	}
	o := &options{version: "v9.9.9", getenv: envOf(env), now: func() time.Time { return testNow }}
	root := newRoot(o)
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs(args)
	err = root.Execute()
	return out.String(), errOut.String(), err
}

func TestVersion(t *testing.T) {
	out, _, err := run(t, nil, "version")
	if err != nil || out != "v9.9.9\n" {
		t.Errorf("version = %q, %v", out, err)
	}
	out, _, err = run(t, nil, "version", "-o", "json")
	if err != nil || out != "{\n  \"version\": \"v9.9.9\"\n}\n" {
		t.Errorf("version -o json = %q, %v", out, err)
	}
}

func TestCommandErrors(t *testing.T) {
	tests := []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"hots"}, nil, `unknown command "hots" for "outpost"`},
		{[]string{"hosts", "lss"}, nil, `unknown command "lss" for "outpost hosts"`},
		{[]string{"hosts", "get"}, nil, "usage: outpost hosts get ID"},
		{[]string{"hosts", "get", "a", "b"}, nil, "usage: outpost hosts get ID"},
		{[]string{"hosts", "get", " "}, nil, "ID is empty"},
		{[]string{"hosts", "label", "edge-1"}, nil, "usage: outpost hosts label ID key=value"},
		{[]string{"hosts", "label", "edge-1", "site"}, nil, `label "site": want key=value`},
		{[]string{"hosts", "ls", "-l", "a b=1"}, map[string]string{envServer: "https://hub", envToken: "t"}, "bad key"},
		{[]string{"hosts", "ls"}, nil, "no hub server"},
		{[]string{"hosts", "ls", "--server", "https://hub"}, nil, "no api token"},
		{[]string{"hosts", "ls", "-o", "xml"}, map[string]string{envServer: "https://hub", envToken: "t"}, `output format "xml"`},
		{[]string{"tokens", "create", "t", "--expires", "yesterday"}, nil, `expiry "yesterday"`},
		{[]string{"tokens", "create", "t", "--max-uses", "-1"}, nil, "--max-uses -1"},
		{[]string{"apitokens", "create", "ci"}, nil, "no roles"},
		{[]string{"apitokens", "create", "ci", "--role", "viewer"}, nil, "want PROJECT=ROLE"},
		{[]string{"projects", "update", "p"}, nil, "pass --description"},
		{[]string{"events", "--object", "edge-1"}, nil, "want Kind/name"},
		{[]string{"login"}, nil, "--server is required"},
		{[]string{"login", "--server", "https://hub"}, nil, "--token is required"},
		{[]string{"hosts", "ls", "--bogus"}, nil, "unknown flag: --bogus"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			_, _, err := run(t, tt.env, tt.args...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestLoginKeepsTokenFromOtherServers(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := saveConfig(path, Config{Server: "https://old", Token: "old-token"}); err != nil {
		t.Fatal(err)
	}
	_, _, err := run(t, map[string]string{envConfig: path}, "login", "--server", "https://new")
	if err == nil || !strings.Contains(err.Error(), "--token is required") {
		t.Errorf("err = %v: the saved token must not go to another hub", err)
	}
}

func TestCommandTree(t *testing.T) {
	root := NewRootCommand("dev")
	for _, path := range []string{
		"login", "whoami", "version", "server", "events",
		"hosts ls", "hosts get", "hosts register", "hosts label", "hosts approve", "hosts delete",
		"tokens create", "tokens ls", "tokens get", "tokens revoke", "tokens delete",
		"apitokens create", "apitokens ls", "apitokens get", "apitokens revoke",
		"projects ls", "projects get", "projects create", "projects update", "projects delete",
	} {
		cmd, rest, err := root.Find(strings.Fields(path))
		if err != nil || len(rest) != 0 || cmd.CommandPath() != "outpost "+path {
			t.Errorf("%q: found %q rest %q err %v", path, cmd.CommandPath(), rest, err)
		}
	}
	for _, flag := range []string{"server", "token", "ca-file", "insecure-skip-verify", "project", "output"} {
		if root.PersistentFlags().Lookup(flag) == nil {
			t.Errorf("no global --%s", flag)
		}
	}
}

func TestDescribe(t *testing.T) {
	unauth := fmt.Errorf("list hosts: %w", errs.FromAPI(401, v1.Error{Code: v1.CodeUnauthenticated, Message: "token expired"}))
	if got := describe(unauth); !strings.Contains(got, "token expired") || !strings.Contains(got, "outpost login") {
		t.Errorf("describe(unauthenticated) = %q", got)
	}
	ca := fmt.Errorf("whoami: %w", x509.UnknownAuthorityError{})
	if got := describe(ca); !strings.Contains(got, "--ca-file") {
		t.Errorf("describe(unknown authority) = %q", got)
	}
	plain := errors.New("get host \"edge-1\": not found")
	if got := describe(plain); got != plain.Error() {
		t.Errorf("describe(plain) = %q", got)
	}
}

func TestWrap(t *testing.T) {
	apiErr := errs.FromAPI(404, v1.Error{Code: v1.CodeNotFound, Message: `get host "edge-1": get EdgeHost "default/edge-1": not found`})
	tests := []struct {
		err  error
		want string
	}{
		{apiErr, `get host "edge-1": get EdgeHost "default/edge-1": not found`},
		{errs.FromAPI(404, v1.Error{Code: v1.CodeNotFound, Message: "not found"}), `get host "edge-1": not found`},
		{errors.New(`get host "edge-10": x`), `get host "edge-1": get host "edge-10": x`},
	}
	for _, tt := range tests {
		got := wrap(tt.err, "get host %q", "edge-1")
		if got.Error() != tt.want {
			t.Errorf("wrap(%q) = %q, want %q", tt.err, got, tt.want)
		}
		if !errors.Is(got, tt.err) {
			t.Errorf("wrap(%q) does not unwrap to it", tt.err)
		}
	}
}

func TestReadSecret(t *testing.T) {
	got, err := readSecret(strings.NewReader("  op_abc.def \nignored\n"), "token")
	if err != nil || got != "op_abc.def" {
		t.Errorf("readSecret = %q, %v", got, err)
	}
	if _, err := readSecret(strings.NewReader("\n"), "token"); err == nil || !strings.Contains(err.Error(), "nothing there") {
		t.Errorf("empty stdin: err = %v", err)
	}
}
