package userdata

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/netip"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	v1 "github.com/outpost-edge/outpost/api/v1"
	"github.com/outpost-edge/outpost/internal/errs"
)

// Defaults applied by Parse (and by SetDefaults for values built in code).
const (
	DefaultProject     = "default"
	DefaultIDPrefix    = "edge-"
	DefaultLocalUIPort = 5080
)

// Network interface types.
const (
	NetworkDHCP   = "dhcp"
	NetworkStatic = "static"
)

// UserData is the site settings file. Every key is optional except hub.url.
type UserData struct {
	Hub          Hub          `yaml:"hub"`
	Registration Registration `yaml:"registration,omitempty"`
	Host         Host         `yaml:"host,omitempty"`
	Network      Network      `yaml:"network,omitempty"`
	// CACerts are extra PEM CA certificates the site trusts (a TLS-inspecting
	// proxy, a private registry); each entry may hold several certificates.
	CACerts    []string `yaml:"caCerts,omitempty"`
	NTPServers []string `yaml:"ntpServers,omitempty"`
	Users      []User   `yaml:"users,omitempty"`
	LocalUI    LocalUI  `yaml:"localUI,omitempty"`
	// Files are written on the host at set-up (motd, a sysctl drop-in, a
	// registry mirror config): what the original product's stages.files did.
	Files []File `yaml:"files,omitempty"`
	// RegistryCredentials log the host's container runtime in to private
	// registries.
	RegistryCredentials []RegistryCredential `yaml:"registryCredentials,omitempty"`
	TUI                 TUI                  `yaml:"tui,omitempty"`
	// BundleKeys are the PEM (PKIX) ed25519 public keys whose signed content
	// bundles the host accepts for air-gapped installs.
	BundleKeys []string `yaml:"bundleKeys,omitempty"`

	// src is the parsed document, kept so that Validate can point at lines.
	src *yaml.Node
}

// Hub says where the hub's agent API is and how to trust it before the
// agent has the hub's CA from enrollment.
type Hub struct {
	// URL is the hub's agent API, e.g. https://hub.example.com:7443.
	URL string `yaml:"url"`
	// CACert (PEM) or CAFile (a path on the host) is the CA to verify the
	// hub with until enrollment pins the one the hub hands out; without
	// either the system pool is used.
	CACert string `yaml:"caCert,omitempty"`
	CAFile string `yaml:"caFile,omitempty"`
	// InsecureSkipVerify trusts any hub certificate at first contact.
	InsecureSkipVerify bool `yaml:"insecureSkipVerify,omitempty"`
}

// Registration says how the host enrolls: with a token it joins the token's
// project at once; without one it waits in Project for approval.
type Registration struct {
	Token   string `yaml:"token,omitempty"`
	Project string `yaml:"project,omitempty"`
	// URL is the QR registration app: the console shows a QR code of it with
	// the host ID, so a site operator can register the host from a phone.
	URL string `yaml:"url,omitempty"`
}

// Host overrides the host's identity and names it.
type Host struct {
	// ID replaces the derived host ID; IDPrefix is not added to it.
	ID string `yaml:"id,omitempty"`
	// IDPrefix goes before a derived ID (serial, UUID, machine-id). A pointer
	// because an explicit "" (no prefix) differs from unset (DefaultIDPrefix).
	IDPrefix *string `yaml:"idPrefix,omitempty"`
	// Name is the display name, sent as the label "name".
	Name   string            `yaml:"name,omitempty"`
	Labels map[string]string `yaml:"labels,omitempty"`
}

// Prefix is IDPrefix or its default.
func (h Host) Prefix() string {
	if h.IDPrefix == nil {
		return DefaultIDPrefix
	}
	return *h.IDPrefix
}

// Network is the host's network set-up.
type Network struct {
	Interfaces map[string]Interface `yaml:"interfaces,omitempty"`
	Proxy      Proxy                `yaml:"proxy,omitempty"`
	// Nameservers are the host-wide DNS servers.
	Nameservers []string `yaml:"nameservers,omitempty"`
}

// Interface configures one NIC.
type Interface struct {
	Type string `yaml:"type"`
	// Address is "10.0.0.5/24" or "10.0.0.5" with Mask.
	Address string `yaml:"address,omitempty"`
	// Mask is a prefix length ("24") or a dotted mask ("255.255.255.0").
	Mask        string   `yaml:"mask,omitempty"`
	Gateway     string   `yaml:"gateway,omitempty"`
	Nameservers []string `yaml:"nameservers,omitempty"`
}

