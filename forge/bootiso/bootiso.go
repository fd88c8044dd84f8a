package bootiso

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/outpost-edge/outpost/forge/initramfs"
	"github.com/outpost-edge/outpost/forge/iso"
	"github.com/outpost-edge/outpost/forge/kernel"
	"github.com/outpost-edge/outpost/internal/agent/userdata"
)

// Paths on the image. ISOLINUX reads plain ISO9660 names, so every name is
// 8.3-safe.
const (
	KernelName    = "boot/vmlinuz"
	InitramfsName = "boot/initrd.img"
	isolinuxBin   = "isolinux/isolinux.bin"
	ldlinuxC32    = "isolinux/ldlinux.c32"
	isolinuxCfg   = "isolinux/isolinux.cfg"
	bootCatalog   = "isolinux/boot.cat"
)

// DefaultCmdline is the kernel command line: the last console= is the one
// /init and the agent log to, so the serial port comes last (QEMU
// -nographic, serial consoles of edge boxes); panic=10 reboots a box that
// cannot start rather than leaving it hung.
const DefaultCmdline = "console=tty0 console=ttyS0,115200 quiet panic=10"

// ISOLinuxSearch are the directories FindISOLinux looks in, relative to a
// root: the layout of Debian's isolinux and syslinux-common packages, both
// installed and extracted (scripts/fetch-kernel.sh).
var ISOLinuxSearch = []string{"usr/lib/ISOLINUX", "usr/lib/syslinux/modules/bios", "usr/lib/syslinux", "usr/share/syslinux"}

// FindISOLinux finds isolinux.bin and ldlinux.c32 under the roots (each
// searched as ISOLinuxSearch says, and as a plain directory too), then
// under "/".
func FindISOLinux(roots ...string) (isolinux, ldlinux string, err error) {
	roots = append(roots, "/")
	find := func(name string) string {
		for _, r := range roots {
			if r == "" {
				continue
			}
			cands := []string{filepath.Join(r, name)}
			for _, d := range ISOLinuxSearch {
				cands = append(cands, filepath.Join(r, d, name))
			}
			for _, c := range cands {
				if st, err := os.Stat(c); err == nil && st.Mode().IsRegular() {
					return c
				}
			}
		}
		return ""
	}
	isolinux, ldlinux = find("isolinux.bin"), find("ldlinux.c32")
	if isolinux == "" || ldlinux == "" {
		return "", "", errors.New("isolinux.bin and ldlinux.c32 not found (apt-get install isolinux syslinux-common, or pass --isolinux DIR from scripts/fetch-kernel.sh)")
	}
	return isolinux, ldlinux, nil
}

// Options say how to build the image.
type Options struct {
	// Kernel is the kernel and its modules (package kernel).
	Kernel *kernel.Kernel
	// Busybox and Agent are static binaries.
	Busybox string
	Agent   string
	// UserData are settings to bake in (validated here); nil bakes none.
	UserData []byte
	// Modules overrides initramfs.DefaultModules.
	Modules []string
	// ISOLinux and LDLinux are isolinux.bin and ldlinux.c32; empty:
	// FindISOLinux().
	ISOLinux, LDLinux string
	// Cmdline replaces DefaultCmdline; ExtraCmdline is added to it.
	Cmdline, ExtraCmdline string

	// Output is the ISO to write; empty writes none (direct-kernel boot
	// only).
	Output string
	// InitramfsOut and KernelOut, when set, get copies of the initramfs
	// and kernel for `qemu -kernel -initrd`.
	InitramfsOut, KernelOut string

	// Progress gets a line per step; nil is quiet.
	Progress io.Writer
}

