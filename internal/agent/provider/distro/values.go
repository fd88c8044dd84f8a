package distro

import (
	"bytes"
	"fmt"
	"net"
	"path"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	v1 "github.com/outpost-edge/outpost/api/v1"
	"github.com/outpost-edge/outpost/internal/agent/engine"
)

// Values are a layer's values, parsed.
type Values map[string]any

// ParseValues reads a layer's values YAML. Values the distro cannot read
// will not get better on retry, so the error is permanent.
func ParseValues(l v1.RenderedLayer) (Values, error) {
	// Into a plain map: yaml.v3 would make nested mappings Values too,
	// which the type switches below do not expect.
	v := map[string]any{}
	if err := yaml.Unmarshal([]byte(l.Values), &v); err != nil {
		return nil, engine.Permanent(fmt.Errorf("%s %s values: %w", engine.PackName(l), l.Version, err))
	}
	return Values(v), nil
}

// Map returns the mapping at the dotted path key ("cluster.config"), nil
// when absent, and an error naming the key when it is something else.
func (v Values) Map(key string) (map[string]any, error) {
	var cur any = map[string]any(v)
	for _, k := range strings.Split(key, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, engine.Permanent(fmt.Errorf("values: %s is not a mapping", key))
		}
		if cur, ok = m[k]; !ok || cur == nil {
			return nil, nil
		}
	}
	m, ok := cur.(map[string]any)
	if !ok {
		return nil, engine.Permanent(fmt.Errorf("values: %s is not a mapping", key))
	}
	return m, nil
}

// String returns the string at the dotted path key, or def.
func (v Values) String(key, def string) string {
	parent, last := "", key
	if i := strings.LastIndex(key, "."); i >= 0 {
		parent, last = key[:i], key[i+1:]
	}
	m := map[string]any(v)
	if parent != "" {
		var err error
		if m, err = v.Map(parent); err != nil || m == nil {
			return def
		}
	}
	switch s := m[last].(type) {
	case string:
		if s != "" {
			return s
		}
	case int, bool, float64:
		return fmt.Sprint(s)
	}
	return def
}

// MarshalYAML writes v as YAML with two-space indents and sorted keys, so
// that equal values make byte-equal files.
func MarshalYAML(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// Clone copies a values mapping deeply enough to change it.
func Clone(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		switch t := v.(type) {
		case map[string]any:
			out[k] = Clone(t)
		case []any:
			out[k] = slices.Clone(t)
		default:
			out[k] = v
		}
	}
	return out
}

// Merge puts over onto base key by key (mappings merge, anything else is
// replaced), as the hub merges values.
func Merge(base, over map[string]any) map[string]any {
	out := Clone(base)
	for k, v := range over {
		if bm, ok := out[k].(map[string]any); ok {
			if om, ok := v.(map[string]any); ok {
				out[k] = Merge(bm, om)
				continue
			}
		}
		out[k] = v
	}
	return out
}

// AppendList adds values to the list at key, which k3s and rke2 also
// accept as one comma-separated string, leaving out ones already there.
func AppendList(m map[string]any, key string, vals ...string) {
	var list []any
	switch cur := m[key].(type) {
	case nil:
	case []any:
		list = slices.Clone(cur)
	case string:
		for _, s := range strings.Split(cur, ",") {
			if s = strings.TrimSpace(s); s != "" {
				list = append(list, s)
			}
		}
	default:
		list = []any{cur}
	}
	for _, v := range vals {
		if !slices.ContainsFunc(list, func(x any) bool { return fmt.Sprint(x) == v }) {
			list = append(list, v)
		}
	}
	m[key] = list
}

// Endpoint is host:port for a join endpoint that may be an IPv6 literal
// or carry a port of its own (which port replaces).
func Endpoint(host string, port int) string {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	return net.JoinHostPort(strings.Trim(host, "[]"), strconv.Itoa(port))
}

// RancherConfig renders the config of k3s and rke2: config.yaml from
// values.config and the node's role, and one drop-in per entry of
// values.configDropIns in config.yaml.d, read by the distro after
// config.yaml in name order, with "key+" appending to a list.
type RancherConfig struct {
	Pack string
	// Dir is /etc/rancher/<pack>.
	Dir string
	// Port is where joining nodes reach the supervisor: 6443 for k3s,
	// 9345 for rke2.
	Port int
	// ClusterInit writes cluster-init: true for the init server (k3s:
	// embedded etcd, so that more servers can join later).
	ClusterInit bool
	// ServerOnly are the flags agents do not take; they are left out of a
	// worker's files, which the distro would otherwise warn about at every
	// start.
	ServerOnly []string
}

// DropInPrefix starts the names of the drop-ins rendered from values: the
// agent owns config.yaml.d/50-*.yaml and leaves other files there alone,
// so a site can add 90-local.yaml by hand.
const DropInPrefix = "50-"