// Prefix is the interface address with its prefix length, from Address and
// Mask together.
func (i Interface) Prefix() (netip.Prefix, error) {
	if strings.Contains(i.Address, "/") {
		p, err := netip.ParsePrefix(i.Address)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("address %q: %w", i.Address, err)
		}
		if i.Mask != "" {
			bits, err := parseMask(i.Mask, p.Addr().Is4())
			if err != nil {
				return netip.Prefix{}, err
			}
			if bits != p.Bits() {
				return netip.Prefix{}, fmt.Errorf("mask %q conflicts with the /%d of address %q", i.Mask, p.Bits(), i.Address)
			}
		}
		return p, nil
	}
	addr, err := netip.ParseAddr(i.Address)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("address %q: %w", i.Address, err)
	}
	if addr.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("address %q: zones are not allowed", i.Address)
	}
	if i.Mask == "" {
		return netip.Prefix{}, fmt.Errorf("address %q has no /prefix and there is no mask", i.Address)
	}
	bits, err := parseMask(i.Mask, addr.Is4())
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(addr, bits), nil
}

// Proxy is the site's outbound proxy, used for the hub and for artifacts.
type Proxy struct {
	HTTPProxy  string `yaml:"httpProxy,omitempty"`
	HTTPSProxy string `yaml:"httpsProxy,omitempty"`
	// NoProxy is a comma-separated list, as in the NO_PROXY variable.
	NoProxy string `yaml:"noProxy,omitempty"`
}

// IsZero reports whether no proxy setting is given.
func (p Proxy) IsZero() bool { return p == Proxy{} }

// User is a local account on the host.
type User struct {
	Name   string   `yaml:"name"`
	Groups []string `yaml:"groups,omitempty"`
	// Passwd is a crypt(3) hash, never a plain password.
	Passwd            string   `yaml:"passwd,omitempty"`
	SSHAuthorizedKeys []string `yaml:"sshAuthorizedKeys,omitempty"`
}

// LocalUI is the local API and UI for disconnected sites.
type LocalUI struct {
	// Enabled is a pointer because unset means on.
	Enabled *bool `yaml:"enabled,omitempty"`
	Port    int   `yaml:"port,omitempty"`
}

// IsEnabled is Enabled or its default (true).
func (l LocalUI) IsEnabled() bool { return l.Enabled == nil || *l.Enabled }

// TUI is the console's text UI.
type TUI struct {
	// Disabled keeps the TUI read-only: it shows the host ID and status but
	// lets nobody at the console change host or network settings.
	Disabled bool `yaml:"disabled,omitempty"`
}

// File is a file written on the host at set-up.
type File struct {
	Path    string `yaml:"path"`
	Content string `yaml:"content,omitempty"`
	// Mode is octal, as chmod takes it ("0644"); default 0644.
	Mode string `yaml:"mode,omitempty"`
	// Owner is "user", "user:group" or numeric "uid:gid"; default root.
	Owner string `yaml:"owner,omitempty"`
}

// RegistryCredential logs in to one container registry.
type RegistryCredential struct {
	// Domain is the registry host, with an optional port and path
	// ("registry.example.com:5000/edge").
	Domain   string `yaml:"domain"`
	Username string `yaml:"username,omitempty"`
	Password string `yaml:"password,omitempty"`
	// Insecure allows plain HTTP or an unverified certificate.
	Insecure bool `yaml:"insecure,omitempty"`
}

// SetDefaults fills in the defaults of unset fields.
func (u *UserData) SetDefaults() {
	if u.Registration.Project == "" {
		u.Registration.Project = DefaultProject
	}
	if u.Host.IDPrefix == nil {
		p := DefaultIDPrefix
		u.Host.IDPrefix = &p
	}
	if u.LocalUI.Port == 0 {
		u.LocalUI.Port = DefaultLocalUIPort
	}
	if u.LocalUI.Enabled == nil {
		on := true
		u.LocalUI.Enabled = &on
	}
}

// Labels are the labels the host asks for at enrollment: host.labels plus
// the display name as the label "name".
func (u *UserData) Labels() map[string]string {
	out := maps.Clone(u.Host.Labels)
	if u.Host.Name != "" {
		if out == nil {
			out = map[string]string{}
		}
		out[v1.LabelName] = u.Host.Name
	}
	return out
}

// Parse reads user-data, applies defaults and validates it. Every problem is
// reported as an errs.FieldList entry naming the key by its path, with the
// line when known; syntax errors come back as one error wrapping
// errs.ErrInvalid.
func Parse(data []byte) (*UserData, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("user-data: %w: %w", errs.ErrInvalid, err)
	}
	u := &UserData{src: &doc}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	err := dec.Decode(u)
	if errors.Is(err, io.EOF) {
		err = nil // an empty file: validation says what is missing
	}
	var te *yaml.TypeError
	if errors.As(err, &te) {
		return nil, typeErrors(&doc, te)
	}
	if err != nil {
		return nil, fmt.Errorf("user-data: %w: %w", errs.ErrInvalid, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("user-data: %w: more than one YAML document", errs.ErrInvalid)
	}
	u.SetDefaults()
	if err := u.Validate(); err != nil {
		return nil, err
	}
	return u, nil
}

