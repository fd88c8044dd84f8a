package userdata

import (
	"bytes"
	"cmp"
	"compress/gzip"
	"crypto/rand"
	"crypto/sha512"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/outpost-edge/outpost/internal/errs"
)

// The original product's user-data is a cloud-config file: a `stylus:` block
// for its agent, Kairos `stages` for the OS, and an `install:` block for the
// installer. ParseStylus maps what has a counterpart here onto UserData and
// warns about every other key, so a site can move over without anyone
// rewriting its files by hand and nothing is dropped silently.

// DefaultHubPort is the port of the hub's agent API. A paletteEndpoint is a
// bare host name (api.example.com) that the original agent reached on 443;
// our hub's agent listener is on 7443, so a bare endpoint gets this port.
const DefaultHubPort = "7443"

// Warning is a key of a migrated file that was ignored, or whose value was
// changed on the way (a plain password hashed, a port added).
type Warning struct {
	// Path is the key in the original file (stylus.site.hostName).
	Path    string
	Line    int
	Message string
}

func (w Warning) String() string {
	if w.Line > 0 {
		return fmt.Sprintf("%s: %s (line %d)", w.Path, w.Message, w.Line)
	}
	return w.Path + ": " + w.Message
}

// ParseAny reads user-data in either format: the original product's
// cloud-config (see IsStylus) through ParseStylus, anything else through
// Parse. Warnings come only from the original format.
func ParseAny(data []byte) (*UserData, []Warning, error) {
	if IsStylus(data) {
		return ParseStylus(data)
	}
	u, err := Parse(data)
	return u, nil, err
}

// IsStylus reports whether data is the original product's format: it has a
// top-level `stylus:` key, or its first line is the `#cloud-config` header
// and it has no top-level `hub:` key (someone may put the header on one of
// our files out of habit; `hub:` exists only here).
func IsStylus(data []byte) bool {
	data = bytes.TrimPrefix(data, []byte("\ufeff"))
	first, _, _ := bytes.Cut(data, []byte("\n"))
	header := string(bytes.TrimRight(first, " \t\r")) == "#cloud-config"
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		// A broken cloud-config is still one: its own parser says what is wrong.
		return header
	}
	keys := topLevelKeys(&doc)
	if keys["stylus"] {
		return true
	}
	return header && !keys["hub"]
}

func topLevelKeys(doc *yaml.Node) map[string]bool {
	keys := map[string]bool{}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return keys
	}
	m := doc.Content[0]
	for i := 0; i+1 < len(m.Content); i += 2 {
		keys[m.Content[i].Value] = true
	}
	return keys
}

// ParseStylus maps the original product's user-data onto ours, applies our
// defaults and validates the result. Validation errors name our fields, as
// everywhere, and end with the original key and line ("(from
// stylus.site.network.interfaces.eth0.gateway) (line 14)"). Warnings list
// every key that was ignored or changed; they come back with errors too.
func ParseStylus(data []byte) (*UserData, []Warning, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	err := dec.Decode(&doc)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, nil, fmt.Errorf("user-data: %w: %w", errs.ErrInvalid, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, nil, fmt.Errorf("user-data: %w: more than one YAML document", errs.ErrInvalid)
	}
	c := &stylusConv{u: &UserData{}, idx: indexNodes(&doc), origins: map[string]string{}}
	for our, orig := range stylusDefaultOrigins {
		c.origins[our] = orig
	}
	if len(doc.Content) > 0 {
		c.top(doc.Content[0])
	}
	if len(c.errs) > 0 {
		return nil, c.warns, c.errs
	}
	c.u.SetDefaults()
	if err := c.u.Validate(); err != nil {
		var list errs.FieldList
		if errors.As(err, &list) {
			for _, e := range list {
				e.Message += c.from(e.Field)
			}
		}
		return nil, c.warns, err
	}
	return c.u, c.warns, nil
}

// stylusDefaultOrigins name the original key of fields that can be wrong
// while absent ("hub.url: is required").
var stylusDefaultOrigins = map[string]string{
	"hub.url":              "stylus.site.paletteEndpoint",
	"registration.token":   "stylus.site.edgeHostToken",
	"registration.project": "stylus.site.projectName",
	"registration.url":     "stylus.site.registrationURL",
	"host.id":              "stylus.site.name",
	"host.idPrefix":        "stylus.site.prefix",
	"localUI.port":         "stylus.localUI.port",
}

type stylusConv struct {
	u     *UserData
	idx   *nodeIndex
	warns []Warning
	errs  errs.FieldList
	// origins maps our field paths to the original keys, to point
	// validation errors at the line a person has to fix.
	origins map[string]string
}

