package iso

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/diskfs/go-diskfs/backend/file"
	"github.com/diskfs/go-diskfs/filesystem/iso9660"
)

// SectorSize is the ISO9660 logical block size.
const SectorSize = 2048

// PadSectors is the empty space (300 KiB) after the last file, as mkisofs
// and xorriso add by default. Without it a small seed is shorter than what
// probers read in one go: busybox's findfs reads the first 68 KiB of a
// device and, when that read comes up short, does not recognise ISO9660
// at all, so /init would never find a 60 KiB seed by its label. It also
// keeps old CD-ROM drivers' read-ahead inside the image.
const PadSectors = 150

// MaxVolumeIDLen is the room the primary volume descriptor has for the label.
const MaxVolumeIDLen = 32

// File is one file of an image: its contents come from Data or, for large
// files such as a kernel, from the file Source on disk.
type File struct {
	// Name is the slash-separated path inside the image, e.g.
	// "isolinux/isolinux.bin".
	Name   string
	Data   []byte
	Source string
	// Mode is the Rock Ridge permission; 0 means 0644.
	Mode fs.FileMode
}

// BIOSBoot makes an image bootable from a PC BIOS through El Torito, without
// disk emulation, as ISOLINUX expects.
type BIOSBoot struct {
	// Image is the Name of the boot file, e.g. "isolinux/isolinux.bin".
	Image string
	// Catalog is where the boot catalog goes; default "isolinux/boot.cat".
	Catalog string
	// BootInfoTable patches the image's boot information table (bytes
	// 8-63) with its own location, as `mkisofs -boot-info-table` does:
	// ISOLINUX finds the rest of itself through it.
	BootInfoTable bool
}

// Image is what Write puts in an ISO file.
type Image struct {
	// VolumeID is the label (blkid's LABEL), at most 32 characters.
	VolumeID string
	Files    []File
	Boot     *BIOSBoot
}

// Write writes img to path. The file appears whole or not at all: it is
// written next to path and renamed.
func Write(path string, img Image) error {
	if err := checkVolumeID(img.VolumeID); err != nil {
		return err
	}
	ws, err := os.MkdirTemp("", "outpost-iso-")
	if err != nil {
		return fmt.Errorf("iso %s: workspace: %w", path, err)
	}
	defer os.RemoveAll(ws)
	// The workspace's own mode becomes the Rock Ridge mode of "/": the
	// 0700 of MkdirTemp would make the mounted image unreadable to all but
	// root.
	if err := os.Chmod(ws, 0o755); err != nil {
		return fmt.Errorf("iso %s: workspace: %w", path, err)
	}
	if err := populate(ws, img.Files); err != nil {
		return fmt.Errorf("iso %s: %w", path, err)
	}
	opts := iso9660.FinalizeOptions{RockRidge: true, Joliet: true, VolumeIdentifier: img.VolumeID}
	if b := img.Boot; b != nil {
		name, err := cleanName(b.Image)
		if err != nil {
			return fmt.Errorf("iso %s: boot image: %w", path, err)
		}
		if _, err := os.Stat(filepath.Join(ws, filepath.FromSlash(name))); err != nil {
			return fmt.Errorf("iso %s: boot image %s is not among the files", path, name)
		}
		cat := b.Catalog
		if cat == "" {
			cat = "isolinux/boot.cat"
		}
		if cat, err = cleanName(cat); err != nil {
			return fmt.Errorf("iso %s: boot catalog: %w", path, err)
		}
		opts.ElTorito = &iso9660.ElTorito{
			BootCatalog: "/" + cat,
			Entries: []*iso9660.ElToritoEntry{{
				Platform:  iso9660.BIOS,
				Emulation: iso9660.NoEmulation,
				BootFile:  "/" + name,
				BootTable: b.BootInfoTable,
			}},
		}
		// Four 512-byte sectors is what BIOSes load reliably and what
		// ISOLINUX asks for (-boot-load-size 4).
		opts.ElTorito.Entries[0].SetLoadSize(4)
	}

	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("iso %s: %w", path, err)
	}
	tmpName := tmp.Name()
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(tmpName)
		}
	}()
	fsys, err := iso9660.Create(file.New(tmp, false), 0, 0, SectorSize, ws)
	if err != nil {
		return fmt.Errorf("iso %s: %w", path, err)
	}
	if err := fsys.Finalize(opts); err != nil {
		return fmt.Errorf("iso %s: %w", path, err)
	}
	if err := fixup(tmp); err != nil {
		return fmt.Errorf("iso %s: %w", path, err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		return fmt.Errorf("iso %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("iso %s: %w", path, err)
	}
	if err := os.Rename(tmpName, path); err != nil {
		return fmt.Errorf("iso %s: %w", path, err)
	}
	ok = true
	return nil
}

func checkVolumeID(id string) error {
	if id == "" {
		return errors.New("iso: volume id is empty")
	}
	if len(id) > MaxVolumeIDLen {
		return fmt.Errorf("iso: volume id %q is longer than %d characters", id, MaxVolumeIDLen)
	}
	for _, c := range id {
		if c < 0x20 || c > 0x7e {
			return fmt.Errorf("iso: volume id %q: only printable ASCII is allowed", id)
		}
	}
	return nil
}

// cleanName checks a path inside the image: relative, slash-separated,
// without "." or ".." parts.
func cleanName(name string) (string, error) {
	n := strings.TrimPrefix(name, "/")
	if n == "" || path.Clean(n) != n || n == "." || strings.HasPrefix(n, "../") || n == ".." || strings.Contains(n, "\\") {
		return "", fmt.Errorf("bad file name %q", name)
	}
	for _, part := range strings.Split(n, "/") {
		// Joliet stores at most 64 UCS-2 characters a name.
		if len(part) > 64 {
			return "", fmt.Errorf("file name %q: %q is longer than 64 characters", name, part)
		}
	}
	return n, nil
}

// populate lays the files out in the workspace go-diskfs builds the image
// from.
func populate(ws string, files []File) error {
	seen := map[string]bool{}
	sorted := append([]File(nil), files...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })
	for _, f := range sorted {
		name, err := cleanName(f.Name)
		if err != nil {
			return err
		}
		if seen[name] {
			return fmt.Errorf("file %s given twice", name)
		}
		seen[name] = true
		if f.Data != nil && f.Source != "" {
			return fmt.Errorf("file %s: give Data or Source, not both", name)
		}
		dst := filepath.Join(ws, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return fmt.Errorf("file %s: %w", name, err)
		}
		mode := f.Mode.Perm()
		if mode == 0 {
			mode = 0o644
		}
		if f.Source != "" {
			err = copyFile(dst, f.Source, mode)
		} else {
			err = os.WriteFile(dst, f.Data, mode)
		}
		if err != nil {
			return fmt.Errorf("file %s: %w", name, err)
		}
		if err := os.Chmod(dst, mode); err != nil { // umask
			return fmt.Errorf("file %s: %w", name, err)
		}
	}
	return nil
}

