package oci

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/google/go-containerregistry/pkg/name"
	gcr "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/match"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Annotations on an image's entry in an OCI layout's index.json: the tag,
// as the OCI image layout specification names references, and the full
// name, which containerd (`ctr image import`) names the image by.
const (
	AnnotationRefName        = "org.opencontainers.image.ref.name"
	AnnotationContainerdName = "io.containerd.image.name"
)

// DefaultRepository names provider images when no repository is given.
const DefaultRepository = "outpost/provider"

// WriteLayout adds img to the OCI image layout at dir (made if missing)
// under the tag, replacing an image of the same tag; other images in the
// layout stay.
func WriteLayout(dir string, img gcr.Image, repository, tag string) error {
	ref, err := reference(repository, tag)
	if err != nil {
		return err
	}
	p, err := layout.FromPath(dir)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("oci layout %s: %w", dir, err)
		}
		if p, err = layout.Write(dir, empty.Index); err != nil {
			return fmt.Errorf("oci layout %s: %w", dir, err)
		}
	}
	err = p.ReplaceImage(img, match.Annotation(AnnotationRefName, tag),
		layout.WithAnnotations(map[string]string{
			AnnotationRefName:        tag,
			AnnotationContainerdName: ref.String(),
		}))
	if err != nil {
		return fmt.Errorf("oci layout %s: write %s: %w", dir, ref, err)
	}
	return nil
}

// WriteTarball writes img as a tarball that `docker load` and `ctr image
// import` read, named repository:tag.
func WriteTarball(file string, img gcr.Image, repository, tag string) error {
	ref, err := reference(repository, tag)
	if err != nil {
		return err
	}
	tmp := file + ".tmp"
	if err := tarball.WriteToFile(tmp, ref, img); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("image tarball %s: %w", file, err)
	}
	if err := os.Rename(tmp, file); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("image tarball %s: %w", file, err)
	}
	return nil
}

func reference(repository, tag string) (name.Tag, error) {
	if repository == "" {
		repository = DefaultRepository
	}
	ref, err := name.NewTag(repository + ":" + tag)
	if err != nil {
		return name.Tag{}, fmt.Errorf("image name %s:%s: %w", repository, tag, err)
	}
	return ref, nil
}

// loadBase reads the base image: scratch, an OCI layout directory or a
// `docker save` tarball. oci reports whether the base uses OCI media types,
// so that added layers match it.
func loadBase(base, arch string) (gcr.Image, bool, error) {
	if base == "" || base == Scratch {
		return empty.Image, true, nil
	}
	st, err := os.Stat(base)
	if err != nil {
		return nil, false, fmt.Errorf("base image: %w", err)
	}
	var img gcr.Image
	if st.IsDir() {
		img, err = fromLayout(base, arch)
	} else {
		img, err = tarball.ImageFromPath(base, nil)
		if err != nil {
			err = fmt.Errorf("base image %s is neither an OCI layout directory nor an image tarball: %w", base, err)
		}
	}
	if err != nil {
		return nil, false, err
	}
	mt, err := img.MediaType()
	if err != nil {
		return nil, false, fmt.Errorf("base image %s: %w", base, err)
	}
	return img, mt == types.OCIManifestSchema1, nil
}

// fromLayout finds the one image for linux/arch in a layout, looking into
// multi-platform indexes.
func fromLayout(dir, arch string) (gcr.Image, error) {
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		return nil, fmt.Errorf("base image %s: %w", dir, err)
	}
	var found []gcr.Image
	var walk func(ii gcr.ImageIndex) error
	walk = func(ii gcr.ImageIndex) error {
		m, err := ii.IndexManifest()
		if err != nil {
			return err
		}
		for _, d := range m.Manifests {
			if d.Platform != nil && (d.Platform.OS != "linux" || d.Platform.Architecture != arch) {
				continue
			}
			switch {
			case d.MediaType.IsIndex():
				child, err := ii.ImageIndex(d.Digest)
				if err != nil {
					return err
				}
				if err := walk(child); err != nil {
					return err
				}
			case d.MediaType.IsImage():
				img, err := ii.Image(d.Digest)
				if err != nil {
					return err
				}
				if d.Platform == nil {
					// Untagged platforms are checked on the config.
					cf, err := img.ConfigFile()
					if err != nil {
						return err
					}
					if cf.Architecture != "" && cf.Architecture != arch {
						continue
					}
				}
				found = append(found, img)
			}
		}
		return nil
	}
	if err := walk(idx); err != nil {
		return nil, fmt.Errorf("base image %s: %w", dir, err)
	}
	switch len(found) {
	case 0:
		return nil, fmt.Errorf("base image %s holds no image for linux/%s", dir, arch)
	case 1:
		return found[0], nil
	}
	return nil, fmt.Errorf("base image %s holds %d images for linux/%s; keep one in the layout (or name a tarball)", filepath.Clean(dir), len(found), arch)
}
