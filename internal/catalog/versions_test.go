package catalog

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	v1 "github.com/outpost-edge/outpost/api/v1"
	"github.com/outpost-edge/outpost/internal/errs"
)

var k3sAvail = []string{
	"1.29.8+k3s1",
	"1.30.2+k3s1", "1.30.2+k3s2",
	"1.30.4+k3s1",
	"1.31.0-rc1+k3s1",
	"1.31.1+k3s1", "1.31.1+k3s2", "1.31.1+k3s10", "1.31.1+k3s9",
}

func TestResolve(t *testing.T) {
	tests := []struct {
		name      string
		available []string
		want      string
		got       string
		err       error  // errs sentinel the error must be
		errHas    string // and text it must contain
	}{
		// Pins.
		{"exact pin", k3sAvail, "1.30.4+k3s1", "1.30.4+k3s1", nil, ""},
		{"pin with v", k3sAvail, "v1.30.4+k3s1", "1.30.4+k3s1", nil, ""},
		{"pin without v against v", []string{"v3.28.2", "v3.29.1"}, "3.28.2", "v3.28.2", nil, ""},
		{"pin spaces trimmed", k3sAvail, " 1.30.4+k3s1 ", "1.30.4+k3s1", nil, ""},
		{"pin of an older build", k3sAvail, "1.30.2+k3s1", "1.30.2+k3s1", nil, ""},
		{"pin without metadata takes the newest build", k3sAvail, "1.30.2", "1.30.2+k3s2", nil, ""},
		{"pin without metadata: k3s10 beats k3s9", k3sAvail, "1.31.1", "1.31.1+k3s10", nil, ""},
		{"pin without metadata prefers the exact version", []string{"1.30.4+k3s1", "1.30.4"}, "1.30.4", "1.30.4", nil, ""},
		{"pin of a prerelease", k3sAvail, "1.31.0-rc1+k3s1", "1.31.0-rc1+k3s1", nil, ""},
		{"pin that does not exist", k3sAvail, "1.30.5+k3s1", "", errs.ErrNotFound, `version 1.30.5+k3s1 does not exist (available: 1.31.1+k3s10, 1.31.1+k3s9, 1.31.1+k3s2, 1.31.1+k3s1, 1.31.0-rc1+k3s1, 1.30.4+k3s1, 1.30.2+k3s2, 1.30.2+k3s1, 1.29.8+k3s1)`},
		{"pin with other build metadata", k3sAvail, "1.30.2+k3s3", "", errs.ErrNotFound, "the same version with other build metadata: 1.30.2+k3s2, 1.30.2+k3s1"},
		{"pin on nothing", nil, "1.0.0", "", errs.ErrNotFound, "(available: none)"},
		{"leading zeros: pin", []string{"22.04.5", "24.04.2"}, "24.4.2", "24.04.2", nil, ""},

		// Trains.
		{"major train", k3sAvail, "1.x", "1.31.1+k3s10", nil, ""},
		{"major train with v", k3sAvail, "v1.x", "1.31.1+k3s10", nil, ""},
		{"major train, star", k3sAvail, "1.*", "1.31.1+k3s10", nil, ""},
		{"partial major", k3sAvail, "1", "1.31.1+k3s10", nil, ""},
		{"minor train", k3sAvail, "1.30.x", "1.30.4+k3s1", nil, ""},
		{"minor train, capital X", k3sAvail, "1.30.X", "1.30.4+k3s1", nil, ""},
		{"partial minor", k3sAvail, "1.30", "1.30.4+k3s1", nil, ""},
		{"minor train ties on build metadata", []string{"1.30.2+k3s1", "1.30.2+k3s2"}, "1.30.x", "1.30.2+k3s2", nil, ""},
		{"rke2r2 beats rke2r1", []string{"1.30.4+rke2r2", "1.30.4+rke2r1", "1.29.9+rke2r3"}, "1.x", "1.30.4+rke2r2", nil, ""},
		{"latest", k3sAvail, "latest", "1.31.1+k3s10", nil, ""},
		{"LATEST", k3sAvail, "LATEST", "1.31.1+k3s10", nil, ""},
		{"x", k3sAvail, "x", "1.31.1+k3s10", nil, ""},
		{"star", k3sAvail, "*", "1.31.1+k3s10", nil, ""},
		{"empty means latest", k3sAvail, "", "1.31.1+k3s10", nil, ""},
		{"range", k3sAvail, ">=1.29 <1.31", "1.30.4+k3s1", nil, ""},
		{"range with comma", k3sAvail, ">=1.29, <1.30", "1.29.8+k3s1", nil, ""},
		{"tilde", k3sAvail, "~1.30.2", "1.30.4+k3s1", nil, ""},
		{"or", k3sAvail, "1.29.x || 1.30.2", "1.30.2+k3s2", nil, ""},
		{"equal range takes builds", k3sAvail, "=1.30.2", "1.30.2+k3s2", nil, ""},
		{"leading zeros: train", []string{"22.04.5", "24.04.2", "24.04.1"}, "24.04.x", "24.04.2", nil, ""},

		// Prereleases.
		{"latest skips a newer prerelease", []string{"1.30.4+k3s1", "1.31.0-rc1+k3s1"}, "latest", "1.30.4+k3s1", nil, ""},
		{"major train skips a prerelease", []string{"1.30.4+k3s1", "1.31.0-rc1+k3s1"}, "1.x", "1.30.4+k3s1", nil, ""},
		{"train naming a prerelease takes one", []string{"1.30.4+k3s1", "1.31.0-rc1+k3s1"}, "1.31.x-0", "1.31.0-rc1+k3s1", nil, ""},
		{"range naming a prerelease", []string{"1.31.0-rc.1", "1.31.0-rc.2", "1.30.9"}, ">=1.31.0-rc.1", "1.31.0-rc.2", nil, ""},
		{"release beats its prereleases", []string{"1.31.0-rc.2", "1.31.0"}, ">=1.31.0-rc.1", "1.31.0", nil, ""},
		{"only prereleases on the train", k3sAvail, "1.31.0", "", errs.ErrNotFound, "does not exist"},
		{"train with only prereleases explains", []string{"1.30.4", "1.31.0-rc1+k3s1"}, "1.31.x", "", errs.ErrNotFound, "only prereleases are on it"},

		// Two-digit minors are numbers, not strings.
		{"1.10 is newer than 1.9", []string{"1.9.9", "1.10.0", "1.2.0", "1.10.1"}, "1.x", "1.10.1", nil, ""},
		{"1.9 train", []string{"1.9.9", "1.10.0", "1.9.10"}, "1.9.x", "1.9.10", nil, ""},
		{"1.1 train is not 1.10", []string{"1.10.0", "1.10.1"}, "1.1.x", "", errs.ErrNotFound, `no version is on the train "1.1.x" (available: 1.10.1, 1.10.0)`},

		// No match, bad input.
		{"train with no match", k3sAvail, "1.32.x", "", errs.ErrNotFound, `no version is on the train "1.32.x"`},
		{"major with no match", k3sAvail, "2.x", "", errs.ErrNotFound, "1.31.1+k3s10"},
		{"not versions are ignored", []string{"nightly", "1.0.0", "1.2"}, "latest", "1.0.0", nil, ""},
		{"garbage want", k3sAvail, "banana", "", errs.ErrInvalid, `version "banana" is not a version`},
		{"four numbers", k3sAvail, "1.30.4.1", "", errs.ErrInvalid, "not a version"},
		{"bad operator", k3sAvail, ">>1.30", "", errs.ErrInvalid, "not a version"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Resolve(tt.available, tt.want)
			if tt.err != nil {
				if err == nil {
					t.Fatalf("Resolve(%q) = %q, want an error", tt.want, got)
				}
				if !errors.Is(err, tt.err) {
					t.Errorf("error %v is not %v", err, tt.err)
				}
				if !strings.Contains(err.Error(), tt.errHas) {
					t.Errorf("error %q does not contain %q", err, tt.errHas)
				}
				return
			}
			if err != nil {
				t.Fatalf("Resolve(%q): %v", tt.want, err)
			}
			if got != tt.got {
				t.Errorf("Resolve(%q) = %q, want %q", tt.want, got, tt.got)
			}
			// The answer must not depend on the order versions are listed in.
			rev := slices.Clone(tt.available)
			slices.Reverse(rev)
			if again, err := Resolve(rev, tt.want); err != nil || again != got {
				t.Errorf("reversed: Resolve(%q) = %q, %v; want %q", tt.want, again, err, got)
			}
		})
	}
}