// CriticalAddonsOnly keeps ordinary pods off control-plane nodes that do
// not allow workloads (the distros' documented HA setup).
const CriticalAddonsOnly = "CriticalAddonsOnly=true:NoExecute"

var reDropIn = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// RenderedConfig is config.yaml and the drop-ins by file name.
type RenderedConfig struct {
	Config  []byte
	DropIns map[string][]byte
}

// ConfigPath is config.yaml's host path.
func (c RancherConfig) ConfigPath() string { return path.Join(c.Dir, "config.yaml") }

// DropInDir is config.yaml.d's host path.
func (c RancherConfig) DropInDir() string { return path.Join(c.Dir, "config.yaml.d") }

// Render makes the files for action a. values.cluster.config (the seed's
// spelling) is read too, over values.config.
func (c RancherConfig) Render(a engine.DistroAction) (*RenderedConfig, error) {
	v, err := ParseValues(a.Layer)
	if err != nil {
		return nil, err
	}
	base, err := v.Map("config")
	if err != nil {
		return nil, err
	}
	seed, err := v.Map("cluster.config")
	if err != nil {
		return nil, err
	}
	cfg := Merge(base, seed)
	if a.JoinToken == "" {
		return nil, engine.Permanent(fmt.Errorf("%s: the spec carries no join token", c.Pack))
	}
	server := IsServer(a.Role)
	switch a.Role {
	case v1.RoleInit:
		delete(cfg, "server")
		if c.ClusterInit {
			cfg["cluster-init"] = true
		}
	case v1.RoleControlPlane, v1.RoleWorker:
		if a.JoinEndpoint == "" {
			return nil, engine.Permanent(fmt.Errorf("%s: a %s node needs a join endpoint", c.Pack, a.Role))
		}
		delete(cfg, "cluster-init")
		cfg["server"] = "https://" + Endpoint(a.JoinEndpoint, c.Port)
	default:
		return nil, engine.Permanent(fmt.Errorf("%s: unknown role %q", c.Pack, a.Role))
	}
	cfg["node-name"] = a.Node
	cfg["token"] = a.JoinToken
	if server {
		if a.VIP != "" {
			AppendList(cfg, "tls-san", a.VIP)
		}
		if !a.AllowWorkloads {
			AppendList(cfg, "node-taint", CriticalAddonsOnly)
		}
	} else {
		c.dropServerOnly(cfg)
	}
	out := &RenderedConfig{DropIns: map[string][]byte{}}
	if out.Config, err = c.file(cfg); err != nil {
		return nil, err
	}
	dropIns, err := v.Map("configDropIns")
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(dropIns))
	for n := range dropIns {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if !reDropIn.MatchString(n) {
			return nil, engine.Permanent(fmt.Errorf("%s values: configDropIns name %q is not a file name", c.Pack, n))
		}
		m, ok := dropIns[n].(map[string]any)
		if !ok {
			if dropIns[n] == nil {
				continue
			}
			return nil, engine.Permanent(fmt.Errorf("%s values: configDropIns.%s is not a mapping", c.Pack, n))
		}
		m = Clone(m)
		if a.Role != v1.RoleInit {
			// cluster-init is for the first server only (the ha-etcd
			// preset sets it for all of them); the others join.
			delete(m, "cluster-init")
		}
		if !server {
			c.dropServerOnly(m)
		}
		if len(m) == 0 {
			continue
		}
		data, err := c.file(m)
		if err != nil {
			return nil, err
		}
		out.DropIns[DropInPrefix+n+".yaml"] = data
	}
	return out, nil
}

func (c RancherConfig) dropServerOnly(m map[string]any) {
	for k := range m {
		if slices.Contains(c.ServerOnly, strings.TrimSuffix(k, "+")) {
			delete(m, k)
		}
	}
}

func (c RancherConfig) file(m map[string]any) ([]byte, error) {
	body, err := MarshalYAML(m)
	if err != nil {
		return nil, fmt.Errorf("%s config: %w", c.Pack, err)
	}
	return append([]byte("# Written by the Outpost agent from the "+c.Pack+" layer; it is rewritten at every install and upgrade.\n"), body...), nil
}

// Write puts the rendered files on the host (0600: config.yaml holds the
// join token) and removes drop-ins an earlier render wrote.
func (c RancherConfig) Write(e *Env, r *RenderedConfig) (bool, error) {
	changed, err := e.WriteFile(c.ConfigPath(), r.Config, ModeSecret)
	if err != nil {
		return false, err
	}
	keep := make([]string, 0, len(r.DropIns))
	for name, data := range r.DropIns {
		keep = append(keep, name)
		ch, err := e.WriteFile(path.Join(c.DropInDir(), name), data, ModeSecret)
		if err != nil {
			return false, err
		}
		changed = changed || ch
	}
	removed, err := e.RemoveStale(c.DropInDir(), DropInPrefix+"*.yaml", keep)
	return changed || removed, err
}
