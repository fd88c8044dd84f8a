package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
)

var timeNow = time.Now

func envOf(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestConfigPath(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"OUTPOST_CONFIG wins", map[string]string{envConfig: "/x/c.yaml", "XDG_CONFIG_HOME": "/xdg", "HOME": "/home/u"}, "/x/c.yaml"},
		{"then XDG_CONFIG_HOME", map[string]string{"XDG_CONFIG_HOME": "/xdg", "HOME": "/home/u"}, "/xdg/outpost/config.yaml"},
		{"then HOME", map[string]string{"HOME": "/home/u"}, "/home/u/.config/outpost/config.yaml"},
	}
	for _, tt := range tests {
		got, err := configPath(envOf(tt.env))
		if err != nil || got != filepath.FromSlash(tt.want) {
			t.Errorf("%s: configPath = %q, %v; want %q", tt.name, got, err, tt.want)
		}
	}
}

func TestConfigSaveLoad(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "dir", "config.yaml")
	want := Config{
		Server:             "https://hub:7080",
		Token:              "op_abc.secret",
		CAPEM:              "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
		InsecureSkipVerify: true,
		Project:            "lab",
	}
	if err := saveConfig(path, want); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode = %v, want 0600", fi.Mode().Perm())
	}
	got, err := loadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("loaded %+v, want %+v", got, want)
	}
	b, _ := os.ReadFile(path)
	for _, key := range []string{"server:", "token:", "caPEM:", "insecureSkipVerify: true", "project: lab"} {
		if !strings.Contains(string(b), key) {
			t.Errorf("config file lacks %q:\n%s", key, b)
		}
	}
	// Saving again replaces the file and leaves no temporary behind.
	want.Token = "op_new.secret"
	if err := saveConfig(path, want); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("directory holds %d files, want 1", len(entries))
	}
	if got, _ := loadConfig(path); got.Token != "op_new.secret" {
		t.Errorf("token after second save = %q", got.Token)
	}
}

func TestLoadConfigMissingAndBad(t *testing.T) {
	dir := t.TempDir()
	got, err := loadConfig(filepath.Join(dir, "none.yaml"))
	if err != nil || got != (Config{}) {
		t.Errorf("missing file: %+v, %v; want empty config", got, err)
	}
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("server: [unclosed\n"), 0o600)
	if _, err := loadConfig(bad); err == nil || !strings.Contains(err.Error(), "parse config") || !strings.Contains(err.Error(), bad) {
		t.Errorf("bad file: err = %v", err)
	}
}

func TestResolvePrecedence(t *testing.T) {
	file := Config{Server: "https://file", Token: "file-token", CAPEM: "file-pem", InsecureSkipVerify: false, Project: "file-project"}
	str := func(s string) *string { return &s }
	yes := true
	no := false
	tests := []struct {
		name  string
		file  Config
		env   map[string]string
		flags overrides
		want  settings
	}{
		{
			name: "nothing set: default project",
			want: settings{Project: "default"},
		},
		{
			name: "file only",
			file: file,
			want: settings{Server: "https://file", Token: "file-token", CAPEM: "file-pem", Project: "file-project"},
		},
		{
			name: "env over file",
			file: file,
			env:  map[string]string{envServer: "https://env", envToken: "env-token", envCAFile: "/env/ca.crt", envInsecure: "true", envProject: "env-project"},
			want: settings{Server: "https://env", Token: "env-token", CAFile: "/env/ca.crt", CAPEM: "file-pem", Insecure: true, Project: "env-project"},
		},
		{
			name:  "flags over env over file",
			file:  file,
			env:   map[string]string{envServer: "https://env", envToken: "env-token", envInsecure: "true", envProject: "env-project"},
			flags: overrides{Server: str("https://flag"), Token: str("flag-token"), CAFile: str("/flag/ca.crt"), Insecure: &no, Project: str("flag-project")},
			want:  settings{Server: "https://flag", Token: "flag-token", CAFile: "/flag/ca.crt", CAPEM: "file-pem", Insecure: false, Project: "flag-project"},
		},
		{
			name:  "some flags, some env, rest from file",
			file:  file,
			env:   map[string]string{envToken: "env-token"},
			flags: overrides{Project: str("flag-project"), Insecure: &yes},
			want:  settings{Server: "https://file", Token: "env-token", CAPEM: "file-pem", Insecure: true, Project: "flag-project"},
		},
		{
			name: "empty env does not override",
			file: file,
			env:  map[string]string{envServer: "", envProject: ""},
			want: settings{Server: "https://file", Token: "file-token", CAPEM: "file-pem", Project: "file-project"},
		},
		{
			name:  "an empty --project falls back to default",
			file:  file,
			flags: overrides{Project: str("")},
			want:  settings{Server: "https://file", Token: "file-token", CAPEM: "file-pem", Project: "default"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := resolve(tt.file, envOf(tt.env), tt.flags)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("resolve = %+v\nwant      %+v", got, tt.want)
			}
		})
	}
	if _, err := resolve(Config{}, envOf(map[string]string{envInsecure: "maybe"}), overrides{}); err == nil {
		t.Error("bad OUTPOST_INSECURE_SKIP_VERIFY: no error")
	}
}

// TestCommandSettings checks the precedence through the real flag parsing.
func TestCommandSettings(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config.yaml")
	if err := saveConfig(path, Config{Server: "https://file", Token: "file-token", Project: "file-project"}); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{envConfig: path, envToken: "env-token"}
	o := &options{version: "test", getenv: envOf(env), now: timeNow}
	root := newRoot(o)
	root.SetArgs([]string{"hosts", "ls", "--server", "https://flag", "-p", "flag-project"})
	var got settings
	ls, _, err := root.Find([]string{"hosts", "ls"})
	if err != nil {
		t.Fatal(err)
	}
	ls.RunE = func(cmd *cobra.Command, _ []string) error {
		got, _, err = o.settings(cmd)
		return err
	}
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	want := settings{Server: "https://flag", Token: "env-token", Project: "flag-project"}
	if got != want {
		t.Errorf("settings = %+v, want %+v", got, want)
	}
}