func TestResolveLongListIsCut(t *testing.T) {
	var avail []string
	for i := range 30 {
		avail = append(avail, fmt.Sprintf("1.%d.0", i))
	}
	_, err := Resolve(avail, "2.x")
	var nm *NoMatchError
	if !errors.As(err, &nm) {
		t.Fatalf("error %v is not a *NoMatchError", err)
	}
	if len(nm.Available) != 30 || nm.Available[0] != "1.29.0" {
		t.Errorf("Available = %v, want all 30, newest first", nm.Available)
	}
	if !strings.Contains(err.Error(), "1.29.0, 1.28.0") || !strings.Contains(err.Error(), "and 20 more") {
		t.Errorf("error %q should list the newest ten and count the rest", err)
	}
}

func TestResolvePack(t *testing.T) {
	p := &v1.PackSpec{Name: "k3s", Versions: []v1.PackVersion{
		{Version: "1.31.1+k3s1", Deprecated: true},
		{Version: "1.30.4+k3s1"},
		{Version: "1.30.2+k3s1"},
		{Version: "1.30.2+k3s2", Deprecated: true},
		{Version: "1.29.8+k3s1", Deprecated: true},
	}}
	tests := []struct {
		want, got, errHas string
	}{
		{"1.x", "1.30.4+k3s1", ""},                 // 1.31.1 is deprecated
		{"latest", "1.30.4+k3s1", ""},              // likewise
		{"1.31.1+k3s1", "1.31.1+k3s1", ""},         // a pin may name a deprecated version
		{"1.30.2", "1.30.2+k3s1", ""},              // a live build wins over a newer deprecated one
		{"1.29.8", "1.29.8+k3s1", ""},              // but a pin still lands on a deprecated one
		{"1.30.x", "1.30.4+k3s1", ""},              //
		{"1.31.x", "", "only deprecated versions"}, // and says so when that is all there is
		{"1.29.x", "", "(pin one to use it): 1.29.8+k3s1"},
		{"1.28.x", "", "no version is on the train"},
	}
	for _, tt := range tests {
		pv, err := ResolvePack(p, tt.want)
		switch {
		case tt.errHas != "":
			if err == nil || !strings.Contains(err.Error(), tt.errHas) || !strings.HasPrefix(err.Error(), "pack k3s: ") {
				t.Errorf("ResolvePack(%q) error = %v, want one about %q", tt.want, err, tt.errHas)
			}
		case err != nil:
			t.Errorf("ResolvePack(%q): %v", tt.want, err)
		case pv.Version != tt.got:
			t.Errorf("ResolvePack(%q) = %s, want %s", tt.want, pv.Version, tt.got)
		case pv != &p.Versions[slices.IndexFunc(p.Versions, func(v v1.PackVersion) bool { return v.Version == tt.got })]:
			t.Errorf("ResolvePack(%q) does not point into the pack", tt.want)
		}
	}
}

