package cli

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	v1 "github.com/outpost-edge/outpost/api/v1"
)

// labelChanges are the arguments of "hosts label", kubectl style.
type labelChanges struct {
	Set    map[string]string
	Remove []string
}

// parseLabelArgs parses "k=v" (set) and "k-" (remove) arguments.
func parseLabelArgs(args []string) (labelChanges, error) {
	ch := labelChanges{Set: map[string]string{}}
	for _, a := range args {
		if k, v, ok := strings.Cut(a, "="); ok {
			if err := checkLabelKey(a, k); err != nil {
				return ch, err
			}
			if slices.Contains(ch.Remove, k) {
				return ch, fmt.Errorf("label %q is both set and removed", k)
			}
			if old, dup := ch.Set[k]; dup && old != v {
				return ch, fmt.Errorf("label %q is set twice", k)
			}
			ch.Set[k] = v
			continue
		}
		if k, ok := strings.CutSuffix(a, "-"); ok {
			if err := checkLabelKey(a, k); err != nil {
				return ch, err
			}
			if _, set := ch.Set[k]; set {
				return ch, fmt.Errorf("label %q is both set and removed", k)
			}
			if !slices.Contains(ch.Remove, k) {
				ch.Remove = append(ch.Remove, k)
			}
			continue
		}
		return ch, fmt.Errorf("label %q: want key=value to set it or key- to remove it", a)
	}
	if len(ch.Set) == 0 && len(ch.Remove) == 0 {
		return ch, errors.New("no label changes: give key=value or key- arguments")
	}
	return ch, nil
}

// parseLabelSet parses repeated --label key=value flags.
func parseLabelSet(args []string) (map[string]string, error) {
	if len(args) == 0 {
		return nil, nil
	}
	set := make(map[string]string, len(args))
	for _, a := range args {
		k, v, ok := strings.Cut(a, "=")
		if !ok {
			return nil, fmt.Errorf("label %q: want key=value", a)
		}
		if err := checkLabelKey(a, k); err != nil {
			return nil, err
		}
		if old, dup := set[k]; dup && old != v {
			return nil, fmt.Errorf("label %q is set twice", k)
		}
		set[k] = v
	}
	return set, nil
}

// checkLabelKey rejects keys that cannot be right whatever the hub's rules
// are (it validates the rest), so typos fail before a round trip.
func checkLabelKey(arg, key string) error {
	if key == "" {
		return fmt.Errorf("label %q: empty key", arg)
	}
	if i := strings.IndexFunc(key, func(r rune) bool { return unicode.IsSpace(r) || r == ',' || r == '=' || r == '!' }); i >= 0 {
		return fmt.Errorf("label %q: key must not contain %q", arg, key[i:i+1])
	}
	return nil
}

// parseSelector checks a label selector ("k=v,k2!=v2,k3,!k4") the way the
// hub reads it and returns it without the spaces people type after commas.
// Only keys are checked here: label values may hold any printable text.
func parseSelector(s string) (string, error) {
	var terms []string
	for t := range strings.SplitSeq(s, ",") {
		t = strings.TrimSpace(t)
		if t == "" {
			continue // the hub skips empty terms too
		}
		var key, rest string
		switch {
		case strings.Contains(t, "!="):
			k, v, _ := strings.Cut(t, "!=")
			key, rest = strings.TrimSpace(k), "!="+strings.TrimSpace(v)
		case strings.Contains(t, "=="):
			k, v, _ := strings.Cut(t, "==")
			key, rest = strings.TrimSpace(k), "=="+strings.TrimSpace(v)
		case strings.Contains(t, "="):
			k, v, _ := strings.Cut(t, "=")
			key, rest = strings.TrimSpace(k), "="+strings.TrimSpace(v)
		case strings.HasPrefix(t, "!"):
			key = strings.TrimSpace(t[1:])
			t = "!" + key
		default:
			key = t
		}
		if key == "" || strings.ContainsFunc(key, unicode.IsSpace) || strings.ContainsAny(key, "=!") {
			return "", fmt.Errorf("selector %q: bad key in %q", s, t)
		}
		if rest != "" {
			t = key + rest
		}
		terms = append(terms, t)
	}
	return strings.Join(terms, ","), nil
}

var daysRE = regexp.MustCompile(`^(\d+)d(.*)$`)