// pair is one key of a mapping with its original path.
type pair struct {
	key  string // as written
	name string // lower-cased, for matching
	val  *yaml.Node
	path string
}

// pairs lists a mapping's keys. The original agent read its settings as
// JSON, which matches keys without regard to case (paletteEndPoint works as
// well as paletteEndpoint), so keys are matched lower-cased; a key given
// twice keeps the last value, as there.
func (c *stylusConv) pairs(n *yaml.Node, path, our string) []pair {
	if isNull(n) {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		c.typeError(our, path, n, "must be a mapping")
		return nil
	}
	var out []pair
	seen := map[string]string{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i].Value
		p := k
		if path != "" {
			p = path + "." + k
		}
		name := strings.ToLower(k)
		if prev, ok := seen[name]; ok {
			c.warn(p, "%s is given twice (also as %s); the last one is used", k, prev)
		}
		seen[name] = k
		out = append(out, pair{key: k, name: name, val: n.Content[i+1], path: p})
	}
	return out
}

func isNull(n *yaml.Node) bool {
	return n == nil || (n.Kind == yaml.ScalarNode && n.Tag == "!!null")
}

func (c *stylusConv) warn(path, format string, args ...any) {
	c.warns = append(c.warns, Warning{Path: path, Line: c.idx.lines[path], Message: fmt.Sprintf(format, args...)})
}

func (c *stylusConv) ignore(p pair, why string) {
	if why == "" {
		why = "no Outpost equivalent"
	}
	c.warn(p.path, "ignored: %s", why)
}

// typeError reports a value of the wrong shape under our field name, with
// the original key, as validation errors are.
func (c *stylusConv) typeError(our, path string, n *yaml.Node, msg string) {
	if n != nil && n.Kind == yaml.ScalarNode {
		msg += fmt.Sprintf(", not `%s`", n.Value)
	}
	c.errs = append(c.errs, &errs.FieldError{Field: our, Message: msg + c.fromPath(path)})
}

func (c *stylusConv) origin(our, path string) { c.origins[our] = path }

// pendingOrigins holds the origins of an entry whose place in our lists is
// known only at its end: a user given again merges into the first one, a
// file written again replaces the earlier one.
type pendingOrigins struct {
	c     *stylusConv
	saved map[string]string
}

func (c *stylusConv) collectOrigins() *pendingOrigins {
	p := &pendingOrigins{c: c, saved: c.origins}
	c.origins = map[string]string{}
	return p
}

// commit keeps the collected origins, moving those under from to under to;
// commit("", "") drops them.
func (p *pendingOrigins) commit(from, to string) {
	local := p.c.origins
	p.c.origins = p.saved
	if from == "" {
		return
	}
	for k, v := range local {
		if rest, ok := strings.CutPrefix(k, from); ok {
			k = to + rest
		}
		p.c.origins[k] = v
	}
}

// from is the " (from KEY) (line N)" suffix for our field, found by its
// longest prefix that came from the original file.
func (c *stylusConv) from(field string) string {
	for p := field; p != ""; {
		if orig, ok := c.origins[p]; ok {
			if rest := field[len(p):]; strings.HasPrefix(rest, "[") {
				// A list maps item for item: users[0].groups[1] is the
				// second of the original groups.
				if _, ok := c.idx.lines[orig+rest]; ok {
					orig += rest
				}
			}
			return c.fromPath(orig)
		}
		i := strings.LastIndexAny(p, ".[")
		if i < 0 {
			break
		}
		p = p[:i]
	}
	return ""
}

// fromPath ends with "(line N)" as our own errors do, so that tools that
// turn messages into FILE:LINE (outpost build validate) read both alike.
func (c *stylusConv) fromPath(path string) string {
	if path == "" {
		return "" // the document itself: there is no key to name
	}
	if l, ok := c.idx.lines[path]; ok {
		return fmt.Sprintf(" (from %s) (line %d)", path, l)
	}
	return fmt.Sprintf(" (from %s)", path)
}

func (c *stylusConv) str(p pair, our string) (string, bool) {
	n := p.val
	if isNull(n) {
		return "", true
	}
	if n.Kind != yaml.ScalarNode {
		c.typeError(our, p.path, n, "must be a string")
		return "", false
	}
	return n.Value, true
}

