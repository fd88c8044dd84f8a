package hostid

import (
	"errors"
	"fmt"
	"strings"

	"github.com/outpost-edge/outpost/internal/agent/hostos"
	"github.com/outpost-edge/outpost/internal/agent/userdata"
)

// Host paths the ID is read from, in order of preference.
const (
	PathDMISerial = "/sys/class/dmi/id/product_serial"
	PathDMIUUID   = "/sys/class/dmi/id/product_uuid"
	PathMachineID = "/etc/machine-id"
)

// MaxLen is the longest ID, so that it fits a DNS label.
const MaxLen = 63

// placeholders are the values firmware vendors leave in DMI fields they did
// not fill in; using them would give thousands of hosts the same ID.
var placeholders = map[string]bool{
	"":                         true,
	"0":                        true,
	"none":                     true,
	"null":                     true,
	"n/a":                      true,
	"na":                       true,
	"not specified":            true,
	"not applicable":           true,
	"not available":            true,
	"to be filled by o.e.m.":   true,
	"to be filled by oem":      true,
	"default string":           true,
	"system serial number":     true,
	"chassis serial number":    true,
	"serial number":            true,
	"0123456789":               true,
	"123456789":                true,
	"unknown":                  true,
	"invalid":                  true,
	"oem":                      true,
	"empty":                    true,
	"base board serial number": true,
}

// IsPlaceholder reports whether a DMI value carries no identity: a known
// filler text, or only zeros, only Fs or only Xs once separators are
// ignored ("00000000", "FFFFFFFF-FFFF-…", "XXXXXXXX").
func IsPlaceholder(v string) bool {
	v = strings.ToLower(strings.TrimSpace(v))
	if placeholders[v] {
		return true
	}
	var first rune
	for _, c := range v {
		if c == '-' || c == ' ' || c == '.' || c == ':' {
			continue
		}
		if c != '0' && c != 'f' && c != 'x' {
			return false
		}
		if first == 0 {
			first = c
		} else if c != first {
			return false
		}
	}
	return true
}

// DMISerial is the machine's serial number, or "" when it has none (or only
// a placeholder, or the file is not readable: it is root-only on most hosts).
func DMISerial(root hostos.Root) string { return readValue(root, PathDMISerial) }

// DMIProductUUID is the machine's SMBIOS UUID, or "" as for DMISerial.
func DMIProductUUID(root hostos.Root) string { return readValue(root, PathDMIUUID) }

// MachineID is the OS's machine-id, or "" when there is none yet: systemd
// writes "uninitialized" until the first boot completes.
func MachineID(root hostos.Root) string {
	b, err := root.ReadFile(PathMachineID)
	if err != nil {
		return ""
	}
	v := strings.TrimSpace(string(b))
	if v == "uninitialized" || strings.Trim(v, "0") == "" {
		return ""
	}
	return v
}

func readValue(root hostos.Root, p string) string {
	b, err := root.ReadFile(p)
	if err != nil {
		return ""
	}
	v := strings.TrimSpace(string(b))
	if IsPlaceholder(v) {
		return ""
	}
	return v
}

// Compute returns the host ID. An override in ud (host.id) is used as given,
// without the prefix; otherwise the first real value among DMI serial, DMI
// product UUID and machine-id gets the prefix (host.idPrefix, default
// "edge-"). ud may be nil. The result is always Sanitize'd.
func Compute(root hostos.Root, ud *userdata.UserData) (string, error) {
	prefix := userdata.DefaultIDPrefix
	if ud != nil {
		if ud.Host.ID != "" {
			id := Sanitize(ud.Host.ID)
			if id == "" {
				return "", fmt.Errorf("host.id %q has no usable characters", ud.Host.ID)
			}
			return id, nil
		}
		prefix = ud.Host.Prefix()
	}
	for _, v := range []string{DMISerial(root), DMIProductUUID(root), MachineID(root)} {
		if v == "" {
			continue
		}
		if id := Sanitize(prefix + v); id != "" && id != Sanitize(prefix) {
			return id, nil
		}
	}
	return "", errors.New("no host ID: set host.id in user-data, or give the machine a DMI serial, product UUID or /etc/machine-id")
}

// Sanitize lower-cases s and makes it a DNS-label-like name: characters
// other than [a-z0-9.-] become '-', runs of '-' collapse, the ends are
// letters or digits, and it is at most MaxLen long. Serials like
// "VMware-56 4d 8b…" become "vmware-56-4d-8b…".
func Sanitize(s string) string {
	var b strings.Builder
	dash := false
	for _, c := range strings.ToLower(s) {
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '.':
			b.WriteRune(c)
			dash = false
		default:
			if !dash {
				b.WriteByte('-')
				dash = true
			}
		}
	}
	out := strings.Trim(b.String(), "-.")
	if len(out) > MaxLen {
		out = strings.TrimRight(out[:MaxLen], "-.")
	}
	return out
}
