package userdata

import (
	"crypto/ed25519"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"github.com/outpost-edge/outpost/internal/errs"
)

var (
	// reHostID is what the hub accepts as a host name: a DNS label that may
	// also hold dots (serials often do).
	reHostID   = regexp.MustCompile(`^[a-z0-9]([a-z0-9.-]{0,61}[a-z0-9])?$`)
	reIDPrefix = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{0,31}$`)
	reProject  = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	// reLabelKey is a Kubernetes-style key: an optional DNS prefix and "/".
	reLabelKey = regexp.MustCompile(`^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$`)
	reUserName = regexp.MustCompile(`^[a-z_][a-z0-9_-]{0,31}$`)
	reHostname = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$`)
	reCrypt    = regexp.MustCompile(`^\$[0-9a-z]+\$[^\s:]+$`)
)

// sshKeyTypes are the key types OpenSSH accepts in authorized_keys.
var sshKeyTypes = []string{
	"ssh-ed25519", "ssh-rsa", "ssh-dss",
	"ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521",
	"sk-ssh-ed25519@openssh.com", "sk-ecdsa-sha2-nistp256@openssh.com",
}

type validator struct {
	idx  *nodeIndex
	errs errs.FieldList
}

func (v *validator) add(field, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if l := v.idx.lineOf(field); l > 0 {
		msg = fmt.Sprintf("%s (line %d)", msg, l)
	}
	v.errs = append(v.errs, &errs.FieldError{Field: field, Message: msg})
}

// Validate checks every field and returns an errs.FieldList naming each bad
// one, or nil. Unset fields that have defaults are fine.
func (u *UserData) Validate() error {
	v := &validator{idx: indexNodes(u.src)}
	u.validateHub(v)
	u.validateRegistration(v)
	u.validateHost(v)
	u.Network.validate(v)
	for i, c := range u.CACerts {
		if _, err := ParseCertificates(c); err != nil {
			v.add(fmt.Sprintf("caCerts[%d]", i), "%v", err)
		}
	}
	for i, s := range u.NTPServers {
		if !isHostOrIP(s) {
			v.add(fmt.Sprintf("ntpServers[%d]", i), "%q is not a host name or IP address", s)
		}
	}
	seen := map[string]bool{}
	for i, usr := range u.Users {
		usr.validate(v, fmt.Sprintf("users[%d]", i))
		if seen[usr.Name] {
			v.add(fmt.Sprintf("users[%d].name", i), "user %q is given twice", usr.Name)
		}
		seen[usr.Name] = true
	}
	if p := u.LocalUI.Port; p < 0 || p > 65535 {
		v.add("localUI.port", "must be between 1 and 65535, not %d", p)
	}
	u.validateFiles(v)
	u.validateRegistryCredentials(v)
	u.validateBundleKeys(v)
	return v.errs.Err()
}

func (u *UserData) validateHub(v *validator) {
	h := u.Hub
	if h.URL == "" {
		v.add("hub.url", "is required")
	} else if err := checkHubURL(h.URL); err != nil {
		v.add("hub.url", "%v", err)
	}
	if h.CACert != "" && h.CAFile != "" {
		v.add("hub.caFile", "set hub.caCert or hub.caFile, not both")
	}
	if h.CACert != "" {
		if _, err := ParseCertificates(h.CACert); err != nil {
			v.add("hub.caCert", "%v", err)
		}
	}
	if h.CAFile != "" && !path.IsAbs(h.CAFile) {
		v.add("hub.caFile", "must be an absolute path, not %q", h.CAFile)
	}
}

func checkHubURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("%q is not a URL", s)
	}
	if u.Scheme != "https" {
		return fmt.Errorf("must be an https:// URL, not %q", s)
	}
	if u.Hostname() == "" {
		return fmt.Errorf("%q has no host", s)
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("%q has a bad port", s)
		}
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("%q must not carry a user, query or fragment", s)
	}
	return nil
}

func (u *UserData) validateRegistration(v *validator) {
	r := u.Registration
	if strings.ContainsFunc(r.Token, unicode.IsSpace) {
		v.add("registration.token", "must not contain spaces")
	}
	if r.Project != "" && !reProject.MatchString(r.Project) {
		v.add("registration.project", "%q is not a project name (lower-case letters, digits and '-', at most 63)", r.Project)
	}
	if r.URL != "" {
		if err := checkRegistrationURL(r.URL); err != nil {
			v.add("registration.url", "%v", err)
		}
	}
}

