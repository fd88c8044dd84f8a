package iso

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"regexp"
	"sort"
	"strings"
)

// NoCloud seed names (cloud-init's NoCloud data source).
const (
	CIDataLabel  = "cidata"
	UserDataName = "user-data"
	MetaDataName = "meta-data"
)

// WriteCIData writes a NoCloud seed to path: volume label "cidata" with the
// files user-data and meta-data, plus extra files by name (e.g.
// "outpost.yaml"). A nil metaData gets MetaData("").
func WriteCIData(path string, userData, metaData []byte, extra map[string][]byte) error {
	if metaData == nil {
		metaData = MetaData("")
	}
	if userData == nil {
		userData = []byte{}
	}
	files := []File{
		{Name: UserDataName, Data: userData, Mode: 0o600},
		{Name: MetaDataName, Data: metaData},
	}
	names := make([]string, 0, len(extra))
	for n := range extra {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if n == UserDataName || n == MetaDataName {
			return fmt.Errorf("cidata %s: extra file %s would replace the seed's own", path, n)
		}
		data := extra[n]
		if data == nil {
			data = []byte{}
		}
		files = append(files, File{Name: n, Data: data, Mode: 0o600})
	}
	return Write(path, Image{VolumeID: CIDataLabel, Files: files})
}

var hostnameRE = regexp.MustCompile(`^[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$`)

// ValidHostname reports whether h can be a local-hostname.
func ValidHostname(h string) bool { return len(h) <= 253 && hostnameRE.MatchString(h) }

// MetaData is a NoCloud meta-data document. cloud-init reruns its
// per-instance steps when instance-id changes, so a named host keeps its
// name as the ID (rebuilding its seed does not look like a new instance)
// and an unnamed one gets a random ID.
func MetaData(hostname string) []byte {
	var b strings.Builder
	if hostname != "" {
		fmt.Fprintf(&b, "instance-id: %s\nlocal-hostname: %s\n", hostname, hostname)
		return []byte(b.String())
	}
	var r [8]byte
	_, _ = rand.Read(r[:]) // crypto/rand.Read does not fail on Linux
	fmt.Fprintf(&b, "instance-id: iid-outpost-%s\n", hex.EncodeToString(r[:]))
	return []byte(b.String())
}

// SettingsName is the seed file that holds Outpost's site settings as they
// are (plain YAML, not cloud-config). The Outpost boot image reads it first
// and falls back to user-data only when user-data is not cloud-config, so
// one seed serves both our image and a stock cloud-init image.
const SettingsName = "outpost.yaml"

// SettingsPath is where SettingsCloudConfig has cloud-init write the
// settings: the path `outpost-agent run --user-data` uses on an installed
// host.
const SettingsPath = "/etc/outpost/user-data.yaml"

// SettingsCloudConfig is a #cloud-config user-data that has cloud-init write
// settings to SettingsPath (mode 0600, as it may hold a registration
// token). The content is base64 so that no YAML quoting of the settings can
// go wrong.
func SettingsCloudConfig(settings []byte) []byte {
	var b strings.Builder
	b.WriteString("#cloud-config\n")
	b.WriteString("# Written by \"outpost build cidata\": the Outpost site settings for images\n")
	b.WriteString("# that run cloud-init. The Outpost boot image reads " + SettingsName + " instead.\n")
	b.WriteString("write_files:\n")
	b.WriteString("  - path: " + SettingsPath + "\n")
	b.WriteString("    owner: root:root\n")
	b.WriteString("    permissions: \"0600\"\n")
	b.WriteString("    encoding: b64\n")
	b.WriteString("    content: " + base64.StdEncoding.EncodeToString(settings) + "\n")
	return []byte(b.String())
}