func (c *stylusConv) boolean(p pair, our string) (bool, bool) {
	n := p.val
	if isNull(n) {
		return false, true
	}
	if n.Kind == yaml.ScalarNode {
		switch strings.ToLower(n.Value) {
		case "true", "yes", "on":
			return true, true
		case "false", "no", "off":
			return false, true
		}
	}
	c.typeError(our, p.path, n, "must be true or false")
	return false, false
}

func (c *stylusConv) integer(p pair, our string) (int, bool) {
	n := p.val
	if n.Kind == yaml.ScalarNode {
		if v, err := strconv.Atoi(n.Value); err == nil {
			return v, true
		}
	}
	c.typeError(our, p.path, n, "must be a whole number")
	return 0, false
}

// list reads a list of strings. A single string is read as a list split at
// commas: the original documents some lists (ntpServers, nameserver) as
// strings, and files in the field use both.
func (c *stylusConv) list(p pair, our string) ([]string, bool) {
	n := p.val
	switch {
	case isNull(n):
		return nil, true
	case n.Kind == yaml.ScalarNode:
		var out []string
		for _, s := range strings.Split(n.Value, ",") {
			if s = strings.TrimSpace(s); s != "" {
				out = append(out, s)
			}
		}
		return out, true
	case n.Kind == yaml.SequenceNode:
		out := make([]string, 0, len(n.Content))
		for i, item := range n.Content {
			if item.Kind != yaml.ScalarNode {
				c.typeError(fmt.Sprintf("%s[%d]", our, i), fmt.Sprintf("%s[%d]", p.path, i), item, "must be a string")
				return nil, false
			}
			out = append(out, item.Value)
		}
		return out, true
	}
	c.typeError(our, p.path, n, "must be a list")
	return nil, false
}

func (c *stylusConv) top(root *yaml.Node) {
	for _, p := range c.pairs(root, "", "user-data") {
		switch p.name {
		case "stylus":
			c.stylus(p)
		case "stages":
			c.stages(p)
		case "install":
			c.ignore(p, "disk layout, bind mounts and power-off belong to the installer image, not to site settings")
		default:
			c.ignore(p, "not an Outpost setting")
		}
	}
}

func (c *stylusConv) stylus(parent pair) {
	for _, p := range c.pairs(parent.val, parent.path, "user-data") {
		switch p.name {
		case "site":
			c.site(p)
		case "registrycredentials":
			c.registryCredentials(p)
		case "localui":
			for _, q := range c.pairs(p.val, p.path, "localUI") {
				if q.name != "port" {
					c.ignore(q, "")
					continue
				}
				if v, ok := c.integer(q, "localUI.port"); ok {
					c.u.LocalUI.Port = v
					c.origin("localUI.port", q.path)
				}
			}
		case "disabletui":
			if v, ok := c.boolean(p, "tui.disabled"); ok {
				c.u.TUI.Disabled = v
				c.origin("tui.disabled", p.path)
			}
		case "debug", "trace":
			c.ignore(p, "set the log level with `outpost-agent run --log-level debug`")
		case "includetui":
			c.ignore(p, "the TUI is always on; tui.disabled makes it read-only")
		case "installationmode", "managementmode":
			c.ignore(p, "every host is managed by the hub; the local UI (localUI) serves disconnected sites")
		case "externalregistries":
			c.ignore(p, "only stylus.registryCredentials is migrated; list each registry under registryCredentials")
		case "vip":
			c.ignore(p, "the cluster's virtual IP is a cluster setting on the hub")
		default:
			c.ignore(p, "")
		}
	}
}

