package manifests

import (
	"crypto/sha256"
	"encoding/hex"
	"regexp"
	"strings"
)

var reSafe = regexp.MustCompile(`^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$`)

// safeName turns a layer key into something that is both a label value and
// part of a DNS subdomain name, at most max long. Keys that already are one
// stay as they are, so labels read like the layer names; others ("calico#2",
// "my_layer") get the offending characters replaced and a hash of the key
// appended, so two keys never map to the same name.
func safeName(key string, max int) string {
	if len(key) <= max && reSafe.MatchString(key) {
		return key
	}
	sum := sha256.Sum256([]byte(key))
	suffix := hex.EncodeToString(sum[:4])
	var b strings.Builder
	for _, r := range strings.ToLower(key) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '.' || r == '-' {
			b.WriteRune(r)
		} else {
			b.WriteByte('-')
		}
	}
	s := b.String()
	if n := max - len(suffix) - 1; len(s) > n {
		s = s[:n]
	}
	s = strings.Trim(s, ".-")
	if s == "" {
		return suffix
	}
	return s + "-" + suffix
}

// LabelValue is the value of the outpost.dev/layer label on the objects of
// the layer with this key.
func LabelValue(key string) string { return safeName(key, 63) }

// InventoryName is the name of the ConfigMap in outpost-system that lists
// what the layer with this key applied.
func InventoryName(key string) string {
	return InventoryPrefix + safeName(key, 253-len(InventoryPrefix))
}