// checkRegistrationURL allows a path and query, unlike the hub URL: the
// registration app is a web page whose link may carry a site or tenant.
func checkRegistrationURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("%q is not a URL", s)
	}
	if u.Scheme != "https" {
		return fmt.Errorf("must be an https:// URL, not %q", s)
	}
	if u.Hostname() == "" {
		return fmt.Errorf("%q has no host", s)
	}
	if u.User != nil {
		return fmt.Errorf("%q must not carry a user", s)
	}
	return nil
}

func (u *UserData) validateHost(v *validator) {
	h := u.Host
	if h.ID != "" && !reHostID.MatchString(strings.ToLower(h.ID)) {
		v.add("host.id", "%q is not a host ID (letters, digits, '-' and '.', at most 63, starting and ending with a letter or digit)", h.ID)
	}
	if h.IDPrefix != nil && *h.IDPrefix != "" && !reIDPrefix.MatchString(strings.ToLower(*h.IDPrefix)) {
		v.add("host.idPrefix", "%q is not an ID prefix (letters, digits, '-' and '.', at most 32, starting with a letter or digit)", *h.IDPrefix)
	}
	if h.Name != "" {
		if err := checkLabelValue(h.Name); err != nil {
			v.add("host.name", "%v", err)
		}
	}
	for _, k := range sortedKeys(h.Labels) {
		field := "host.labels." + k
		if !reLabelKey.MatchString(k) {
			v.add(field, "%q is not a label key", k)
		}
		if err := checkLabelValue(h.Labels[k]); err != nil {
			v.add(field, "%v", err)
		}
		if k == "name" && h.Name != "" && h.Labels[k] != h.Name {
			v.add(field, "conflicts with host.name %q (host.name is the label \"name\")", h.Name)
		}
	}
}

func checkLabelValue(s string) error {
	if len(s) > 63 {
		return fmt.Errorf("must be at most 63 characters, not %d", len(s))
	}
	if strings.ContainsFunc(s, unicode.IsControl) {
		return errors.New("must not contain control characters")
	}
	return nil
}

func (n Network) validate(v *validator) {
	for _, name := range sortedKeys(n.Interfaces) {
		n.Interfaces[name].validate(v, name)
	}
	for i, ns := range n.Nameservers {
		if _, err := netip.ParseAddr(ns); err != nil {
			v.add(fmt.Sprintf("network.nameservers[%d]", i), "%q is not an IP address", ns)
		}
	}
	p := n.Proxy
	for _, f := range []struct{ field, val string }{
		{"network.proxy.httpProxy", p.HTTPProxy},
		{"network.proxy.httpsProxy", p.HTTPSProxy},
	} {
		if f.val == "" {
			continue
		}
		if err := checkProxyURL(f.val); err != nil {
			v.add(f.field, "%v", err)
		}
	}
	for _, e := range strings.Split(p.NoProxy, ",") {
		if e = strings.TrimSpace(e); strings.ContainsFunc(e, unicode.IsSpace) {
			v.add("network.proxy.noProxy", "entry %q has a space; separate entries with commas", e)
		}
	}
}

func (i Interface) validate(v *validator, nic string) {
	base := "network.interfaces." + nic
	if len(nic) > 15 || nic == "." || nic == ".." || strings.ContainsAny(nic, "/: \t") {
		v.add(base, "%q is not a network interface name", nic)
	}
	switch i.Type {
	case NetworkDHCP:
		if i.Address != "" || i.Mask != "" || i.Gateway != "" {
			v.add(base, "dhcp takes no address, mask or gateway (use type: static)")
		}
	case NetworkStatic:
		var missing []string
		if i.Address == "" {
			missing = append(missing, "address")
		}
		if i.Mask == "" && !strings.Contains(i.Address, "/") {
			missing = append(missing, "mask")
		}
		if i.Gateway == "" {
			missing = append(missing, "gateway")
		}
		if len(missing) > 0 {
			v.add(base, "static needs address, mask and gateway (missing %s)", strings.Join(missing, ", "))
		}
		i.validateStatic(v, base)
	case "":
		v.add(base+".type", "is required: dhcp or static")
	default:
		v.add(base+".type", "must be dhcp or static, not %q", i.Type)
	}
	for j, ns := range i.Nameservers {
		if _, err := netip.ParseAddr(ns); err != nil {
			v.add(fmt.Sprintf("%s.nameservers[%d]", base, j), "%q is not an IP address", ns)
		}
	}
}