func (c *stylusConv) site(parent pair) {
	var projectUID pair
	for _, p := range c.pairs(parent.val, parent.path, "user-data") {
		switch p.name {
		case "paletteendpoint":
			if s, ok := c.str(p, "hub.url"); ok && s != "" {
				c.u.Hub.URL = c.hubURL(p, s)
				c.origin("hub.url", p.path)
			}
		case "edgehosttoken":
			if s, ok := c.str(p, "registration.token"); ok {
				c.u.Registration.Token = s
				c.origin("registration.token", p.path)
			}
		case "projectname":
			if s, ok := c.str(p, "registration.project"); ok && s != "" {
				c.u.Registration.Project = c.projectName(p, s)
				c.origin("registration.project", p.path)
			}
		case "projectuid":
			projectUID = p
		case "name":
			if s, ok := c.str(p, "host.id"); ok && s != "" {
				if s == "$random" {
					c.ignore(p, `"$random" IDs are not supported; the host ID is derived from the DMI serial, product UUID or machine-id`)
					continue
				}
				c.u.Host.ID = s
				c.origin("host.id", p.path)
			}
		case "prefix":
			if s, ok := c.str(p, "host.idPrefix"); ok {
				c.u.Host.IDPrefix = new(idPrefix(s))
				c.origin("host.idPrefix", p.path)
			}
		case "tags":
			c.tags(p)
		case "registrationurl":
			if s, ok := c.str(p, "registration.url"); ok {
				c.u.Registration.URL = s
				c.origin("registration.url", p.path)
			}
		case "insecureskipverify":
			if v, ok := c.boolean(p, "hub.insecureSkipVerify"); ok {
				c.u.Hub.InsecureSkipVerify = v
				c.origin("hub.insecureSkipVerify", p.path)
			}
		case "cacerts":
			c.caCerts(p)
		case "ntpservers":
			if l, ok := c.list(p, "ntpServers"); ok {
				c.u.NTPServers = append(c.u.NTPServers, l...)
				c.origin("ntpServers", p.path)
			}
		case "network":
			c.network(p)
		case "users":
			c.users(p)
		case "hostname":
			c.ignore(p, "the node name is the host ID; set it with stylus.site.name")
		case "deviceuidpaths":
			c.ignore(p, "the host ID comes from the DMI serial, then the product UUID, then machine-id; set stylus.site.name for a fixed ID")
		case "tagsfromfile", "tagsfromscript":
			c.ignore(p, "labels are static: list them under tags or set them on the hub")
		case "clusterid", "clustername":
			c.ignore(p, "a host joins a cluster on the hub")
		default:
			c.ignore(p, "")
		}
	}
	if projectUID.val != nil {
		s, ok := c.str(projectUID, "registration.project")
		switch {
		case !ok || s == "":
		case c.u.Registration.Project != "":
			c.ignore(projectUID, "projectName is used")
		default:
			c.u.Registration.Project = strings.ToLower(s)
			c.origin("registration.project", projectUID.path)
			c.warn(projectUID.path, "used as the project name: create a project of that name on the hub, or set projectName")
		}
	}
}

// hubURL turns a paletteEndpoint, usually a bare host name, into the hub's
// agent URL. An endpoint with a scheme is used as given: whoever wrote one
// meant that URL.
func (c *stylusConv) hubURL(p pair, endpoint string) string {
	endpoint = strings.TrimSpace(endpoint)
	if strings.Contains(endpoint, "://") {
		return endpoint
	}
	hostPort, rest, _ := strings.Cut(endpoint, "/")
	if _, _, err := net.SplitHostPort(hostPort); err != nil {
		hostPort = net.JoinHostPort(strings.Trim(hostPort, "[]"), DefaultHubPort)
	}
	u := "https://" + hostPort
	if rest != "" {
		u += "/" + rest
	}
	c.warn(p.path, "read as hub.url %s (the hub's agent port is %s); give a full https:// URL for another port", u, DefaultHubPort)
	return u
}

// projectName lower-cases a project name and turns spaces into dashes: the
// original allowed "Default" and "Edge Sites", our project names are DNS
// labels, and the hub's default project is "default".
func (c *stylusConv) projectName(p pair, s string) string {
	out := strings.ToLower(strings.Join(strings.Fields(s), "-"))
	if out != s {
		c.warn(p.path, "project %q read as %q", s, out)
	}
	return out
}

// idPrefix adds the dash the original put between its prefix and the
// serial ("edge" made edge-<serial>), so hosts keep their IDs.
func idPrefix(s string) string {
	if s == "" || strings.HasSuffix(s, "-") {
		return s
	}
	return s + "-"
}

func (c *stylusConv) tags(parent pair) {
	for _, p := range c.pairs(parent.val, parent.path, "host.labels") {
		if p.val.Kind != yaml.ScalarNode {
			c.ignore(p, "a label value must be a string")
			continue
		}
		if c.u.Host.Labels == nil {
			c.u.Host.Labels = map[string]string{}
		}
		// Keys keep their case here: labels are case-sensitive.
		c.u.Host.Labels[p.key] = p.val.Value
		c.origin("host.labels."+p.key, p.path)
	}
}

// caCerts takes PEM, and also base64 of PEM: the original's documentation
// asks for "base64-encoded" certificates and files in the field have both.
func (c *stylusConv) caCerts(p pair) {
	l, ok := c.list(p, "caCerts")
	if !ok {
		return
	}
	if p.val.Kind == yaml.ScalarNode {
		// A PEM block has no commas, so list's comma split is wrong here.
		l = []string{p.val.Value}
	}
	for i, s := range l {
		if !strings.Contains(s, "-----BEGIN") {
			if der, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(s), "")); err == nil && bytes.Contains(der, []byte("-----BEGIN")) {
				s = string(der)
			}
		}
		c.origin(fmt.Sprintf("caCerts[%d]", len(c.u.CACerts)), fmt.Sprintf("%s[%d]", p.path, i))
		c.u.CACerts = append(c.u.CACerts, s)
	}
}

