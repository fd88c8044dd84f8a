package hostid

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/outpost-edge/outpost/internal/agent/hostos"
	"github.com/outpost-edge/outpost/internal/agent/userdata"
)

// fakeRoot makes a host tree holding the given files.
func fakeRoot(t *testing.T, files map[string]string) hostos.Root {
	t.Helper()
	dir := t.TempDir()
	for p, content := range files {
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return hostos.Root{Dir: dir}
}

func strp(s string) *string { return &s }

func TestCompute(t *testing.T) {
	const machineID = "4c4c4544004a3510804bb4c04f563532\n"
	tests := []struct {
		name    string
		files   map[string]string
		host    *userdata.Host // nil: no user-data at all
		want    string
		wantErr bool
	}{
		{
			name:  "override wins and gets no prefix",
			files: map[string]string{PathDMISerial: "ABC123\n"},
			host:  &userdata.Host{ID: "Store-42"},
			want:  "store-42",
		},
		{
			name:  "serial with default prefix",
			files: map[string]string{PathDMISerial: "ABC123\n", PathDMIUUID: "0d7e3d6a-1b2c-4d5e-8f90-a1b2c3d4e5f6\n", PathMachineID: machineID},
			want:  "edge-abc123",
		},
		{
			name:  "serial with custom prefix",
			files: map[string]string{PathDMISerial: "ABC123"},
			host:  &userdata.Host{IDPrefix: strp("Store-")},
			want:  "store-abc123",
		},
		{
			name:  "empty prefix",
			files: map[string]string{PathDMISerial: "ABC123"},
			host:  &userdata.Host{IDPrefix: strp("")},
			want:  "abc123",
		},
		{
			name:  "vmware serial is sanitized",
			files: map[string]string{PathDMISerial: "VMware-56 4d 8b 2f 1c 3a 9e 7b-4c 5d 6e 7f 8a 9b 0c 1d\n"},
			want:  "edge-vmware-56-4d-8b-2f-1c-3a-9e-7b-4c-5d-6e-7f-8a-9b-0c-1d",
		},
		{
			name:  "placeholder serial falls back to uuid",
			files: map[string]string{PathDMISerial: "To be filled by O.E.M.\n", PathDMIUUID: "0D7E3D6A-1B2C-4D5E-8F90-A1B2C3D4E5F6\n", PathMachineID: machineID},
			want:  "edge-0d7e3d6a-1b2c-4d5e-8f90-a1b2c3d4e5f6",
		},
		{
			name: "zero uuid falls back to machine-id",
			files: map[string]string{
				PathDMISerial: "System Serial Number", PathDMIUUID: "00000000-0000-0000-0000-000000000000", PathMachineID: machineID,
			},
			want: "edge-4c4c4544004a3510804bb4c04f563532",
		},
		{
			name:  "all-F uuid falls back to machine-id",
			files: map[string]string{PathDMISerial: "Default string", PathDMIUUID: "FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF", PathMachineID: machineID},
			want:  "edge-4c4c4544004a3510804bb4c04f563532",
		},
		{
			name:  "machine-id only",
			files: map[string]string{PathMachineID: machineID},
			want:  "edge-4c4c4544004a3510804bb4c04f563532",
		},
		{
			name:    "uninitialized machine-id is no id",
			files:   map[string]string{PathDMISerial: "None", PathMachineID: "uninitialized\n"},
			wantErr: true,
		},
		{
			name:  "any real machine-id is used",
			files: map[string]string{PathMachineID: "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n"},
			want:  "edge-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
		},
		{
			name:    "all-zero machine-id is no id",
			files:   map[string]string{PathMachineID: "00000000000000000000000000000000\n"},
			wantErr: true,
		},
		{
			name:    "nothing at all",
			files:   map[string]string{},
			wantErr: true,
		},
		{
			name:  "long serial is cut to 63",
			files: map[string]string{PathDMISerial: strings.Repeat("ab", 40)},
			want:  ("edge-" + strings.Repeat("ab", 40))[:MaxLen],
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ud *userdata.UserData
			if tt.host != nil {
				ud = &userdata.UserData{Host: *tt.host}
			}
			got, err := Compute(fakeRoot(t, tt.files), ud)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("Compute = %q, want an error", got)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("Compute = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestIsPlaceholder(t *testing.T) {
	tests := map[string]bool{
		"":                                     true,
		"  ":                                   true,
		"0":                                    true,
		"None":                                 true,
		"To be filled by O.E.M.":               true,
		"Default string":                       true,
		"System Serial Number":                 true,
		"Not Specified":                        true,
		"00000000-0000-0000-0000-000000000000": true,
		"ffffffff-ffff-ffff-ffff-ffffffffffff": true,
		"XXXXXXXX":                             true,
		"........":                             true,
		"ABC123":                               false,
		"aaaaaaaa":                             false,
		"11111111":                             false,
		"0d7e3d6a-1b2c-4d5e-8f90-a1b2c3d4e5f6": false,
		"00000001":                             false,
	}
	for v, want := range tests {
		if got := IsPlaceholder(v); got != want {
			t.Errorf("IsPlaceholder(%q) = %v, want %v", v, got, want)
		}
	}
}

func TestSanitize(t *testing.T) {
	tests := map[string]string{
		"ABC-123":         "abc-123",
		"a b\tc":          "a-b-c",
		"--x__y--":        "x-y",
		"Serial#1/2":      "serial-1-2",
		".dots.":          "dots",
		"ünïcode":         "n-code",
		"":                "",
		"$$$":             "",
		"edge-" + "x.y.z": "edge-x.y.z",
	}
	for in, want := range tests {
		if got := Sanitize(in); got != want {
			t.Errorf("Sanitize(%q) = %q, want %q", in, got, want)
		}
	}
	// Cutting must not leave a trailing '-'.
	long := strings.Repeat("a", 62) + "-b"
	if got := Sanitize(long); got != strings.Repeat("a", 62) {
		t.Errorf("Sanitize(long) = %q", got)
	}
}
