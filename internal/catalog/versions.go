package catalog

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/Masterminds/semver/v3"

	v1 "github.com/outpost-edge/outpost/api/v1"
	"github.com/outpost-edge/outpost/internal/errs"
)

// candidate is one available version, parsed once.
type candidate struct {
	raw        string
	v          *semver.Version
	deprecated bool
	index      int // into the caller's slice
}

// query is what a want string asks for: a pin or a constraint (a train).
type query struct {
	pin  *semver.Version
	cons *semver.Constraints
}

// parseVersion parses a pack version: MAJOR.MINOR.PATCH with optional
// -prerelease and +build metadata. A leading v and leading zeros are
// tolerated because upstreams use them (Calico's chart v3.28.2, Ubuntu's
// 24.04.2). All three numbers are required: "1.30" is a train, never a
// version, so a pack cannot offer something that reads like one.
func parseVersion(s string) (*semver.Version, error) {
	core := strings.TrimPrefix(s, "v")
	if i := strings.IndexAny(core, "-+"); i >= 0 {
		core = core[:i]
	}
	parts := strings.Split(core, ".")
	if len(parts) != 3 {
		return nil, fmt.Errorf("%q is not MAJOR.MINOR.PATCH", s)
	}
	for _, p := range parts {
		if p == "" || strings.Trim(p, "0123456789") != "" {
			return nil, fmt.Errorf("%q is not MAJOR.MINOR.PATCH", s)
		}
	}
	v, err := semver.NewVersion(s)
	if err != nil {
		return nil, fmt.Errorf("%q is not a semantic version: %w", s, err)
	}
	return v, nil
}

// compareVersions orders by semver precedence and then by build metadata.
// Semver says build metadata does not take part in precedence, but distros
// re-release one Kubernetes patch as 1.30.2+k3s1, 1.30.2+k3s2 (rke2r1,
// rke2r2): the later build must win. Metadata is compared naturally (runs
// of digits as numbers) so that k3s10 is newer than k3s9.
func compareVersions(a, b *semver.Version) int {
	if c := a.Compare(b); c != 0 {
		return c
	}
	return compareNatural(a.Metadata(), b.Metadata())
}