func (c *stylusConv) network(parent pair) {
	n := &c.u.Network
	for _, p := range c.pairs(parent.val, parent.path, "network") {
		switch p.name {
		case "httpproxy":
			if s, ok := c.str(p, "network.proxy.httpProxy"); ok {
				n.Proxy.HTTPProxy = s
				c.origin("network.proxy.httpProxy", p.path)
			}
		case "httpsproxy":
			if s, ok := c.str(p, "network.proxy.httpsProxy"); ok {
				n.Proxy.HTTPSProxy = s
				c.origin("network.proxy.httpsProxy", p.path)
			}
		case "noproxy":
			if l, ok := c.list(p, "network.proxy.noProxy"); ok {
				n.Proxy.NoProxy = strings.Join(l, ",")
				c.origin("network.proxy.noProxy", p.path)
			}
		case "nameserver", "nameservers":
			if l, ok := c.list(p, "network.nameservers"); ok {
				n.Nameservers = l
				c.origin("network.nameservers", p.path)
			}
		case "interfaces":
			for _, q := range c.pairs(p.val, p.path, "network.interfaces") {
				c.iface(q)
			}
		default:
			c.ignore(p, "")
		}
	}
}

func (c *stylusConv) iface(parent pair) {
	nic := parent.key
	base := "network.interfaces." + nic
	c.origin(base, parent.path)
	var i Interface
	for _, p := range c.pairs(parent.val, parent.path, base) {
		switch p.name {
		case "type":
			if s, ok := c.str(p, base+".type"); ok {
				i.Type = strings.ToLower(s)
				c.origin(base+".type", p.path)
			}
		case "ipaddress", "address":
			if s, ok := c.str(p, base+".address"); ok {
				i.Address = s
				c.origin(base+".address", p.path)
			}
		case "mask":
			if s, ok := c.str(p, base+".mask"); ok {
				i.Mask = s
				c.origin(base+".mask", p.path)
			}
		case "gateway":
			if s, ok := c.str(p, base+".gateway"); ok {
				i.Gateway = s
				c.origin(base+".gateway", p.path)
			}
		case "nameserver", "nameservers":
			if l, ok := c.list(p, base+".nameservers"); ok {
				i.Nameservers = l
				c.origin(base+".nameservers", p.path)
			}
		default:
			c.ignore(p, "")
		}
	}
	if i.Type == "" {
		// The original's default.
		i.Type = NetworkDHCP
	}
	if c.u.Network.Interfaces == nil {
		c.u.Network.Interfaces = map[string]Interface{}
	}
	c.u.Network.Interfaces[nic] = i
}

// registryCredentials takes the original's single object, or a list of them.
func (c *stylusConv) registryCredentials(p pair) {
	items := []*yaml.Node{p.val}
	paths := []string{p.path}
	if p.val.Kind == yaml.SequenceNode {
		items, paths = p.val.Content, nil
		for i := range items {
			paths = append(paths, fmt.Sprintf("%s[%d]", p.path, i))
		}
	}
	for i, item := range items {
		if isNull(item) {
			continue
		}
		idx := len(c.u.RegistryCredentials)
		base := fmt.Sprintf("registryCredentials[%d]", idx)
		c.origin(base, paths[i])
		var rc RegistryCredential
		encoded := false
		for _, q := range c.pairs(item, paths[i], base) {
			switch q.name {
			case "domain":
				if s, ok := c.str(q, base+".domain"); ok {
					rc.Domain = s
					c.origin(base+".domain", q.path)
				}
			case "username":
				if s, ok := c.str(q, base+".username"); ok {
					rc.Username = s
					c.origin(base+".username", q.path)
				}
			case "password":
				if s, ok := c.str(q, base+".password"); ok {
					rc.Password = s
					c.origin(base+".password", q.path)
				}
			case "encodedpassword":
				encoded, _ = c.boolean(q, base+".password")
			case "insecure":
				if v, ok := c.boolean(q, base+".insecure"); ok {
					rc.Insecure = v
				}
			default:
				c.ignore(q, "")
			}
		}
		if encoded && rc.Password != "" {
			dec, err := base64.StdEncoding.DecodeString(rc.Password)
			if err != nil {
				c.errs = append(c.errs, &errs.FieldError{Field: base + ".password", Message: "encodedPassword is set but the password is not base64" + c.from(base+".password")})
				continue
			}
			rc.Password = string(dec)
		}
		c.u.RegistryCredentials = append(c.u.RegistryCredentials, rc)
	}
}