// parseExpiry turns --expires into a time: a duration from now ("24h",
// "90m", "7d", "1d12h"), an RFC 3339 time, or a date (midnight UTC).
// Empty and "never" mean no expiry.
func parseExpiry(s string, now time.Time) (*time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" || s == "never" {
		return nil, nil
	}
	var t time.Time
	if d, err := parseDuration(s); err == nil {
		if d <= 0 {
			return nil, fmt.Errorf("expiry %q: must be in the future", s)
		}
		// Whole seconds: sub-second expiry precision only clutters output.
		t = now.Add(d).UTC().Truncate(time.Second)
	} else if t, err = time.Parse(time.RFC3339Nano, s); err == nil {
		t = t.UTC()
	} else if t, err = time.Parse(time.DateOnly, s); err != nil {
		return nil, fmt.Errorf("expiry %q: want a duration (24h, 7d) or a time (2030-01-02T15:04:05Z)", s)
	}
	if !t.After(now) {
		return nil, fmt.Errorf("expiry %q: must be in the future", s)
	}
	return &t, nil
}

// parseDuration is time.ParseDuration plus a leading day count, which token
// lifetimes are usually measured in.
func parseDuration(s string) (time.Duration, error) {
	m := daysRE.FindStringSubmatch(s)
	if m == nil {
		return time.ParseDuration(s)
	}
	days, err := strconv.Atoi(m[1])
	if err != nil || days > 100*365 {
		return 0, fmt.Errorf("bad day count %q", m[1])
	}
	d := time.Duration(days) * 24 * time.Hour
	if m[2] != "" {
		rest, err := time.ParseDuration(m[2])
		if err != nil {
			return 0, err
		}
		d += rest
	}
	return d, nil
}

// parseRoles parses repeated --role PROJECT=ROLE flags; "*" as the project
// grants the role in every project.
func parseRoles(args []string) ([]v1.ProjectRole, error) {
	var roles []v1.ProjectRole
	for _, a := range args {
		p, r, ok := strings.Cut(a, "=")
		p, r = strings.TrimSpace(p), strings.TrimSpace(r)
		if !ok || p == "" || r == "" {
			return nil, fmt.Errorf("role %q: want PROJECT=ROLE, e.g. default=viewer or '*=admin'", a)
		}
		if slices.ContainsFunc(roles, func(x v1.ProjectRole) bool { return x.Project == p }) {
			return nil, fmt.Errorf("role %q: project %q given twice", a, p)
		}
		roles = append(roles, v1.ProjectRole{Project: p, Role: r})
	}
	if len(roles) == 0 {
		return nil, errors.New("no roles: give at least one --role PROJECT=ROLE")
	}
	return roles, nil
}

// kindAliases lets people type what they say ("host/edge-1") for the kinds
// events are about.
var kindAliases = map[string]string{
	"host":               v1.KindEdgeHost,
	"hosts":              v1.KindEdgeHost,
	"edgehost":           v1.KindEdgeHost,
	"project":            v1.KindProject,
	"token":              v1.KindRegistrationToken,
	"registrationtoken":  v1.KindRegistrationToken,
	"apitoken":           v1.KindAPIToken,
	"registrationtokens": v1.KindRegistrationToken,
}

// parseObjectRef checks an --object "Kind/name" and spells the kind as the
// hub does.
func parseObjectRef(s string) (string, error) {
	if s == "" {
		return "", nil
	}
	kind, name, ok := strings.Cut(s, "/")
	if !ok || kind == "" || name == "" {
		return "", fmt.Errorf("object %q: want Kind/name, e.g. EdgeHost/edge-1", s)
	}
	if k, ok := kindAliases[strings.ToLower(kind)]; ok {
		kind = k
	}
	return kind + "/" + name, nil
}

// normalize returns the value of known that equals s ignoring case, so
// "--state ready" works; unknown values pass through for the hub to judge.
func normalize(s string, known ...string) string {
	for _, k := range known {
		if strings.EqualFold(s, k) {
			return k
		}
	}
	return s
}

var hostStates = []string{v1.HostUnpaired, v1.HostPendingApproval, v1.HostReady, v1.HostInUse}
var hostHealths = []string{v1.HealthUnknown, v1.HealthHealthy, v1.HealthUnhealthy, v1.HealthOffline}