// compareNatural compares strings run by run: digit runs by value, other
// runs byte-wise; digits sort before letters, as in semver prerelease
// identifiers. A string that is a prefix of the other is older, so a
// version without build metadata is older than the same one with it.
func compareNatural(a, b string) int {
	for a != "" && b != "" {
		ra, restA := nextRun(a)
		rb, restB := nextRun(b)
		da, db := isDigit(ra[0]), isDigit(rb[0])
		switch {
		case da && db:
			// Compare by length after leading zeros, then lexically: the
			// numbers may not fit in any integer type.
			ta, tb := strings.TrimLeft(ra, "0"), strings.TrimLeft(rb, "0")
			if c := cmp.Compare(len(ta), len(tb)); c != 0 {
				return c
			}
			if c := strings.Compare(ta, tb); c != 0 {
				return c
			}
		case da != db:
			if da {
				return -1
			}
			return 1
		default:
			if c := strings.Compare(ra, rb); c != 0 {
				return c
			}
		}
		a, b = restA, restB
	}
	return cmp.Compare(len(a), len(b))
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// nextRun splits s (not empty) after its first run of digits or non-digits.
func nextRun(s string) (run, rest string) {
	d := isDigit(s[0])
	i := 1
	for i < len(s) && isDigit(s[i]) == d {
		i++
	}
	return s[:i], s[i:]
}

// better reports whether a should be chosen over b. Beyond compareVersions
// it breaks ties on the text (v1.2.3 against 1.2.3, k3s01 against k3s1) so
// that the choice never depends on the order versions are listed in.
func better(a, b candidate) bool {
	if c := compareVersions(a.v, b.v); c != 0 {
		return c > 0
	}
	return a.raw > b.raw
}

// Newer reports whether version a is newer than version b: semver
// precedence, then build metadata (1.30.4+k3s2 is newer than 1.30.4+k3s1).
// A string that is not a version is never newer than anything, and
// anything that is a version is newer than it.
func Newer(a, b string) bool {
	va, errA := parseVersion(a)
	vb, errB := parseVersion(b)
	switch {
	case errA != nil:
		return false
	case errB != nil:
		return true
	}
	return compareVersions(va, vb) > 0
}

// SortVersions sorts versions newest first. Strings that are not versions
// go last, in their given order.
func SortVersions(versions []string) {
	slices.SortStableFunc(versions, func(a, b string) int {
		switch {
		case Newer(a, b):
			return -1
		case Newer(b, a):
			return 1
		}
		return 0
	})
}

// IsTrain reports whether want follows a train — its result can move when a
// registry gains versions — rather than pinning one version. Trains are
// "", "latest", "x" and "*" (newest), partial versions ("1", "1.30"), x
// trains ("1.x", "1.30.x") and semver ranges (">=1.29 <1.31", "~1.30").
// A full version (1.30.4, v1.30.4+k3s1) is a pin; a string that is neither
// is not a train.
func IsTrain(want string) bool {
	q, err := parseWant(strings.TrimSpace(want))
	return err == nil && q.pin == nil
}

// parseWant classifies want (already trimmed).
func parseWant(want string) (query, error) {
	switch strings.ToLower(want) {
	case "", "latest", "x", "*":
		want = "*"
	}
	if v, err := parseVersion(want); err == nil {
		return query{pin: v}, nil
	}
	c, err := semver.NewConstraint(want)
	if err != nil {
		return query{}, err
	}
	return query{cons: c}, nil
}

// Resolve picks the version of available that want names:
//
//   - a pin: 1.30.4+k3s1 (a leading v is fine). A pin without build metadata
//     (1.30.4) that is not itself available picks the newest build of that
//     version (1.30.4+k3s2 over 1.30.4+k3s1).
//   - a train: 1.x (the newest 1.*.*), 1.30.x or 1.30 (the newest 1.30.*),
//     "x", "*", "latest" or "" (the newest of all), or a semver range
//     (">=1.29 <1.31", "~1.30.2", "^1.2").
//
// Build metadata breaks ties (see Newer). A train never picks a prerelease
// (1.31.0-rc1+k3s1) unless it names one itself (1.31.x-0, >=1.31.0-rc.1).
// Resolve knows nothing of deprecation: ResolvePack does.
//
// Strings in available that are not versions are ignored. The error names
// what was asked and what exists, and is an errs.ErrNotFound (nothing
// matches) or an errs.ErrInvalid (want is not a version, train or range).
func Resolve(available []string, want string) (string, error) {
	cands := make([]candidate, 0, len(available))
	for i, s := range available {
		if v, err := parseVersion(s); err == nil {
			cands = append(cands, candidate{raw: s, v: v, index: i})
		}
	}
	c, err := resolve(cands, want)
	if err != nil {
		return "", err
	}
	return c.raw, nil
}

// ResolvePack is Resolve over a pack's versions, with deprecation: trains
// skip deprecated versions, and a pin may still name one, because a profile
// that worked must keep working after its version is deprecated. It returns
// a pointer into p.Versions.
func ResolvePack(p *v1.PackSpec, want string) (*v1.PackVersion, error) {
	cands := make([]candidate, 0, len(p.Versions))
	for i, pv := range p.Versions {
		if v, err := parseVersion(pv.Version); err == nil {
			cands = append(cands, candidate{raw: pv.Version, v: v, deprecated: pv.Deprecated, index: i})
		}
	}
	c, err := resolve(cands, want)
	if err != nil {
		return nil, fmt.Errorf("pack %s: %w", p.Name, err)
	}
	return &p.Versions[c.index], nil
}

func resolve(cands []candidate, want string) (candidate, error) {
	want = strings.TrimSpace(want)
	q, err := parseWant(want)
	if err != nil {
		return candidate{}, fmt.Errorf("version %q is not a version (1.30.4+k3s1), a train (1.x, 1.30.x, latest) or a range (>=1.29 <1.31): %w", want, errs.ErrInvalid)
	}
	if q.pin != nil {
		return resolvePin(cands, want, q.pin)
	}
	return resolveTrain(cands, want, q.cons)
}

func resolvePin(cands []candidate, want string, pin *semver.Version) (candidate, error) {
	var exact, builds []candidate
	for _, c := range cands {
		if c.v.Compare(pin) != 0 {
			continue
		}
		if c.v.Metadata() == pin.Metadata() {
			exact = append(exact, c)
		} else {
			builds = append(builds, c)
		}
	}
	// Several exact matches differ only in spelling (v1.2.3, 1.2.3): prefer
	// the one spelled as asked.
	for _, c := range exact {
		if c.raw == want {
			return c, nil
		}
	}
	if len(exact) > 0 {
		return pick(exact, false), nil
	}
	if pin.Metadata() == "" && len(builds) > 0 {
		// A pin is a pin even on a deprecated build; only when there is a
		// choice does a live build win over a deprecated one.
		return pick(builds, true), nil
	}
	e := &NoMatchError{Want: want, Pin: true, Available: rawOf(cands)}
	if len(builds) > 0 {
		e.Hint = "the same version with other build metadata: " + list(rawOf(builds), 5)
	}
	return candidate{}, e
}

func resolveTrain(cands []candidate, want string, cons *semver.Constraints) (candidate, error) {
	var match, deprecated []candidate
	for _, c := range cands {
		if !cons.Check(c.v) {
			continue
		}
		if c.deprecated {
			deprecated = append(deprecated, c)
		} else {
			match = append(match, c)
		}
	}
	if len(match) > 0 {
		return pick(match, false), nil
	}
	e := &NoMatchError{Want: want, Available: rawOf(cands)}
	switch {
	case len(deprecated) > 0:
		e.Hint = "only deprecated versions are on it (pin one to use it): " + list(rawOf(deprecated), 5)
	default:
		withPre := *cons
		withPre.IncludePrerelease = true
		var pre []candidate
		for _, c := range cands {
			if c.v.Prerelease() == "" {
				continue
			}
			// 1.31.0-rc1 is below the floor of 1.31.x, yet it is what
			// someone asking for 1.31.x before 1.31.0 is out is after.
			release := semver.New(c.v.Major(), c.v.Minor(), c.v.Patch(), "", "")
			if withPre.Check(c.v) || cons.Check(release) {
				pre = append(pre, c)
			}
		}
		if len(pre) > 0 {
			e.Hint = "only prereleases are on it, and a train takes one only when it names a prerelease itself (1.31.x-0, >=1.31.0-rc.1): " + list(rawOf(pre), 5)
		}
	}
	return candidate{}, e
}

// pick returns the best candidate; with preferLive, a deprecated one only
// when all are.
func pick(cs []candidate, preferLive bool) candidate {
	best := cs[0]
	for _, c := range cs[1:] {
		if preferLive && c.deprecated != best.deprecated {
			if !c.deprecated {
				best = c
			}
			continue
		}
		if better(c, best) {
			best = c
		}
	}
	return best
}

// rawOf returns the candidates' versions newest first.
func rawOf(cs []candidate) []string {
	sorted := slices.Clone(cs)
	slices.SortFunc(sorted, func(a, b candidate) int {
		if better(a, b) {
			return -1
		}
		if better(b, a) {
			return 1
		}
		return 0
	})
	out := make([]string, len(sorted))
	for i, c := range sorted {
		out[i] = c.raw
	}
	return out
}

// list joins at most n versions; a Helm repository can have hundreds.
func list(vs []string, n int) string {
	if len(vs) == 0 {
		return "none"
	}
	if len(vs) <= n {
		return strings.Join(vs, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(vs[:n], ", "), len(vs)-n)
}

// NoMatchError says that no available version matches what was asked for.
// It is an errs.ErrNotFound.
type NoMatchError struct {
	// Want is what was asked for; Pin says whether it was a pin.
	Want string
	Pin  bool
	// Available are the versions there are, newest first.
	Available []string
	// Hint, when set, says why near misses did not count.
	Hint string
}

func (e *NoMatchError) Error() string {
	var b strings.Builder
	if e.Pin {
		fmt.Fprintf(&b, "version %s does not exist", e.Want)
	} else {
		fmt.Fprintf(&b, "no version is on the train %q", e.Want)
	}
	fmt.Fprintf(&b, " (available: %s)", list(e.Available, 10))
	if e.Hint != "" {
		b.WriteString("; " + e.Hint)
	}
	return b.String()
}

func (e *NoMatchError) Unwrap() error { return errs.ErrNotFound }