// stages maps the users and files of every Kairos stage. Stages run at
// different points of the OS boot there; here users and files are applied
// once when the host is set up, which is what they are used for.
func (c *stylusConv) stages(parent pair) {
	for _, stage := range c.pairs(parent.val, parent.path, "user-data") {
		if isNull(stage.val) {
			continue
		}
		if stage.val.Kind != yaml.SequenceNode {
			c.ignore(stage, "a stage must be a list of steps")
			continue
		}
		for i, step := range stage.val.Content {
			stepPath := fmt.Sprintf("%s[%d]", stage.path, i)
			c.step(pair{val: step, path: stepPath})
		}
	}
}

func (c *stylusConv) step(parent pair) {
	var cond *pair
	mapped := false
	for _, p := range c.pairs(parent.val, parent.path, "user-data") {
		switch p.name {
		case "name":
			// A label for logs: nothing to carry over.
		case "users":
			c.users(p)
			mapped = true
		case "files":
			c.files(p)
			mapped = true
		case "if":
			cond = &p
		case "commands":
			c.ignore(p, "run commands through the profile's OS layer")
		default:
			c.ignore(p, "only users and files are migrated from stages")
		}
	}
	if cond != nil {
		if mapped {
			c.ignore(*cond, "conditions are not evaluated; the users and files of this step are always applied")
		} else {
			c.ignore(*cond, "")
		}
	}
}

// users reads users keyed by name (Kairos stages) or as a list with a name
// field (stylus.site.users is documented both ways). A user given again
// (in another stage) is merged into the first.
func (c *stylusConv) users(parent pair) {
	type entry struct {
		name string
		val  *yaml.Node
		path string
	}
	var entries []entry
	switch parent.val.Kind {
	case yaml.MappingNode:
		for _, p := range c.pairs(parent.val, parent.path, "users") {
			entries = append(entries, entry{p.key, p.val, p.path})
		}
	case yaml.SequenceNode:
		for i, item := range parent.val.Content {
			entries = append(entries, entry{"", item, fmt.Sprintf("%s[%d]", parent.path, i)})
		}
	default:
		if !isNull(parent.val) {
			c.typeError("users", parent.path, parent.val, "must be a mapping of user names")
		}
		return
	}
	for _, e := range entries {
		c.user(e.name, e.val, e.path)
	}
}

func (c *stylusConv) user(name string, n *yaml.Node, path string) {
	base := fmt.Sprintf("users[%d]", len(c.u.Users))
	local := c.collectOrigins()
	u := User{Name: name}
	var passwd pair
	lock := false
	for _, p := range c.pairs(n, path, base) {
		switch p.name {
		case "name":
			if s, ok := c.str(p, base+".name"); ok && s != "" {
				u.Name = s
			}
		case "passwd", "password":
			passwd = p
		case "groups":
			if l, ok := c.list(p, base+".groups"); ok {
				u.Groups = l
				c.origin(base+".groups", p.path)
			}
		case "ssh_authorized_keys", "sshauthorizedkeys":
			l, ok := c.list(p, base+".sshAuthorizedKeys")
			if !ok {
				continue
			}
			if p.val.Kind == yaml.ScalarNode {
				l = []string{p.val.Value} // keys hold no commas to split at
			}
			for j, k := range l {
				kp := fmt.Sprintf("%s[%d]", p.path, j)
				if prov, _, ok := strings.Cut(k, ":"); ok && (prov == "github" || prov == "gitlab") {
					c.warn(kp, "ignored: keys are not fetched from %s at boot; put the public key itself", prov)
					continue
				}
				c.origin(fmt.Sprintf("%s.sshAuthorizedKeys[%d]", base, len(u.SSHAuthorizedKeys)), kp)
				u.SSHAuthorizedKeys = append(u.SSHAuthorizedKeys, k)
			}
		case "lock_passwd", "lockpasswd":
			lock, _ = c.boolean(p, base+".passwd")
		default:
			c.ignore(p, "")
		}
	}
	if passwd.val != nil {
		if s, ok := c.str(passwd, base+".passwd"); ok {
			u.Passwd = c.hashPassword(passwd, s)
			c.origin(base+".passwd", passwd.path)
		}
	}
	if lock && !strings.HasPrefix(u.Passwd, "!") {
		// A "!" before the hash is how shadow(5) locks a password.
		u.Passwd = "!" + u.Passwd
	}
	if u.Name != "" {
		if j := slices.IndexFunc(c.u.Users, func(o User) bool { return o.Name == u.Name }); j >= 0 {
			// The first entry's keys stay the ones errors point at.
			local.commit("", "")
			c.mergeUser(j, u, path)
			return
		}
	}
	c.origin(base, path)
	c.origin(base+".name", path)
	local.commit(base, base)
	c.u.Users = append(c.u.Users, u)
}