func (i Interface) validateStatic(v *validator, base string) {
	var addr netip.Addr
	if strings.Contains(i.Address, "/") {
		if p, err := netip.ParsePrefix(i.Address); err != nil {
			v.add(base+".address", "%q is not an IP address with a /prefix", i.Address)
		} else {
			addr = p.Addr()
		}
	} else if i.Address != "" {
		if a, err := netip.ParseAddr(i.Address); err != nil || a.Zone() != "" {
			v.add(base+".address", "%q is not an IP address", i.Address)
		} else {
			addr = a
		}
	}
	if addr.IsValid() && i.Mask != "" {
		if _, err := i.Prefix(); err != nil {
			v.add(base+".mask", "%v", err)
		}
	}
	if i.Gateway != "" {
		gw, err := netip.ParseAddr(i.Gateway)
		switch {
		case err != nil:
			v.add(base+".gateway", "%q is not an IP address", i.Gateway)
		case addr.IsValid() && gw.Is4() != addr.Is4():
			v.add(base+".gateway", "%q is not of the same IP family as the address", i.Gateway)
		case addr.IsValid() && gw == addr:
			v.add(base+".gateway", "is the interface's own address")
		}
	}
}

// parseMask reads "24", "/24" or "255.255.255.0" into a prefix length.
func parseMask(mask string, is4 bool) (int, error) {
	maxBits := 128
	if is4 {
		maxBits = 32
	}
	s := strings.TrimPrefix(mask, "/")
	if n, err := strconv.Atoi(s); err == nil {
		if n < 0 || n > maxBits {
			return 0, fmt.Errorf("mask %q must be a prefix length between 0 and %d", mask, maxBits)
		}
		return n, nil
	}
	m, err := netip.ParseAddr(s)
	if err != nil || !m.Is4() || !is4 {
		return 0, fmt.Errorf("mask %q is not a prefix length or a dotted IPv4 mask", mask)
	}
	b := m.As4()
	bits := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	ones := 0
	for bits&(1<<31) != 0 {
		ones++
		bits <<= 1
	}
	if bits != 0 {
		return 0, fmt.Errorf("mask %q is not contiguous", mask)
	}
	return ones, nil
}

func checkProxyURL(s string) error {
	raw := s
	if !strings.Contains(s, "://") {
		// As in HTTP_PROXY, a bare host:port means an HTTP proxy.
		raw = "http://" + s
	}
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("%q is not a URL", s)
	}
	switch u.Scheme {
	case "http", "https", "socks5", "socks5h":
	default:
		return fmt.Errorf("%q: scheme must be http, https or socks5", s)
	}
	if u.Hostname() == "" {
		return fmt.Errorf("%q has no host", s)
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("%q has a bad port", s)
		}
	}
	return nil
}

func isHostOrIP(s string) bool {
	if _, err := netip.ParseAddr(s); err == nil {
		return true
	}
	return len(s) <= 253 && reHostname.MatchString(s)
}

func (usr User) validate(v *validator, base string) {
	if usr.Name == "" {
		v.add(base+".name", "is required")
	} else if !reUserName.MatchString(usr.Name) {
		v.add(base+".name", "%q is not a user name (lower-case letters, digits, '_' and '-', at most 32)", usr.Name)
	}
	for j, g := range usr.Groups {
		if !reUserName.MatchString(g) {
			v.add(fmt.Sprintf("%s.groups[%d]", base, j), "%q is not a group name", g)
		}
	}
	if p := usr.Passwd; p != "" && !strings.HasPrefix(p, "!") && !strings.HasPrefix(p, "*") && !reCrypt.MatchString(p) {
		v.add(base+".passwd", "must be a crypt(3) hash such as the output of `openssl passwd -6`, not a plain password")
	}
	for j, k := range usr.SSHAuthorizedKeys {
		if err := checkAuthorizedKey(k); err != nil {
			v.add(fmt.Sprintf("%s.sshAuthorizedKeys[%d]", base, j), "%v", err)
		}
	}
}

