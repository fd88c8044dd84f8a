package helm

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	v1 "github.com/outpost-edge/outpost/api/v1"
	"github.com/outpost-edge/outpost/forge/bundle"
)

// ErrNoChart is what a Fetcher of a Chain returns to pass the layer on to
// the next one.
var ErrNoChart = errors.New("chart not found")

// Chain tries fetchers in order: the first that does not return ErrNoChart
// answers.
func Chain(fetchers ...Fetcher) Fetcher {
	return func(ctx context.Context, l v1.RenderedLayer) (string, error) {
		err := ErrNoChart
		for _, f := range fetchers {
			var p string
			p, err = f(ctx, l)
			if !errors.Is(err, ErrNoChart) {
				return p, err
			}
		}
		return "", err
	}
}

// ContentFetcher finds charts in the content bundles imported into dir
// (`outpost-agent bundle import`, <state>/content): <dir>/<bundle>/charts/
// <chart>-<version>.tgz. A bundle's files were verified against its signed
// manifest at import; a chart is still checked against the layer's pinned
// sha256 when there is one, so a bundle built for another pin is passed
// over. Nothing found is ErrNoChart, for Chain.
func ContentFetcher(dir string) Fetcher {
	return func(_ context.Context, l v1.RenderedLayer) (string, error) {
		if l.Chart == nil {
			return "", ErrNoChart
		}
		rel, err := bundle.ChartPath(*l.Chart)
		if err != nil {
			return "", ErrNoChart
		}
		_, want := chartArtifact(l)
		if want == "" {
			want = normDigest(l.Chart.Digest)
		}
		ents, err := os.ReadDir(dir)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return "", ErrNoChart
			}
			return "", fmt.Errorf("content bundles: %w", err)
		}
		var passed []string
		for _, e := range ents {
			if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
				// Imports in progress and swapped-out old ones.
				continue
			}
			p := filepath.Join(dir, e.Name(), filepath.FromSlash(rel))
			got, err := fileSHA256(p)
			if err != nil {
				continue
			}
			if want != "" && got != want {
				passed = append(passed, e.Name())
				continue
			}
			return p, nil
		}
		if len(passed) > 0 {
			return "", fmt.Errorf("%w: bundles %s have %s but not with sha256 %s", ErrNoChart, strings.Join(passed, ", "), rel, want)
		}
		return "", ErrNoChart
	}
}
