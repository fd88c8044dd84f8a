package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"sigs.k8s.io/yaml"
)

// Config is what "outpost login" saves. The CA is stored as PEM text rather
// than a path so the file keeps working after the CA file moves.
type Config struct {
	Server             string `json:"server"`
	Token              string `json:"token"`
	CAPEM              string `json:"caPEM,omitempty"`
	InsecureSkipVerify bool   `json:"insecureSkipVerify,omitempty"`
	// Project is the default for --project.
	Project string `json:"project,omitempty"`
}

// Environment variables that override the config file.
const (
	envConfig   = "OUTPOST_CONFIG"
	envServer   = "OUTPOST_SERVER"
	envToken    = "OUTPOST_TOKEN"
	envCAFile   = "OUTPOST_CA_FILE"
	envInsecure = "OUTPOST_INSECURE_SKIP_VERIFY"
	envProject  = "OUTPOST_PROJECT"
)

const defaultProject = "default"

// configPath finds the config file; getenv is os.Getenv outside tests.
func configPath(getenv func(string) string) (string, error) {
	if p := getenv(envConfig); p != "" {
		return p, nil
	}
	if d := getenv("XDG_CONFIG_HOME"); d != "" {
		return filepath.Join(d, "outpost", "config.yaml"), nil
	}
	home := getenv("HOME")
	if home == "" {
		var err error
		if home, err = os.UserHomeDir(); err != nil {
			return "", fmt.Errorf("find the config file: %w (set %s)", err, envConfig)
		}
	}
	return filepath.Join(home, ".config", "outpost", "config.yaml"), nil
}

// loadConfig reads path; a missing file is an empty config, so commands can
// run from flags and environment alone.
func loadConfig(path string) (Config, error) {
	var c Config
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return c, fmt.Errorf("read config %q: %w", path, err)
	}
	if err := yaml.Unmarshal(b, &c); err != nil {
		return c, fmt.Errorf("parse config %q: %w", path, err)
	}
	return c, nil
}

// saveConfig writes c to path readable by the owner only (it holds a
// token). It writes a temporary file and renames it so a crash never
// leaves half a config behind.
func saveConfig(path string, c Config) error {
	b, err := yaml.Marshal(c)
	if err != nil {
		return fmt.Errorf("encode config: %w", err)
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("save config %q: %w", path, err)
	}
	f, err := os.CreateTemp(dir, ".config-*.yaml")
	if err != nil {
		return fmt.Errorf("save config %q: %w", path, err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // a no-op after the rename
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return fmt.Errorf("save config %q: %w", path, err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("save config %q: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("save config %q: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("save config %q: %w", path, err)
	}
	return nil
}

// overrides are the connection flags the user actually set; nil means not
// given, so an empty flag value can still be told from an absent one.
type overrides struct {
	Server, Token, CAFile, Project *string
	Insecure                       *bool
}

// settings are the effective connection settings of one command.
type settings struct {
	Server   string
	Token    string
	CAFile   string // wins over CAPEM when set
	CAPEM    string
	Insecure bool
	Project  string
}

// resolve applies flags over the environment over the config file.
func resolve(file Config, getenv func(string) string, flags overrides) (settings, error) {
	s := settings{
		Server:   file.Server,
		Token:    file.Token,
		CAPEM:    file.CAPEM,
		Insecure: file.InsecureSkipVerify,
		Project:  file.Project,
	}
	pick := func(dst *string, env string, flag *string) {
		if v := getenv(env); v != "" {
			*dst = v
		}
		if flag != nil {
			*dst = *flag
		}
	}
	pick(&s.Server, envServer, flags.Server)
	pick(&s.Token, envToken, flags.Token)
	pick(&s.CAFile, envCAFile, flags.CAFile)
	pick(&s.Project, envProject, flags.Project)
	if v := getenv(envInsecure); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return s, fmt.Errorf("%s=%q: want true or false", envInsecure, v)
		}
		s.Insecure = b
	}
	if flags.Insecure != nil {
		s.Insecure = *flags.Insecure
	}
	s.Server = strings.TrimSpace(s.Server)
	s.Token = strings.TrimSpace(s.Token)
	if s.Project == "" {
		s.Project = defaultProject
	}
	return s, nil
}