// checkAuthorizedKey checks one authorized_keys line: optional options, a
// key type, then the base64 key.
func checkAuthorizedKey(line string) error {
	line = strings.TrimSpace(line)
	if strings.ContainsAny(line, "\r\n") {
		return errors.New("must be a single line")
	}
	fields := strings.Fields(line)
	for i, f := range fields {
		if !slices.Contains(sshKeyTypes, f) {
			continue
		}
		if i+1 >= len(fields) {
			return fmt.Errorf("%s key has no key data", f)
		}
		if _, err := base64.StdEncoding.DecodeString(fields[i+1]); err != nil {
			return fmt.Errorf("%s key data is not base64", f)
		}
		return nil
	}
	return errors.New("is not an SSH public key (ssh-ed25519, ssh-rsa, ecdsa-sha2-…)")
}

// ParseCertificates reads every certificate of a PEM bundle. Anything else
// in the bundle, or no certificate at all, is an error, because a CA that
// silently fails to load shows up much later as a confusing TLS error.
func ParseCertificates(bundle string) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	rest := []byte(bundle)
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("PEM block %d is a %s, not a CERTIFICATE", len(out)+1, block.Type)
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certificate %d: %w", len(out)+1, err)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, errors.New("holds no PEM certificate")
	}
	if strings.Contains(string(rest), "-----BEGIN") {
		return nil, errors.New("has an incomplete PEM block after the last certificate")
	}
	return out, nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

var (
	reFileMode = regexp.MustCompile(`^0?[0-7]{3,4}$`)
	reOwner    = regexp.MustCompile(`^([a-z_][a-z0-9_-]{0,31}|[0-9]+)(:([a-z_][a-z0-9_-]{0,31}|[0-9]+))?$`)
)

func (u *UserData) validateFiles(v *validator) {
	seen := map[string]bool{}
	for i, f := range u.Files {
		base := fmt.Sprintf("files[%d]", i)
		switch {
		case f.Path == "":
			v.add(base+".path", "is required")
		case !path.IsAbs(f.Path) || path.Clean(f.Path) != f.Path || f.Path == "/":
			v.add(base+".path", "must be a clean absolute file path, not %q", f.Path)
		case seen[f.Path]:
			v.add(base+".path", "%q is given twice", f.Path)
		}
		seen[f.Path] = true
		if f.Mode != "" && !reFileMode.MatchString(f.Mode) {
			v.add(base+".mode", "must be an octal mode such as \"0644\", not %q", f.Mode)
		}
		if f.Owner != "" && !reOwner.MatchString(f.Owner) {
			v.add(base+".owner", "must be \"user\", \"user:group\" or \"uid:gid\", not %q", f.Owner)
		}
	}
}

func (u *UserData) validateRegistryCredentials(v *validator) {
	seen := map[string]bool{}
	for i, c := range u.RegistryCredentials {
		base := fmt.Sprintf("registryCredentials[%d]", i)
		switch {
		case c.Domain == "":
			v.add(base+".domain", "is required")
		case strings.Contains(c.Domain, "://"):
			v.add(base+".domain", "is a registry host[:port][/path] without a scheme, not %q", c.Domain)
		case strings.ContainsFunc(c.Domain, unicode.IsSpace):
			v.add(base+".domain", "must not contain spaces")
		case seen[c.Domain]:
			v.add(base+".domain", "%q is given twice", c.Domain)
		}
		seen[c.Domain] = true
		if c.Password != "" && c.Username == "" {
			v.add(base+".username", "is required with a password")
		}
	}
}

func (u *UserData) validateBundleKeys(v *validator) {
	for i, k := range u.BundleKeys {
		if err := checkBundleKey(k); err != nil {
			v.add(fmt.Sprintf("bundleKeys[%d]", i), "%v", err)
		}
	}
}

// checkBundleKey parses the key here rather than in the bundle package so
// that user-data keeps to the standard library and a bad key is found when
// the file is checked, not when the first bundle arrives.
func checkBundleKey(s string) error {
	block, rest := pem.Decode([]byte(s))
	if block == nil {
		return errors.New("holds no PEM public key")
	}
	if block.Type != "PUBLIC KEY" {
		return fmt.Errorf("is a PEM %s, not a PUBLIC KEY", block.Type)
	}
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return fmt.Errorf("public key: %w", err)
	}
	if _, ok := pub.(ed25519.PublicKey); !ok {
		return errors.New("is not an ed25519 key")
	}
	if strings.TrimSpace(string(rest)) != "" {
		return errors.New("holds more than one PEM block; give each key as its own entry")
	}
	return nil
}