func (c *stylusConv) mergeUser(j int, u User, path string) {
	o := &c.u.Users[j]
	for _, g := range u.Groups {
		if !slices.Contains(o.Groups, g) {
			o.Groups = append(o.Groups, g)
		}
	}
	for _, k := range u.SSHAuthorizedKeys {
		if !slices.Contains(o.SSHAuthorizedKeys, k) {
			o.SSHAuthorizedKeys = append(o.SSHAuthorizedKeys, k)
		}
	}
	if u.Passwd != "" {
		if o.Passwd != "" && o.Passwd != u.Passwd {
			c.warn(path, "user %q is given again: this password replaces the earlier one", u.Name)
		}
		o.Passwd = u.Passwd
	}
}

// hashPassword keeps hashes and locked entries and hashes plain passwords:
// Kairos takes either, we store only hashes.
func (c *stylusConv) hashPassword(p pair, s string) string {
	if s == "" || strings.HasPrefix(s, "$") || strings.HasPrefix(s, "!") || strings.HasPrefix(s, "*") {
		return s
	}
	c.warn(p.path, "plain password stored as a SHA-512 crypt hash; put a hash in the file (`openssl passwd -6`) to keep the password out of it")
	return sha512Crypt(s, randomSalt(), 0)
}

func (c *stylusConv) files(parent pair) {
	if parent.val.Kind != yaml.SequenceNode {
		if !isNull(parent.val) {
			c.typeError("files", parent.path, parent.val, "must be a list")
		}
		return
	}
	for i, item := range parent.val.Content {
		c.file(item, fmt.Sprintf("%s[%d]", parent.path, i))
	}
}

func (c *stylusConv) file(n *yaml.Node, path string) {
	base := fmt.Sprintf("files[%d]", len(c.u.Files))
	local := c.collectOrigins()
	var f File
	var uid, gid, encoding string
	var content pair
	for _, p := range c.pairs(n, path, base) {
		switch p.name {
		case "path":
			if s, ok := c.str(p, base+".path"); ok {
				f.Path = s
				c.origin(base+".path", p.path)
			}
		case "content":
			content = p
		case "encoding":
			encoding, _ = c.str(p, base+".content")
		case "permissions":
			if m, ok := c.fileMode(p, base+".mode"); ok {
				f.Mode = m
				c.origin(base+".mode", p.path)
			}
		case "owner":
			uid, _ = c.str(p, base+".owner")
			c.origin(base+".owner", p.path)
		case "group":
			gid, _ = c.str(p, base+".owner")
		case "owner_string", "ownerstring":
			if s, ok := c.str(p, base+".owner"); ok {
				f.Owner = s
				c.origin(base+".owner", p.path)
			}
		default:
			c.ignore(p, "")
		}
	}
	if f.Owner == "" && (uid != "" || gid != "") {
		// Numeric IDs as Kairos has them; an unset one is root's.
		f.Owner = cmp.Or(uid, "0")
		if gid != "" {
			f.Owner += ":" + gid
		}
	}
	if content.val != nil {
		if s, ok := c.str(content, base+".content"); ok {
			dec, err := decodeContent(s, encoding)
			if err != nil {
				local.commit("", "")
				c.errs = append(c.errs, &errs.FieldError{Field: base + ".content", Message: err.Error() + c.fromPath(content.path)})
				return
			}
			f.Content = dec
		}
	}
	if j := slices.IndexFunc(c.u.Files, func(o File) bool { return o.Path == f.Path }); j >= 0 && f.Path != "" {
		c.warn(path, "%s is written again: this content replaces the earlier one", f.Path)
		c.origin(base, path)
		local.commit(base, fmt.Sprintf("files[%d]", j))
		c.u.Files[j] = f
		return
	}
	c.origin(base, path)
	local.commit(base, base)
	c.u.Files = append(c.u.Files, f)
}

