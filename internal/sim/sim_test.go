package sim

import (
	"testing"

	"github.com/outpost-edge/outpost/internal/agent/hostid"
	"github.com/outpost-edge/outpost/internal/agent/hostos"
	"github.com/outpost-edge/outpost/internal/agent/inventory"
)

// A simulated root must read back, through the agent's own code, as the
// machine it describes.
func TestWriteRootReadsBackThroughTheAgent(t *testing.T) {
	for i := range 4 {
		h := Sample(i)
		dir := t.TempDir()
		if err := WriteRoot(dir, h); err != nil {
			t.Fatal(err)
		}
		root := hostos.Root{Dir: dir}
		inv, err := inventory.Collect(root, "test")
		if err != nil {
			t.Fatal(err)
		}
		if inv.CPU.Cores != h.Cores || inv.MemoryMiB != h.MemoryKiB/1024 || inv.OS.Name != h.OSName || inv.Serial != h.Serial {
			t.Errorf("sample %d: inventory %+v does not match %+v", i, inv, h)
		}
		if len(inv.Disks) != 1 || inv.Disks[0].SizeBytes != h.Disks["nvme0n1"] {
			t.Errorf("sample %d: disks %+v", i, inv.Disks)
		}
		if len(inv.NICs) != 1 || len(inv.NICs[0].Addresses) != 1 || inv.NICs[0].Addresses[0] != h.NICs["eth0"][1] {
			t.Errorf("sample %d: nics %+v", i, inv.NICs)
		}
		id, err := hostid.Compute(root, nil)
		if err != nil {
			t.Fatal(err)
		}
		if want := "edge-sim00000" + string(rune('1'+i)); id != want {
			t.Errorf("sample %d: host ID %q, want %q (from the DMI serial)", i, id, want)
		}
	}
}
