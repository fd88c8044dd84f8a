package kerneltest

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
)

// Module returns a relocatable ELF object with a .modinfo section, as
// kernel modules have, naming deps in its "depends=" entry.
func Module(name string, deps ...string) []byte {
	info := []byte("license=GPL\x00name=" + name + "\x00depends=" + strings.Join(deps, ",") + "\x00vermagic=test\x00")
	shstr := []byte("\x00.modinfo\x00.shstrtab\x00")
	const ehsize, shentsize = 64, 64
	infoOff := uint64(ehsize)
	strOff := infoOff + uint64(len(info))
	shOff := (strOff + uint64(len(shstr)) + 7) &^ 7

	var b bytes.Buffer
	hdr := elf.Header64{
		Type: uint16(elf.ET_REL), Machine: uint16(elf.EM_X86_64), Version: uint32(elf.EV_CURRENT),
		Shoff: shOff, Ehsize: ehsize, Shentsize: shentsize, Shnum: 3, Shstrndx: 2,
	}
	copy(hdr.Ident[:], elf.ELFMAG)
	hdr.Ident[elf.EI_CLASS] = byte(elf.ELFCLASS64)
	hdr.Ident[elf.EI_DATA] = byte(elf.ELFDATA2LSB)
	hdr.Ident[elf.EI_VERSION] = byte(elf.EV_CURRENT)
	_ = binary.Write(&b, binary.LittleEndian, hdr)
	b.Write(info)
	b.Write(shstr)
	b.Write(make([]byte, int(shOff)-b.Len()))
	sections := []elf.Section64{
		{},
		{Name: 1, Type: uint32(elf.SHT_PROGBITS), Off: infoOff, Size: uint64(len(info)), Addralign: 1},
		{Name: 10, Type: uint32(elf.SHT_STRTAB), Off: strOff, Size: uint64(len(shstr)), Addralign: 1},
	}
	for _, s := range sections {
		_ = binary.Write(&b, binary.LittleEndian, s)
	}
	return b.Bytes()
}

// StaticBinary writes an ELF executable without a program interpreter,
// which is all the builders check of busybox and the agent.
func StaticBinary(path string) error { return writeExec(path, false) }

// DynamicBinary writes an ELF executable that names a program interpreter,
// as a dynamically linked binary does.
func DynamicBinary(path string) error { return writeExec(path, true) }

func writeExec(path string, interp bool) error {
	const ehsize, phentsize = 64, 56
	var b bytes.Buffer
	hdr := elf.Header64{Type: uint16(elf.ET_EXEC), Machine: uint16(elf.EM_X86_64), Version: uint32(elf.EV_CURRENT), Ehsize: ehsize}
	copy(hdr.Ident[:], elf.ELFMAG)
	hdr.Ident[elf.EI_CLASS] = byte(elf.ELFCLASS64)
	hdr.Ident[elf.EI_DATA] = byte(elf.ELFDATA2LSB)
	hdr.Ident[elf.EI_VERSION] = byte(elf.EV_CURRENT)
	name := []byte("/lib64/ld-linux-x86-64.so.2\x00")
	if interp {
		hdr.Phoff, hdr.Phentsize, hdr.Phnum = ehsize, phentsize, 1
	}
	_ = binary.Write(&b, binary.LittleEndian, hdr)
	if interp {
		off := uint64(ehsize + phentsize)
		_ = binary.Write(&b, binary.LittleEndian, elf.Prog64{
			Type: uint32(elf.PT_INTERP), Flags: uint32(elf.PF_R), Off: off,
			Filesz: uint64(len(name)), Memsz: uint64(len(name)), Align: 1,
		})
		b.Write(name)
	}
	return os.WriteFile(path, b.Bytes(), 0o755)
}

// Tree writes the layout of an extracted linux-image package under root:
// boot/vmlinuz-VERSION and lib/modules/VERSION with a module for each key
// of mods (a path under kernel/ without ".ko", e.g. "drivers/net/virtio_net")
// depending on the listed module names, and modules.builtin listing
// builtin (paths as for mods).
func Tree(root, version string, mods map[string][]string, builtin ...string) error {
	modDir := filepath.Join(root, "lib", "modules", version)
	for _, d := range []string{filepath.Join(root, "boot"), modDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	if err := os.WriteFile(filepath.Join(root, "boot", "vmlinuz-"+version), []byte("fake kernel "+version), 0o644); err != nil {
		return err
	}
	for p, deps := range mods {
		file := filepath.Join(modDir, "kernel", filepath.FromSlash(p)+".ko")
		if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
			return err
		}
		name := strings.ReplaceAll(filepath.Base(p), "-", "_")
		if err := os.WriteFile(file, Module(name, deps...), 0o644); err != nil {
			return err
		}
	}
	var b strings.Builder
	for _, p := range builtin {
		b.WriteString("kernel/" + p + ".ko\n")
	}
	return os.WriteFile(filepath.Join(modDir, "modules.builtin"), []byte(b.String()), 0o644)
}

// VirtioTree is Tree with the modules (and dependencies) of
// initramfs.DefaultModules as the Debian cloud kernel has them.
func VirtioTree(root, version string) error {
	return Tree(root, version, map[string][]string{
		"drivers/virtio/virtio_ring":           nil,
		"drivers/virtio/virtio":                {"virtio_ring"},
		"drivers/virtio/virtio_pci_legacy_dev": nil,
		"drivers/virtio/virtio_pci_modern_dev": nil,
		"drivers/virtio/virtio_pci":            {"virtio", "virtio_pci_legacy_dev", "virtio_pci_modern_dev", "virtio_ring"},
		"net/core/failover":                    nil,
		"drivers/net/net_failover":             {"failover"},
		"drivers/net/virtio_net":               {"net_failover", "virtio", "virtio_ring"},
		"drivers/block/virtio_blk":             {"virtio", "virtio_ring"},
		"drivers/scsi/scsi_common":             nil,
		"drivers/scsi/scsi_mod":                {"scsi_common"},
		"drivers/scsi/virtio_scsi":             {"scsi_mod", "virtio", "virtio_ring"},
		"drivers/char/hw_random/virtio-rng":    {"virtio", "virtio_ring"},
		"drivers/ata/libata":                   {"scsi_common", "scsi_mod"},
		"drivers/ata/ata_piix":                 {"libata"},
		"drivers/cdrom/cdrom":                  nil,
		"drivers/scsi/sr_mod":                  {"cdrom", "scsi_common", "scsi_mod"},
		"drivers/scsi/sd_mod":                  {"scsi_common", "scsi_mod"},
		"fs/isofs/isofs":                       {"cdrom"},
	}, "drivers/char/hw_random/rng-core")
}