// fileMode reads Kairos permissions, an integer as YAML reads it: 0644 is
// octal, 420 decimal, 0o644 octal.
func (c *stylusConv) fileMode(p pair, our string) (string, bool) {
	if p.val.Kind == yaml.ScalarNode {
		s := strings.Replace(p.val.Value, "0o", "0", 1)
		if v, err := strconv.ParseUint(s, 0, 32); err == nil && v <= 0o7777 {
			return fmt.Sprintf("%04o", v), true
		}
	}
	c.typeError(our, p.path, p.val, "must be a file mode such as 0644")
	return "", false
}

// decodeContent undoes a Kairos file encoding.
func decodeContent(s, encoding string) (string, error) {
	data := []byte(s)
	enc := strings.ToLower(encoding)
	if strings.HasSuffix(enc, "b64") || strings.HasSuffix(enc, "base64") {
		var err error
		if data, err = base64.StdEncoding.DecodeString(strings.Join(strings.Fields(s), "")); err != nil {
			return "", fmt.Errorf("encoding %s: content is not base64: %w", encoding, err)
		}
		enc = strings.TrimRight(strings.TrimSuffix(strings.TrimSuffix(enc, "b64"), "base64"), "+")
	}
	switch enc {
	case "":
	case "gz", "gzip":
		zr, err := gzip.NewReader(bytes.NewReader(data))
		if err != nil {
			return "", fmt.Errorf("encoding %s: %w", encoding, err)
		}
		if data, err = io.ReadAll(io.LimitReader(zr, 16<<20)); err != nil {
			return "", fmt.Errorf("encoding %s: %w", encoding, err)
		}
	default:
		return "", fmt.Errorf("encoding %q is not supported (use b64, gz or gz+b64)", encoding)
	}
	return string(data), nil
}

// sha512Crypt is the SHA-512 crypt(3) of Ulrich Drepper's specification
// ("$6$"), as `openssl passwd -6` and glibc make it. rounds 0 means the
// default 5000, which is then left out of the result.
func sha512Crypt(password, salt string, rounds int) string {
	const defaultRounds = 5000
	if len(salt) > 16 {
		salt = salt[:16]
	}
	r := rounds
	if r == 0 {
		r = defaultRounds
	}
	r = min(max(r, 1000), 999999999)
	pw, sb := []byte(password), []byte(salt)

	h := sha512.New()
	h.Write(pw)
	h.Write(sb)
	h.Write(pw)
	b := h.Sum(nil)

	h.Reset()
	h.Write(pw)
	h.Write(sb)
	h.Write(repeatTo(b, len(pw)))
	for n := len(pw); n > 0; n >>= 1 {
		if n&1 != 0 {
			h.Write(b)
		} else {
			h.Write(pw)
		}
	}
	a := h.Sum(nil)

	h.Reset()
	for range len(pw) {
		h.Write(pw)
	}
	p := repeatTo(h.Sum(nil), len(pw))

	h.Reset()
	for range 16 + int(a[0]) {
		h.Write(sb)
	}
	s := repeatTo(h.Sum(nil), len(sb))

	cur := a
	for i := range r {
		h.Reset()
		if i&1 != 0 {
			h.Write(p)
		} else {
			h.Write(cur)
		}
		if i%3 != 0 {
			h.Write(s)
		}
		if i%7 != 0 {
			h.Write(p)
		}
		if i&1 != 0 {
			h.Write(cur)
		} else {
			h.Write(p)
		}
		cur = h.Sum(nil)
	}

	var out strings.Builder
	out.WriteString("$6$")
	if rounds != 0 {
		fmt.Fprintf(&out, "rounds=%d$", r)
	}
	out.WriteString(salt)
	out.WriteByte('$')
	b64 := func(b2, b1, b0 byte, n int) {
		w := uint(b2)<<16 | uint(b1)<<8 | uint(b0)
		for range n {
			out.WriteByte(cryptAlphabet[w&0x3f])
			w >>= 6
		}
	}
	for i := range 21 {
		x, y, z := cur[i], cur[i+21], cur[i+42]
		switch i % 3 {
		case 0:
			b64(x, y, z, 4)
		case 1:
			b64(y, z, x, 4)
		case 2:
			b64(z, x, y, 4)
		}
	}
	b64(0, 0, cur[63], 2)
	return out.String()
}

const cryptAlphabet = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

func repeatTo(b []byte, n int) []byte {
	out := make([]byte, 0, n)
	for len(out) < n {
		out = append(out, b[:min(len(b), n-len(out))]...)
	}
	return out
}

// randomSalt is 16 characters (the most SHA-crypt uses) of base32, whose
// alphabet is inside crypt's.
func randomSalt() string { return rand.Text()[:16] }
