package cmd

import (
	"cmp"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/outpost-edge/outpost/forge/bundle"
	"github.com/outpost-edge/outpost/internal/agent/agent"
	"github.com/outpost-edge/outpost/internal/agent/hostos"
	"github.com/outpost-edge/outpost/internal/agent/userdata"
)

// DefaultUserDataPath is where `install` puts the user-data and where the
// bundle commands look for the site's trusted keys.
const DefaultUserDataPath = "/etc/outpost/user-data.yaml"

// ContentDir is where imported bundles live, under the state directory.
const ContentDir = "content"

func bundleCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "bundle",
		Short: "Check and import signed content bundles for air-gapped sites",
		Long: `A content bundle carries a cluster definition and the artifacts and charts
it needs, signed with an ed25519 key. The agent accepts a bundle only when the
signature verifies with a trusted key: one given with --key, or one of the
user-data's bundleKeys.`,
	}
	c.AddCommand(bundleVerifyCmd(), bundleImportCmd())
	return c
}

// bundleFlags are the flags verify and import share.
type bundleFlags struct {
	keys         []string
	userDataPath string
	rootDir      string
}

func (f *bundleFlags) register(c *cobra.Command) {
	c.Flags().StringArrayVar(&f.keys, "key", nil, "PEM file of a trusted public key (repeatable; a file may hold several)")
	c.Flags().StringVar(&f.userDataPath, "user-data", "", "user-data whose bundleKeys are trusted too (default "+DefaultUserDataPath+" when it exists)")
	c.Flags().StringVar(&f.rootDir, "root", "", "directory standing for the host's /")
}

// trusted collects the keys from --key and the user-data. No key at all is
// an error of its own: it is a set-up problem, not a bad bundle.
func (f *bundleFlags) trusted() ([]ed25519.PublicKey, error) {
	var keys []ed25519.PublicKey
	for _, k := range f.keys {
		data, err := os.ReadFile(k)
		if err != nil {
			return nil, fmt.Errorf("read --key: %w", err)
		}
		ks, err := bundle.ParsePublicKeys(data)
		if err != nil {
			return nil, fmt.Errorf("--key %s: %w", k, err)
		}
		keys = append(keys, ks...)
	}
	udPath := f.userDataPath
	if udPath == "" {
		udPath = hostos.Root{Dir: f.rootDir}.Path(DefaultUserDataPath)
		if _, err := os.Stat(udPath); errors.Is(err, fs.ErrNotExist) {
			udPath = ""
		}
	}
	if udPath != "" {
		data, err := os.ReadFile(udPath)
		if err != nil {
			return nil, fmt.Errorf("read user-data: %w", err)
		}
		ud, _, err := userdata.ParseAny(data)
		if err != nil {
			return nil, fmt.Errorf("user-data %s: %w", udPath, err)
		}
		for i, k := range ud.BundleKeys {
			pub, err := bundle.ParsePublicKey([]byte(k))
			if err != nil {
				return nil, fmt.Errorf("user-data %s: bundleKeys[%d]: %w", udPath, i, err)
			}
			keys = append(keys, pub)
		}
	}
	if len(keys) == 0 {
		return nil, errors.New("no trusted bundle keys: pass --key PUB.pem or set bundleKeys in the user-data")
	}
	return keys, nil
}

func (f *bundleFlags) open(file string) (*bundle.Bundle, error) {
	keys, err := f.trusted()
	if err != nil {
		return nil, err
	}
	return bundle.Open(file, keys)
}

func bundleVerifyCmd() *cobra.Command {
	var f bundleFlags
	c := &cobra.Command{
		Use:   "verify FILE",
		Short: "Check a bundle's signature and content; exit non-zero if it does not verify",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			b, err := f.open(args[0])
			if err != nil {
				return err
			}
			defer b.Close()
			describeBundle(c.OutOrStdout(), b)
			return nil
		},
	}
	f.register(c)
	return c
}

func bundleImportCmd() *cobra.Command {
	var f bundleFlags
	var stateDir string
	c := &cobra.Command{
		Use:   "import FILE",
		Short: "Verify a bundle and extract it into the agent's content directory",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			b, err := f.open(args[0])
			if err != nil {
				return err
			}
			defer b.Close()
			if stateDir == "" {
				stateDir = hostos.Root{Dir: f.rootDir}.Path(agent.DefaultStateDir)
			}
			dst, err := importBundle(b, filepath.Join(stateDir, ContentDir))
			if err != nil {
				return err
			}
			describeBundle(c.OutOrStdout(), b)
			fmt.Fprintf(c.OutOrStdout(), "imported into %s\n", dst)
			return nil
		},
	}
	f.register(c)
	c.Flags().StringVar(&stateDir, "state-dir", "", "the agent's state directory (default <root>"+agent.DefaultStateDir+")")
	return c
}

// importBundle extracts b into content/<name> so that an import is all or
// nothing: into a fresh directory first, then swapped for any earlier import
// of the same name.
func importBundle(b *bundle.Bundle, contentDir string) (string, error) {
	name := b.Manifest.Name
	if err := os.MkdirAll(contentDir, 0o755); err != nil {
		return "", fmt.Errorf("import bundle %q: %w", name, err)
	}
	tmp, err := os.MkdirTemp(contentDir, "."+name+".import-")
	if err != nil {
		return "", fmt.Errorf("import bundle %q: %w", name, err)
	}
	defer os.RemoveAll(tmp)
	if err := os.Chmod(tmp, 0o755); err != nil {
		return "", fmt.Errorf("import bundle %q: %w", name, err)
	}
	if err := b.Extract(tmp); err != nil {
		return "", err
	}
	dst := filepath.Join(contentDir, name)
	old := ""
	if _, err := os.Stat(dst); err == nil {
		old = filepath.Join(contentDir, "."+name+".old")
		os.RemoveAll(old)
		if err := os.Rename(dst, old); err != nil {
			return "", fmt.Errorf("import bundle %q: %w", name, err)
		}
	}
	if err := os.Rename(tmp, dst); err != nil {
		if old != "" {
			os.Rename(old, dst)
		}
		return "", fmt.Errorf("import bundle %q: %w", name, err)
	}
	if old != "" {
		os.RemoveAll(old)
	}
	return dst, nil
}

func describeBundle(w io.Writer, b *bundle.Bundle) {
	m := b.Manifest
	var size int64
	for _, f := range m.Files {
		size += f.Size
	}
	var profiles []string
	for _, p := range m.Definition.Profiles {
		profiles = append(profiles, p.Profile+" "+p.Version)
	}
	fmt.Fprintf(w, "bundle %q verified: signed by key %s\n", m.Name, b.KeyID)
	fmt.Fprintf(w, "  created   %s\n", m.Created.Format("2006-01-02 15:04:05 MST"))
	fmt.Fprintf(w, "  profiles  %s\n", cmp.Or(strings.Join(profiles, ", "), "none"))
	fmt.Fprintf(w, "  files     %d (%d bytes)\n", len(m.Files), size)
}
