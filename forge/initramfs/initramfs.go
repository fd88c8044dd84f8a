package initramfs

import (
	"bufio"
	"bytes"
	"compress/gzip"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/outpost-edge/outpost/forge/iso"
	"github.com/outpost-edge/outpost/forge/kernel"
	"github.com/outpost-edge/outpost/internal/agent/userdata"
)

// Paths in the initramfs and on the boot medium that /init reads; the
// builders of the medium (packages bootiso and remaster) use the same.
const (
	// BakedUserData is the settings file built into the image.
	BakedUserData = "/etc/outpost/user-data.yaml"
	// BakedNetwork is NetworkConfig of the baked settings.
	BakedNetwork = "/etc/outpost/network"
	// AgentPath is the agent binary in the image.
	AgentPath = "/usr/bin/outpost-agent"

	// MediaLabel is the volume label of the boot ISO, by which /init finds
	// the medium it booted from.
	MediaLabel = "OUTPOST"
	// MediaUserData, MediaNetwork and MediaAgent are files on the boot
	// medium that take precedence over the baked ones, so that an image can
	// be re-targeted by remastering without rebuilding the initramfs.
	MediaUserData = "outpost/user-data.yaml"
	MediaNetwork  = "outpost/network"
	MediaAgent    = "outpost/outpost-agent"

	// SeedNetwork is the seed file `outpost build cidata` writes next to
	// iso.SettingsName.
	SeedNetwork = "outpost-network"
)

// DefaultModules are the drivers the image loads: virtio devices (network,
// disks, entropy), the PC's IDE CD-ROM and ISO9660, to read a seed or the
// boot medium. Dependencies are added by kernel.Resolve.
var DefaultModules = []string{
	"virtio_pci", "virtio_net", "virtio_blk", "virtio_scsi", "virtio_rng",
	"ata_piix", "sr_mod", "sd_mod", "isofs",
}

var (
	//go:embed init.sh
	initScript string
	//go:embed udhcpc.sh
	udhcpcScript string
)

// InitScript is the /init the image runs.
func InitScript() string {
	return strings.NewReplacer(
		"@MEDIA_LABEL@", MediaLabel,
		"@SETTINGS_NAME@", iso.SettingsName,
		"@NETWORK_NAME@", SeedNetwork,
		"@MEDIA_USER_DATA@", MediaUserData,
		"@MEDIA_NETWORK@", MediaNetwork,
		"@MEDIA_AGENT@", MediaAgent,
		"@BAKED_USER_DATA@", BakedUserData,
		"@BAKED_NETWORK@", BakedNetwork,
	).Replace(initScript)
}

// Config says what goes into the image.
type Config struct {
	Kernel *kernel.Kernel
	// Modules to load; nil means DefaultModules.
	Modules []string
	// Busybox and Agent are static binaries on this machine.
	Busybox string
	Agent   string
	// UserData are the settings to bake in; nil bakes none, and the image
	// then needs a seed or a remastered medium.
	UserData []byte
	// Progress gets a line per step; nil is quiet.
	Progress io.Writer
}