// Build makes the initramfs and, with Output set, the ISO.
func Build(o Options) error {
	if o.Kernel == nil {
		return errors.New("build iso: no kernel")
	}
	if o.Output == "" && o.InitramfsOut == "" {
		return errors.New("build iso: nothing to write (give an output ISO or an initramfs path)")
	}
	progress := func(format string, args ...any) {
		if o.Progress != nil {
			fmt.Fprintf(o.Progress, format+"\n", args...)
		}
	}
	var network []byte
	if o.UserData != nil {
		ud, err := userdata.Parse(o.UserData)
		if err != nil {
			return fmt.Errorf("build iso: user-data: %w", err)
		}
		if network, err = initramfs.NetworkConfig(ud); err != nil {
			return fmt.Errorf("build iso: user-data: %w", err)
		}
	}
	isolinux, ldlinux := o.ISOLinux, o.LDLinux
	if o.Output != "" && (isolinux == "" || ldlinux == "") {
		var err error
		if isolinux, ldlinux, err = FindISOLinux(); err != nil {
			return fmt.Errorf("build iso: %w", err)
		}
	}

	work, err := os.MkdirTemp("", "outpost-bootiso-")
	if err != nil {
		return fmt.Errorf("build iso: %w", err)
	}
	defer os.RemoveAll(work)
	initrd := o.InitramfsOut
	if initrd == "" {
		initrd = filepath.Join(work, "initrd.img")
	}
	start := time.Now()
	progress("building the initramfs %s", initrd)
	err = initramfs.WriteFile(initrd, initramfs.Config{
		Kernel: o.Kernel, Modules: o.Modules, Busybox: o.Busybox, Agent: o.Agent,
		UserData: o.UserData, Progress: o.Progress,
	})
	if err != nil {
		return fmt.Errorf("build iso: %w", err)
	}
	if st, err := os.Stat(initrd); err == nil {
		progress("initramfs: %d MiB in %s", st.Size()>>20, time.Since(start).Round(time.Millisecond))
	}
	if o.KernelOut != "" {
		progress("copying the kernel to %s", o.KernelOut)
		if err := copyFile(o.KernelOut, o.Kernel.Image); err != nil {
			return fmt.Errorf("build iso: %w", err)
		}
	}
	if o.Output == "" {
		return nil
	}

	cmdline := o.Cmdline
	if cmdline == "" {
		cmdline = DefaultCmdline
	}
	if o.ExtraCmdline != "" {
		cmdline += " " + o.ExtraCmdline
	}
	if strings.ContainsAny(cmdline, "\n\r") {
		return errors.New("build iso: kernel command line has a line break")
	}
	files := []iso.File{
		{Name: isolinuxBin, Source: isolinux},
		{Name: ldlinuxC32, Source: ldlinux},
		{Name: isolinuxCfg, Data: []byte(isolinuxConfig(cmdline))},
		{Name: KernelName, Source: o.Kernel.Image},
		{Name: InitramfsName, Source: initrd},
	}
	if o.UserData != nil {
		// Also on the medium, so that the image shows what it carries and
		// `outpost build installer` has the file to replace.
		files = append(files, iso.File{Name: initramfs.MediaUserData, Data: o.UserData, Mode: 0o600})
		if network != nil {
			files = append(files, iso.File{Name: initramfs.MediaNetwork, Data: network})
		}
	}
	start = time.Now()
	progress("writing the ISO %s", o.Output)
	err = iso.Write(o.Output, iso.Image{
		VolumeID: initramfs.MediaLabel,
		Files:    files,
		Boot:     &iso.BIOSBoot{Image: isolinuxBin, Catalog: bootCatalog, BootInfoTable: true},
	})
	if err != nil {
		return fmt.Errorf("build iso: %w", err)
	}
	if st, err := os.Stat(o.Output); err == nil {
		progress("ISO: %d MiB in %s", st.Size()>>20, time.Since(start).Round(time.Millisecond))
	}
	return nil
}

// isolinuxConfig boots the one entry at once, and mirrors ISOLINUX's own
// output to the serial port so a headless box shows it too.
func isolinuxConfig(cmdline string) string {
	return "SERIAL 0 115200\n" +
		"DEFAULT outpost\n" +
		"PROMPT 0\n" +
		"TIMEOUT 0\n" +
		"LABEL outpost\n" +
		"  KERNEL /" + KernelName + "\n" +
		"  INITRD /" + InitramfsName + "\n" +
		"  APPEND " + cmdline + "\n"
}

func copyFile(dst, src string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	tmp, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := io.Copy(tmp, in); err != nil {
		tmp.Close()
		return fmt.Errorf("copy %s: %w", src, err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), dst)
}
