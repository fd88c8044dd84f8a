package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"

	v1 "github.com/outpost-edge/outpost/api/v1"
	"github.com/outpost-edge/outpost/pki"
)

// loadSpec reads the cached HostSpec; ok is false when there is none. The
// cache is what lets a host re-apply its spec after a reboot with the hub
// out of reach.
func (s store) loadSpec() (spec v1.HostSpec, ok bool, err error) {
	data, err := os.ReadFile(s.path(fileSpec))
	if errors.Is(err, fs.ErrNotExist) {
		return spec, false, nil
	}
	if err != nil {
		return spec, false, fmt.Errorf("read cached spec: %w", err)
	}
	if err := json.Unmarshal(data, &spec); err != nil {
		return spec, false, fmt.Errorf("cached spec %s: %w", s.path(fileSpec), err)
	}
	return spec, true, nil
}

// saveSpec writes the spec exactly as the hub sent it (raw), so fields this
// agent version does not know yet survive in the cache; atomically, and
// mode 0600 because specs carry join secrets.
func (s store) saveSpec(raw []byte, rev int64) error {
	if err := pki.WriteFileAtomic(s.path(fileSpec), raw, 0o600); err != nil {
		return fmt.Errorf("save spec revision %d: %w", rev, err)
	}
	return nil
}