// WriteFile builds the image into path (written next to it and renamed).
func WriteFile(path string, cfg Config) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("initramfs %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	bw := bufio.NewWriterSize(tmp, 1<<20)
	if err := Build(bw, cfg); err != nil {
		tmp.Close()
		return fmt.Errorf("initramfs %s: %w", path, err)
	}
	if err := bw.Flush(); err != nil {
		tmp.Close()
		return fmt.Errorf("initramfs %s: %w", path, err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return fmt.Errorf("initramfs %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("initramfs %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("initramfs %s: %w", path, err)
	}
	return nil
}

// Build writes the gzip'd newc archive to w.
func Build(w io.Writer, cfg Config) error {
	if cfg.Kernel == nil {
		return errors.New("no kernel")
	}
	progress := func(format string, args ...any) {
		if cfg.Progress != nil {
			fmt.Fprintf(cfg.Progress, format+"\n", args...)
		}
	}
	var network []byte
	if cfg.UserData != nil {
		ud, err := userdata.Parse(cfg.UserData)
		if err != nil {
			return fmt.Errorf("user-data: %w", err)
		}
		if network, err = NetworkConfig(ud); err != nil {
			return fmt.Errorf("user-data: %w", err)
		}
	}
	busybox, err := readStatic(cfg.Busybox, "busybox")
	if err != nil {
		return err
	}
	agent, err := readStatic(cfg.Agent, "outpost-agent")
	if err != nil {
		return err
	}
	names := cfg.Modules
	if names == nil {
		names = DefaultModules
	}
	mods, err := cfg.Kernel.Resolve(names...)
	if err != nil {
		return err
	}
	progress("initramfs: kernel %s, %d modules, busybox, agent (%d MiB)", cfg.Kernel.Version, len(mods), len(agent)>>20)

	gz, err := gzip.NewWriterLevel(w, gzip.DefaultCompression)
	if err != nil {
		return err
	}
	c := newCPIOWriter(gz)
	for _, d := range []string{"dev", "proc", "sys", "run", "tmp", "root", "var/lib", "usr/sbin", "sbin", "etc/outpost"} {
		if err := c.dir(d, 0o755); err != nil {
			return err
		}
	}
	// The kernel opens /dev/console for /init before anything is mounted.
	if err := c.charDev("dev/console", 0o600, 5, 1); err != nil {
		return err
	}
	files := []member{
		{"init", 0o755, []byte(InitScript())},
		{"bin/busybox", 0o755, busybox},
		{strings.TrimPrefix(AgentPath, "/"), 0o755, agent},
		{"etc/outpost/udhcpc.script", 0o755, []byte(udhcpcScript)},
		{"etc/outpost/modules", 0o644, modulesList(cfg.Kernel, mods)},
		{"etc/os-release", 0o644, []byte("NAME=\"Outpost boot image\"\nID=outpost\nPRETTY_NAME=\"Outpost boot image (" + cfg.Kernel.Version + ")\"\n")},
		{"etc/passwd", 0o644, []byte("root:x:0:0:root:/root:/bin/sh\n")},
		{"etc/group", 0o644, []byte("root:x:0:\n")},
		{"etc/nsswitch.conf", 0o644, []byte("hosts: files dns\n")},
	}
	if cfg.UserData != nil {
		files = append(files, member{strings.TrimPrefix(BakedUserData, "/"), 0o600, cfg.UserData})
		if network != nil {
			files = append(files, member{strings.TrimPrefix(BakedNetwork, "/"), 0o644, network})
		}
	}
	for _, f := range files {
		if err := c.file(f.name, f.perm, f.data); err != nil {
			return err
		}
	}
	// /init runs under /bin/sh before it installs the other applets.
	if err := c.symlink("bin/sh", "busybox"); err != nil {
		return err
	}
	for _, m := range mods {
		data, err := cfg.Kernel.ReadModule(m.Path)
		if err != nil {
			return err
		}
		if err := c.file(moduleTarget(cfg.Kernel, m), 0o644, data); err != nil {
			return err
		}
	}
	if err := c.close(); err != nil {
		return err
	}
	if err := gz.Close(); err != nil {
		return fmt.Errorf("gzip: %w", err)
	}
	return nil
}

type member struct {
	name string
	perm uint32
	data []byte
}

// moduleTarget is where a module goes in the image: decompressed, so its
// name ends in .ko whatever the package shipped.
func moduleTarget(k *kernel.Kernel, m kernel.Module) string {
	p := m.Path
	for _, ext := range []string{".xz", ".zst", ".gz"} {
		p = strings.TrimSuffix(p, ext)
	}
	return "lib/modules/" + k.Version + "/" + p
}

func modulesList(k *kernel.Kernel, mods []kernel.Module) []byte {
	var b bytes.Buffer
	for _, m := range mods {
		b.WriteString("/" + moduleTarget(k, m) + "\n")
	}
	return b.Bytes()
}

func readStatic(path, what string) ([]byte, error) {
	if path == "" {
		return nil, fmt.Errorf("no %s binary given", what)
	}
	static, err := kernel.IsStatic(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if !static {
		return nil, fmt.Errorf("%s %s is dynamically linked: the image has no libc (use busybox-static; build the agent with CGO_ENABLED=0)", what, path)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return data, nil
}

// ReadFile reads an initramfs image (gzip'd or not) and returns its
// entries.
func ReadFile(path string) ([]Entry, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("initramfs %s: %w", path, err)
	}
	defer f.Close()
	br := bufio.NewReader(f)
	var r io.Reader = br
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		gz, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("initramfs %s: %w", path, err)
		}
		r = gz
	}
	entries, err := ReadCPIO(r)
	if err != nil {
		return nil, fmt.Errorf("initramfs %s: %w", path, err)
	}
	return entries, nil
}
