package cli

import (
	"cmp"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"

	v1 "github.com/outpost-edge/outpost/api/v1"
	"github.com/outpost-edge/outpost/forge/bundle"
	"github.com/outpost-edge/outpost/forge/oci"
)

// Output formats of a provider image.
const (
	imageFormatOCI     = "oci"
	imageFormatTarball = "tarball"
)

func newBuildProviderImageCommand() *cobra.Command {
	var (
		distro, version, agentBin, agentVersion string
		base, arch, format, repository, created string
		out                                     string
		artifacts                               []string
	)
	cmd := &cobra.Command{
		Use:   "provider-image --distro NAME --version V --artifact NAME=PATH... --agent BIN -o OUT",
		Short: "Build an OCI image with a Kubernetes distro's artifacts and the agent, without Docker",
		Long: `Build a provider image: the distro's artifacts under
/opt/outpost/distro/<distro>/<version>/, the agent at /usr/local/bin/outpost-agent
and /etc/outpost/provider.json listing them, on top of --base (an OCI layout
directory, a "docker save" tarball, or scratch). No Docker daemon is used.

The image is tagged <distro>-<version>-<agent version> ("+" becomes "-") and
written as an OCI layout directory (--format oci; other images in it are kept)
or as a tarball for "docker load" / "ctr image import" (--format tarball, the
default when OUT ends in .tar).

The creation time is --created, else $SOURCE_DATE_EPOCH, else the Unix epoch:
the same inputs always give the same digest.

  outpost build provider-image --distro k3s --version 1.30.4+k3s1 \
    --artifact k3s=./k3s --artifact ./k3s-airgap-images-amd64.tar.zst \
    --agent bin/outpost-agent -o provider-oci`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return errors.New("-o OUT is required")
			}
			if distro == "" || version == "" || agentBin == "" {
				return errors.New("--distro, --version and --agent are required")
			}
			if format == "" {
				format = imageFormatOCI
				if strings.HasSuffix(out, ".tar") {
					format = imageFormatTarball
				}
			}
			if format != imageFormatOCI && format != imageFormatTarball {
				return fmt.Errorf("--format %q: want oci or tarball", format)
			}
			if agentVersion == "" {
				agentVersion = cmd.Root().Version
			}
			when, err := creationTime(created)
			if err != nil {
				return err
			}
			o := oci.ProviderImageOptions{
				Base: base, Distro: distro, Version: version,
				AgentBinary: agentBin, AgentVersion: agentVersion,
				Files: map[string]string{}, Arch: arch, Created: when,
			}
			for _, a := range artifacts {
				name, file, ok := strings.Cut(a, "=")
				if !ok {
					name, file = filepath.Base(a), a
				}
				if _, dup := o.Files[name]; dup {
					return fmt.Errorf("--artifact %s: %q is given twice", a, name)
				}
				o.Artifacts = append(o.Artifacts, v1.Artifact{Name: name, Arch: arch})
				o.Files[name] = file
			}
			step := progress(cmd)
			o.Progress = func(msg string) { step("provider image: %s", msg) }
			img, tag, err := oci.BuildProviderImage(cmd.Context(), o)
			if err != nil {
				return err
			}
			step("provider image: write %s (%s)", out, format)
			if format == imageFormatOCI {
				err = oci.WriteLayout(out, img, repository, tag)
			} else {
				err = oci.WriteTarball(out, img, repository, tag)
			}
			if err != nil {
				return err
			}
			digest, err := img.Digest()
			if err != nil {
				return fmt.Errorf("provider image %s: %w", tag, err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s:%s %s\n", cmp.Or(repository, oci.DefaultRepository), tag, digest)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&distro, "distro", "", "distro name (k3s, rke2, …)")
	f.StringVar(&version, "version", "", "distro version (1.30.4+k3s1)")
	f.StringArrayVar(&artifacts, "artifact", nil, "distro artifact NAME=PATH, or PATH to use its file name (repeatable)")
	f.StringVar(&agentBin, "agent", "", "outpost-agent binary for --arch")
	f.StringVar(&agentVersion, "agent-version", "", "agent version for the tag (default this outpost's version)")
	f.StringVar(&base, "base", oci.Scratch, "base image: an OCI layout directory, an image tarball, or scratch")
	f.StringVar(&arch, "arch", "amd64", "image architecture (GOARCH name)")
	f.StringVar(&format, "format", "", "oci (layout directory) or tarball (default: tarball when OUT ends in .tar)")
	f.StringVar(&repository, "repository", oci.DefaultRepository, "image name the tag is given under")
	f.StringVar(&created, "created", "", "creation time, RFC 3339 or Unix seconds (default $SOURCE_DATE_EPOCH, else the Unix epoch)")
	outputFlag(cmd, &out, "where to write the image")
	return cmd
}

// creationTime reads --created, falling back to SOURCE_DATE_EPOCH, the
// reproducible-builds convention, and then to the epoch.
func creationTime(flag string) (time.Time, error) {
	s, what := flag, "--created"
	if s == "" {
		s, what = os.Getenv("SOURCE_DATE_EPOCH"), "SOURCE_DATE_EPOCH"
	}
	if s == "" {
		return time.Unix(0, 0).UTC(), nil
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.Unix(n, 0).UTC(), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s %q: want RFC 3339 (2026-01-02T15:04:05Z) or Unix seconds", what, s)
	}
	return t.UTC(), nil
}

func newBuildBundleCommand() *cobra.Command {
	var (
		definition, keyFile, out, name, cacheDir string
		vars, arches                             []string
	)
	cmd := &cobra.Command{
		Use:   "bundle --definition FILE --key PRIV.pem -o OUT.tar.gz",
		Short: "Build a signed content bundle (cluster definition, artifacts, charts) for air-gapped sites",
		Long: `Build a content bundle: the cluster definition (the rendered profiles, as
"outpost profiles render -o json" prints them, and the variables), every
artifact and Helm chart they need, and an ed25519 signature over it all.
Sites load it with "outpost-agent bundle import" and refuse it unless the
signature verifies with a key they trust.

--definition is JSON or YAML: a list of rendered profiles, one rendered
profile, or {profiles: [...], variables: {...}}. Artifacts are checked against
their sha256 or checksum file, charts against their digest. Output ending in
.gz or .tgz is gzip-compressed.

  outpost build bundle keygen -o site            writes site.key and site.pub
  outpost build bundle --definition cluster.json --key site.key -o site.tar.gz`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if definition == "" || keyFile == "" || out == "" {
				return errors.New("--definition, --key and -o are required")
			}
			keyPEM, err := os.ReadFile(keyFile)
			if err != nil {
				return fmt.Errorf("read --key: %w", err)
			}
			priv, err := bundle.ParsePrivateKey(keyPEM)
			if err != nil {
				return fmt.Errorf("--key %s: %w", keyFile, err)
			}
			def, err := readDefinition(definition)
			if err != nil {
				return err
			}
			for _, v := range vars {
				k, val, ok := strings.Cut(v, "=")
				if !ok || k == "" {
					return fmt.Errorf("--var %q: want NAME=VALUE", v)
				}
				if def.Variables == nil {
					def.Variables = map[string]string{}
				}
				def.Variables[k] = val
			}
			if name == "" {
				name = bundleName(definition)
			}
			step := progress(cmd)
			layers := 0
			for _, p := range def.Profiles {
				layers += len(p.Layers)
			}
			step("bundle: %s: %d %s, %d layers", definition, len(def.Profiles), plural(len(def.Profiles), "profile", "profiles"), layers)

			dir := cacheDir
			if dir == "" {
				if dir, err = os.MkdirTemp("", "outpost-bundle-"); err != nil {
					return fmt.Errorf("bundle %q: %w", name, err)
				}
				defer os.RemoveAll(dir)
			}
			c := &bundle.Collector{
				Client:   http.DefaultClient,
				Dir:      dir,
				Arch:     arches,
				Progress: func(msg string) { step("bundle: %s", msg) },
			}
			files, err := c.Collect(cmd.Context(), def.Profiles)
			if err != nil {
				return fmt.Errorf("bundle %q: %w", name, err)
			}
			step("bundle: write %s (%d %s)", out, len(files), plural(len(files), "file", "files"))
			if err := bundle.WriteFile(out, bundle.Manifest{Name: name, Definition: def}, files, priv); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote bundle %q to %s, signed by key %s\n", name, out, bundle.KeyID(priv.Public().(ed25519.PublicKey)))
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&definition, "definition", "", "cluster definition (JSON or YAML)")
	f.StringVar(&keyFile, "key", "", "PKCS#8 PEM ed25519 private key (outpost build bundle keygen)")
	f.StringVar(&name, "name", "", "bundle name (default from the definition's file name)")
	f.StringArrayVar(&vars, "var", nil, "profile variable NAME=VALUE (repeatable; overrides the definition's)")
	f.StringArrayVar(&arches, "arch", nil, "only artifacts for this architecture (repeatable; default all)")
	f.StringVar(&cacheDir, "cache-dir", "", "keep the downloads here (default a temporary directory, removed after)")
	outputFlag(cmd, &out, "where to write the bundle (.tar, .tar.gz or .tgz)")
	cmd.AddCommand(newBuildBundleKeygenCommand())
	return cmd
}

// readDefinition reads a cluster definition in any of the shapes the help
// names, so the output of `outpost profiles render` works as it is.
func readDefinition(file string) (bundle.ClusterDefinition, error) {
	var def bundle.ClusterDefinition
	data, err := os.ReadFile(file)
	if err != nil {
		return def, fmt.Errorf("read --definition: %w", err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return def, fmt.Errorf("definition %s: %w", file, err)
	}
	if len(doc.Content) == 0 {
		return def, fmt.Errorf("definition %s is empty", file)
	}
	top := doc.Content[0]
	switch {
	case top.Kind == yaml.SequenceNode:
		err = top.Decode(&def.Profiles)
	case top.Kind == yaml.MappingNode && hasKey(top, "profiles"):
		err = top.Decode(&def)
	case top.Kind == yaml.MappingNode:
		var p v1.RenderedProfile
		err = top.Decode(&p)
		def.Profiles = []v1.RenderedProfile{p}
	default:
		err = errors.New("want a list of rendered profiles, one rendered profile, or {profiles, variables}")
	}
	if err != nil {
		return def, fmt.Errorf("definition %s: %w", file, err)
	}
	if len(def.Profiles) == 0 {
		return def, fmt.Errorf("definition %s holds no profiles", file)
	}
	for i, p := range def.Profiles {
		if p.Profile == "" || len(p.Layers) == 0 {
			return def, fmt.Errorf("definition %s: profile %d has no name or no layers; is it a rendered profile?", file, i+1)
		}
	}
	return def, nil
}

func hasKey(m *yaml.Node, key string) bool {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return true
		}
	}
	return false
}

var reNotName = regexp.MustCompile(`[^a-z0-9._-]+`)

// bundleName makes a bundle name of a file name: "Store EU.json" is
// "store-eu".
func bundleName(file string) string {
	base := filepath.Base(file)
	for ext := filepath.Ext(base); ext != ""; ext = filepath.Ext(base) {
		base = strings.TrimSuffix(base, ext)
	}
	n := strings.Trim(reNotName.ReplaceAllString(strings.ToLower(base), "-"), "-._")
	if len(n) > 63 {
		n = strings.Trim(n[:63], "-._")
	}
	return cmp.Or(n, "bundle")
}

func newBuildBundleKeygenCommand() *cobra.Command {
	var prefix string
	var force bool
	cmd := &cobra.Command{
		Use:   "keygen -o PREFIX",
		Short: "Make a bundle signing key: PREFIX.key (private, 0600) and PREFIX.pub",
		Long: `Make an ed25519 key pair for signing bundles: PREFIX.key (PKCS#8 PEM, 0600)
signs with "outpost build bundle --key"; PREFIX.pub (PKIX PEM) goes into the
sites' user-data as bundleKeys, or to "outpost-agent bundle --key". Existing
files are kept unless --force.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if prefix == "" {
				return errors.New("-o PREFIX is required")
			}
			pub, priv, err := bundle.GenerateKey()
			if err != nil {
				return err
			}
			privPEM, err := bundle.EncodePrivateKey(priv)
			if err != nil {
				return err
			}
			pubPEM, err := bundle.EncodePublicKey(pub)
			if err != nil {
				return err
			}
			flags := os.O_WRONLY | os.O_CREATE | os.O_EXCL
			if force {
				flags = os.O_WRONLY | os.O_CREATE | os.O_TRUNC
			}
			for _, f := range []struct {
				path string
				data []byte
				mode os.FileMode
			}{{prefix + ".key", privPEM, 0o600}, {prefix + ".pub", pubPEM, 0o644}} {
				if err := writeNew(f.path, f.data, f.mode, flags); err != nil {
					return err
				}
				progress(cmd)("bundle keygen: wrote %s", f.path)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "key %s: sign with --key %s.key; trust %s.pub in the sites' bundleKeys\n", bundle.KeyID(pub), prefix, prefix)
			return nil
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "overwrite existing key files")
	outputFlag(cmd, &prefix, "file name prefix: writes PREFIX.key and PREFIX.pub")
	return cmd
}

func writeNew(path string, data []byte, mode os.FileMode, flags int) error {
	f, err := os.OpenFile(path, flags, mode)
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("%s exists; pass --force to replace it", path)
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	return f.Close()
}