func TestIsTrain(t *testing.T) {
	trains := []string{"", "latest", "x", "X", "*", "1", "1.30", "v1.30", "1.x", "1.30.x", "1.30.*", "1.31.x-0", ">=1.29 <1.31", "~1.30.2", "^1.2.0", "=1.30.4", "1.29.x || 1.30.x", " 1.x "}
	pins := []string{"1.30.4", "v1.30.4", "1.30.4+k3s1", "v1.30.4+k3s1", "1.31.0-rc1+k3s1", "24.04.2", "banana", "1.30.4.1", ">>1"}
	for _, w := range trains {
		if !IsTrain(w) {
			t.Errorf("IsTrain(%q) = false, want true", w)
		}
	}
	for _, w := range pins {
		if IsTrain(w) {
			t.Errorf("IsTrain(%q) = true, want false", w)
		}
	}
}

func TestNewer(t *testing.T) {
	tests := []struct {
		a, b string
		want bool
	}{
		{"1.30.4+k3s2", "1.30.4+k3s1", true},
		{"1.30.4+k3s1", "1.30.4+k3s2", false},
		{"1.30.4+k3s10", "1.30.4+k3s9", true},
		{"1.30.4+rke2r2", "1.30.4+rke2r1", true},
		{"1.30.4+k3s1", "1.30.4", true}, // metadata counts as later than none
		{"1.30.5+k3s1", "1.30.4+k3s9", true},
		{"1.10.0", "1.9.0", true},
		{"1.9.0", "1.10.0", false},
		{"1.31.0", "1.31.0-rc1", true},
		{"1.31.0-rc.10", "1.31.0-rc.9", true},
		{"v1.2.3", "1.2.3", false}, // one version, two spellings
		{"1.2.3", "v1.2.3", false},
		{"1.2.3+k3s01", "1.2.3+k3s1", false},
		{"1.2.3+k3s1", "1.2.3+k3s01", false},
		{"1.2.3+build.10", "1.2.3+build.9", true},
		{"1.2.3+k3s99999999999999999999999", "1.2.3+k3s99999999999999999999998", true}, // beyond uint64
		{"24.04.2", "22.04.5", true},
		{"1.2.3+b1", "1.2.3+a1", true},       // letters compare as text
		{"1.2.3+a", "1.2.3+1", true},         // digits sort before letters
		{"1.2.3+1", "1.2.3+a", false},        //
		{"1.2.3+k3s1.1", "1.2.3+k3s1", true}, // a longer build is later
		{"1.0.0", "nightly", true},
		{"nightly", "1.0.0", false},
		{"nightly", "weekly", false},
		{"1.2", "1.1.9", false}, // a train is not a version
	}
	for _, tt := range tests {
		if got := Newer(tt.a, tt.b); got != tt.want {
			t.Errorf("Newer(%q, %q) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
	}
}

func TestSortVersions(t *testing.T) {
	vs := []string{"1.30.2+k3s1", "junk", "1.9.0", "1.30.2+k3s10", "1.31.0-rc1", "1.30.2+k3s2", "1.10.0"}
	SortVersions(vs)
	want := []string{"1.31.0-rc1", "1.30.2+k3s10", "1.30.2+k3s2", "1.30.2+k3s1", "1.10.0", "1.9.0", "junk"}
	if !slices.Equal(vs, want) {
		t.Errorf("SortVersions = %v, want %v", vs, want)
	}
}

// FuzzResolve checks Resolve's invariants on arbitrary input: it never
// panics, it answers one of the available strings, a pin answers that
// version, an x-train answers a release on the train and nothing newer on
// it is left out, and the order of the list does not matter.
func FuzzResolve(f *testing.F) {
	seeds := []struct{ avail, want string }{
		{"1.30.4+k3s1,1.30.4+k3s2,1.31.0-rc1+k3s1,1.29.8+k3s1", "1.30.x"},
		{"1.30.4+k3s1,1.30.4+k3s2", "1.30.4"},
		{"1.9.0,1.10.0,1.10.1", "1.x"},
		{"v3.28.2,3.29.1", "3.28.2"},
		{"1.31.0-rc.1,1.31.0", "1.31.x-0"},
		{"22.04.5,24.04.2", "24.04.x"},
		{"1.0.0,nightly", "latest"},
		{"1.30.4+rke2r1,1.30.4+rke2r2", ">=1.29 <1.31"},
		{"", "x"},
		{"1.2.3+k3s01,1.2.3+k3s1", "1.x"},
	}
	for _, s := range seeds {
		f.Add(s.avail, s.want)
	}
	xTrain := regexp.MustCompile(`^v?(\d+)(?:\.(\d+))?(?:\.[xX*])?$`)
	f.Fuzz(func(t *testing.T, availText, want string) {
		avail := strings.Split(availText, ",")
		got, err := Resolve(avail, want)
		if err != nil {
			if !errors.Is(err, errs.ErrNotFound) && !errors.Is(err, errs.ErrInvalid) {
				t.Fatalf("Resolve(%q, %q): error %v is neither not-found nor invalid", avail, want, err)
			}
			return
		}
		if !slices.Contains(avail, got) {
			t.Fatalf("Resolve(%q, %q) = %q, not one of the available", avail, want, got)
		}
		gv, perr := parseVersion(got)
		if perr != nil {
			t.Fatalf("Resolve(%q, %q) = %q, which is not a version: %v", avail, want, got, perr)
		}
		rev := slices.Clone(avail)
		slices.Reverse(rev)
		if again, err := Resolve(rev, want); err != nil || again != got {
			t.Fatalf("Resolve(%q, %q) = %q but reversed gives %q, %v", avail, want, got, again, err)
		}

		w := strings.TrimSpace(want)
		if !IsTrain(w) {
			pin, perr := parseVersion(w)
			if perr != nil {
				t.Fatalf("Resolve(%q, %q) = %q for a want that is neither a train nor a version", avail, want, got)
			}
			if gv.Compare(pin) != 0 || (pin.Metadata() != "" && gv.Metadata() != pin.Metadata()) {
				t.Fatalf("pin %q resolved to %q", want, got)
			}
			return
		}

		// An independent oracle for the x trains: same numbers, a release,
		// and no release on the train is newer.
		m := xTrain.FindStringSubmatch(w)
		switch {
		case m != nil:
		case strings.EqualFold(w, "latest") || w == "" || w == "x" || w == "X" || w == "*":
			m = []string{w, "", ""}
		default:
			return // other ranges: the membership checks above suffice
		}
		onTrain := func(s string) bool {
			v, err := parseVersion(s)
			if err != nil || v.Prerelease() != "" {
				return false
			}
			if m[1] != "" {
				if n, _ := strconv.ParseUint(m[1], 10, 64); v.Major() != n {
					return false
				}
			}
			if m[2] != "" {
				if n, _ := strconv.ParseUint(m[2], 10, 64); v.Minor() != n {
					return false
				}
			}
			return true
		}
		if !onTrain(got) {
			t.Fatalf("train %q resolved to %q, which is not on it", want, got)
		}
		for _, a := range avail {
			if onTrain(a) && Newer(a, got) {
				t.Fatalf("train %q resolved to %q, but %q is on it and newer", want, got, a)
			}
		}
	})
}