// typeErrors turns yaml.v3's "line N: ..." messages into field errors that
// name the key, because a person fixing a file needs the path, not a Go type.
func typeErrors(doc *yaml.Node, te *yaml.TypeError) errs.FieldList {
	idx := indexNodes(doc)
	var out errs.FieldList
	for _, msg := range te.Errors {
		line := 0
		if rest, ok := strings.CutPrefix(msg, "line "); ok {
			if n, after, ok := strings.Cut(rest, ": "); ok {
				if l, err := strconv.Atoi(n); err == nil {
					line, msg = l, after
				}
			}
		}
		field, text := "", msg
		if name, ok := strings.CutPrefix(msg, "field "); ok && strings.Contains(name, " not found in type ") {
			name, _, _ = strings.Cut(name, " not found in type ")
			field, text = idx.keyAt(line, name), "unknown key"
		} else {
			field, text = idx.deepestAt(line), friendlyTypeError(msg)
		}
		if field == "" {
			field = "user-data"
		}
		if line > 0 {
			text = fmt.Sprintf("%s (line %d)", text, line)
		}
		out = append(out, &errs.FieldError{Field: field, Message: text})
	}
	return out
}

func friendlyTypeError(msg string) string {
	got := ""
	if i := strings.IndexByte(msg, '`'); i >= 0 {
		if j := strings.IndexByte(msg[i+1:], '`'); j >= 0 {
			got = msg[i : i+j+2]
		}
	}
	into := msg
	if _, after, ok := strings.Cut(msg, " into "); ok {
		into = after
	}
	var want string
	switch {
	case strings.HasPrefix(into, "int"), strings.HasPrefix(into, "uint"):
		want = "must be a whole number"
	case strings.HasPrefix(into, "bool"), strings.HasPrefix(into, "*bool"):
		want = "must be true or false"
	case strings.HasPrefix(into, "[]"):
		want = "must be a list"
	case strings.HasPrefix(into, "map["), strings.HasPrefix(into, "userdata."):
		want = "must be a mapping"
	case strings.HasPrefix(into, "string"), strings.HasPrefix(into, "*string"):
		want = "must be a string"
	default:
		return msg
	}
	if got != "" {
		return want + ", not " + got
	}
	return want
}

// nodeIndex maps field paths to the lines of a parsed document.
type nodeIndex struct {
	lines   map[string]int
	entries []nodeEntry
}

type nodeEntry struct {
	line int
	key  string // the mapping key, "" for a sequence item
	path string
}

func indexNodes(doc *yaml.Node) *nodeIndex {
	idx := &nodeIndex{lines: map[string]int{}}
	if doc == nil {
		return idx
	}
	var walk func(n *yaml.Node, path string)
	walk = func(n *yaml.Node, path string) {
		switch n.Kind {
		case yaml.DocumentNode:
			for _, c := range n.Content {
				walk(c, path)
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				p := k.Value
				if path != "" {
					p = path + "." + k.Value
				}
				if _, seen := idx.lines[p]; !seen {
					idx.lines[p] = k.Line
				}
				idx.entries = append(idx.entries, nodeEntry{line: k.Line, key: k.Value, path: p})
				walk(v, p)
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				p := fmt.Sprintf("%s[%d]", path, i)
				idx.lines[p] = c.Line
				idx.entries = append(idx.entries, nodeEntry{line: c.Line, path: p})
				walk(c, p)
			}
		}
	}
	walk(doc, "")
	return idx
}

func (idx *nodeIndex) keyAt(line int, key string) string {
	for _, e := range idx.entries {
		if e.line == line && e.key == key {
			return e.path
		}
	}
	return key
}

func (idx *nodeIndex) deepestAt(line int) string {
	best := ""
	for _, e := range idx.entries {
		if e.line == line && len(e.path) > len(best) {
			best = e.path
		}
	}
	return best
}

// lineOf is the line of path or, for a missing key, of its nearest parent.
func (idx *nodeIndex) lineOf(path string) int {
	for p := path; p != ""; {
		if l, ok := idx.lines[p]; ok {
			return l
		}
		i := strings.LastIndexAny(p, ".[")
		if i < 0 {
			break
		}
		p = p[:i]
	}
	return 0
}
