package remaster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/outpost-edge/outpost/forge/initramfs"
	"github.com/outpost-edge/outpost/forge/kernel"
	"github.com/outpost-edge/outpost/internal/agent/userdata"
)

// ContentDir is where Options.Content goes on the image.
const ContentDir = "outpost/content"

// Options say what to add to which base.
type Options struct {
	// Base is the ISO to start from; Output the new one (replaced if it
	// exists; never the same file as Base).
	Base, Output string
	// UserData are the site settings, validated before anything is
	// written.
	UserData []byte
	// Agent, when set, is a static outpost-agent binary to add.
	Agent string
	// Content, when set, is a directory copied to /outpost/content.
	Content string
	// Xorriso is the xorriso binary; empty: "xorriso" from PATH.
	Xorriso string
	// Progress gets a line per step; nil is quiet.
	Progress io.Writer
}

// Remaster writes Output: Base with the settings, agent and content added
// and its boot record kept.
func Remaster(ctx context.Context, o Options) error {
	if o.Base == "" || o.Output == "" {
		return errors.New("remaster: base and output ISO are both needed")
	}
	if same(o.Base, o.Output) {
		return fmt.Errorf("remaster %s: the output must be a new file, not the base", o.Base)
	}
	bootable, err := inspect(o.Base)
	if err != nil {
		return fmt.Errorf("remaster: base: %w", err)
	}
	if !bootable && o.Progress != nil {
		fmt.Fprintf(o.Progress, "warning: %s has no El Torito boot record: the result will not boot either\n", o.Base)
	}
	if o.UserData == nil {
		return fmt.Errorf("remaster %s: no user-data", o.Base)
	}
	ud, err := userdata.Parse(o.UserData)
	if err != nil {
		return fmt.Errorf("remaster %s: user-data: %w", o.Base, err)
	}
	network, err := initramfs.NetworkConfig(ud)
	if err != nil {
		return fmt.Errorf("remaster %s: user-data: %w", o.Base, err)
	}
	if o.Agent != "" {
		static, err := kernel.IsStatic(o.Agent)
		if err != nil {
			return fmt.Errorf("remaster %s: agent: %w", o.Base, err)
		}
		if !static {
			return fmt.Errorf("remaster %s: agent %s is dynamically linked (build it with CGO_ENABLED=0)", o.Base, o.Agent)
		}
	}
	if o.Content != "" {
		st, err := os.Stat(o.Content)
		if err != nil {
			return fmt.Errorf("remaster %s: content: %w", o.Base, err)
		}
		if !st.IsDir() {
			return fmt.Errorf("remaster %s: content %s is not a directory", o.Base, o.Content)
		}
	}
	xorriso := o.Xorriso
	if xorriso == "" {
		xorriso = "xorriso"
	}
	if xorriso, err = exec.LookPath(xorriso); err != nil {
		return fmt.Errorf("remaster %s: xorriso is needed (apt-get install xorriso): %w", o.Base, err)
	}

	// xorriso refuses an -outdev that holds data, and a failed run must
	// not leave a half image under the output's name: write into a fresh
	// directory next to it and rename.
	work, err := os.MkdirTemp(filepath.Dir(o.Output), ".remaster-")
	if err != nil {
		return fmt.Errorf("remaster %s: %w", o.Base, err)
	}
	defer os.RemoveAll(work)
	udFile := filepath.Join(work, "user-data.yaml")
	if err := os.WriteFile(udFile, o.UserData, 0o600); err != nil {
		return fmt.Errorf("remaster %s: %w", o.Base, err)
	}
	args := []string{
		"-abort_on", "FAILURE", "-report_about", "WARNING",
		"-indev", o.Base, "-outdev", filepath.Join(work, "out.iso"),
		"-boot_image", "any", "replay",
		"-map", udFile, "/" + initramfs.MediaUserData,
		"-chmod", "0600", "/" + initramfs.MediaUserData, "--",
	}
	if network == nil {
		// Always replace the file: one the base had from older settings
		// must not linger, and /init reads a file without "iface" lines
		// as DHCP.
		network = []byte("# No interfaces in the site settings: DHCP on every NIC.\n")
	}
	netFile := filepath.Join(work, "network")
	if err := os.WriteFile(netFile, network, 0o644); err != nil {
		return fmt.Errorf("remaster %s: %w", o.Base, err)
	}
	args = append(args, "-map", netFile, "/"+initramfs.MediaNetwork)
	if o.Agent != "" {
		args = append(args, "-map", o.Agent, "/"+initramfs.MediaAgent, "-chmod", "0755", "/"+initramfs.MediaAgent, "--")
	}
	if o.Content != "" {
		args = append(args, "-map", o.Content, "/"+ContentDir)
	}
	args = append(args, "-commit")
	if o.Progress != nil {
		fmt.Fprintf(o.Progress, "remastering %s into %s with xorriso\n", o.Base, o.Output)
	}
	start := time.Now()
	cmd := exec.CommandContext(ctx, xorriso, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("remaster %s: xorriso: %w\n%s", o.Base, err, strings.TrimSpace(out.String()))
	}
	if err := os.Chmod(filepath.Join(work, "out.iso"), 0o644); err != nil {
		return fmt.Errorf("remaster %s: %w", o.Base, err)
	}
	if err := os.Rename(filepath.Join(work, "out.iso"), o.Output); err != nil {
		return fmt.Errorf("remaster %s: %w", o.Base, err)
	}
	if o.Progress != nil {
		if st, err := os.Stat(o.Output); err == nil {
			fmt.Fprintf(o.Progress, "installer: %d MiB in %s\n", st.Size()>>20, time.Since(start).Round(time.Millisecond))
		}
	}
	return nil
}

// inspect checks that the base is an ISO9660 image before xorriso sees it:
// given anything else, xorriso takes it for blank media and writes an image
// with only our files, which would pass for a remastered installer.
func inspect(path string) (bootable bool, err error) {
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	buf := make([]byte, 2048)
	for s := int64(16); s < 16+32; s++ {
		if _, err := f.ReadAt(buf, s*2048); err != nil || string(buf[1:6]) != "CD001" {
			if s == 16 {
				return false, fmt.Errorf("%s is not an ISO9660 image", path)
			}
			return bootable, nil
		}
		switch buf[0] {
		case 0:
			if strings.HasPrefix(string(buf[7:]), "EL TORITO SPECIFICATION") {
				bootable = true
			}
		case 255:
			return bootable, nil
		}
	}
	return bootable, nil
}

func same(a, b string) bool {
	sa, err1 := os.Stat(a)
	sb, err2 := os.Stat(b)
	if err1 == nil && err2 == nil {
		return os.SameFile(sa, sb)
	}
	aa, _ := filepath.Abs(a)
	bb, _ := filepath.Abs(b)
	return aa == bb
}