func copyFile(dst, src string, mode fs.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return err
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", src)
	}
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// Volume descriptor layout (ECMA-119 8.4).
const (
	vdStart         = 16 // first descriptor sector
	vdTypeBoot      = 0
	vdTypePrimary   = 1
	vdTypeSupp      = 2
	vdTypeTerm      = 255
	vdVolumeSizeOff = 80
	vdExpirationOff = 847
	vdDateLen       = 17
)

// vdTextFields are the descriptor's text fields as (offset, length): system,
// volume, volume set, publisher, preparer and application identifiers, then
// the copyright, abstract and bibliographic file names.
var vdTextFields = [][2]int{{8, 32}, {40, 32}, {190, 128}, {318, 128}, {446, 128}, {574, 128}, {702, 37}, {739, 37}, {776, 37}}

// fixup repairs what go-diskfs gets wrong for our readers:
//   - the boot record goes to sector 17, where El Torito says it is and
//     where BIOSes (SeaBIOS among them) look; go-diskfs puts the Joliet
//     descriptor there and the boot record after it;
//   - the image is padded with PadSectors empty sectors, announced in the
//     primary descriptor's volume size (go-diskfs stops after the last
//     file's data, mid-sector); see PadSectors;
//   - the expiration date, set to the creation time, is cleared, since a
//     strict reader may take the volume for expired;
//   - text fields are padded with spaces rather than NULs, as ECMA-119
//     asks: some readers print the label NULs and all.
func fixup(f *os.File) error {
	var vds [][]byte
	for s := int64(vdStart); ; s++ {
		if s == vdStart+32 {
			return errors.New("no volume descriptor set terminator")
		}
		buf := make([]byte, SectorSize)
		if _, err := f.ReadAt(buf, s*SectorSize); err != nil {
			return fmt.Errorf("read volume descriptor %d: %w", s, err)
		}
		if string(buf[1:6]) != "CD001" {
			return fmt.Errorf("volume descriptor %d: no CD001 signature", s)
		}
		vds = append(vds, buf)
		if buf[0] == vdTypeTerm {
			break
		}
	}
	var volumeBlocks uint32
	var primary, boot, rest [][]byte
	for _, vd := range vds {
		switch vd[0] {
		case vdTypeBoot:
			boot = append(boot, vd)
			continue
		case vdTypePrimary:
			volumeBlocks = binary.LittleEndian.Uint32(vd[vdVolumeSizeOff:]) + PadSectors
			primary = append(primary, vd)
		default:
			rest = append(rest, vd)
		}
		if vd[0] == vdTypePrimary || vd[0] == vdTypeSupp {
			// "Not specified" is sixteen '0' digits and a zero offset.
			copy(vd[vdExpirationOff:vdExpirationOff+vdDateLen], "0000000000000000\x00")
			for _, fl := range vdTextFields {
				padText(vd[fl[0]:fl[0]+fl[1]], vd[0] == vdTypeSupp)
			}
		}
	}
	if len(primary) != 1 {
		return fmt.Errorf("%d primary volume descriptors", len(primary))
	}
	for _, vd := range vds {
		if vd[0] == vdTypePrimary || vd[0] == vdTypeSupp {
			binary.LittleEndian.PutUint32(vd[vdVolumeSizeOff:], volumeBlocks)
			binary.BigEndian.PutUint32(vd[vdVolumeSizeOff+4:], volumeBlocks)
		}
	}
	ordered := append(append(primary, boot...), rest...)
	for i, vd := range ordered {
		if _, err := f.WriteAt(vd, (vdStart+int64(i))*SectorSize); err != nil {
			return fmt.Errorf("write volume descriptor %d: %w", vdStart+i, err)
		}
	}
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if want := int64(volumeBlocks) * SectorSize; st.Size() != want {
		return f.Truncate(want)
	}
	return nil
}

// padText turns the trailing NULs of a descriptor text field into spaces;
// Joliet's fields are UCS-2 big-endian, so there a space is 0x00 0x20 and
// an odd byte left at the end stays as it is.
func padText(field []byte, ucs2 bool) {
	if !ucs2 {
		for i := len(field) - 1; i >= 0 && field[i] == 0; i-- {
			field[i] = ' '
		}
		return
	}
	for i := len(field)&^1 - 2; i >= 0 && field[i] == 0 && field[i+1] == 0; i -= 2 {
		field[i+1] = ' '
	}
}
