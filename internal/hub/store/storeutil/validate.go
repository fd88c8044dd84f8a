package storeutil

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/outpost-edge/outpost/internal/errs"
	"github.com/outpost-edge/outpost/internal/hub/store"
)

// Ident names an object in messages: "project/name", or "name" outside
// projects.
func Ident(project, name string) string {
	if project == "" {
		return name
	}
	return project + "/" + name
}

// ValidateOps checks a Write's ops before any SQL runs, so both stores
// refuse exactly the same malformed input with ErrInvalid.
func ValidateOps(ops []store.Op) error {
	for i, op := range ops {
		o := op.Object
		if op.Type < store.OpCreate || op.Type > store.OpDelete {
			return fmt.Errorf("write op %d on %s %q: unknown op type %d: %w", i, o.Kind, Ident(o.Project, o.Name), op.Type, errs.ErrInvalid)
		}
		if o.Kind == "" || o.Name == "" {
			return fmt.Errorf("%s op %d: kind and name are required: %w", op.Type, i, errs.ErrInvalid)
		}
		for _, f := range []string{o.Kind, o.Project, o.Name, o.Key} {
			// PostgreSQL text cannot hold these; SQLite could, but both
			// stores must accept the same objects.
			if !utf8.ValidString(f) || strings.IndexByte(f, 0) >= 0 {
				return fmt.Errorf("%s %s %q: kind, project, name and key must be UTF-8 without NUL: %w", op.Type, o.Kind, Ident(o.Project, o.Name), errs.ErrInvalid)
			}
		}
		if op.Type != store.OpDelete {
			if !json.Valid(o.Data) {
				return fmt.Errorf("%s %s %q: data is not valid JSON: %w", op.Type, o.Kind, Ident(o.Project, o.Name), errs.ErrInvalid)
			}
			if hasEscapedNUL(o.Data) {
				return fmt.Errorf("%s %s %q: data contains \\u0000, which PostgreSQL cannot store: %w", op.Type, o.Kind, Ident(o.Project, o.Name), errs.ErrInvalid)
			}
		}
		if op.ExpectRevision < 0 {
			return fmt.Errorf("%s %s %q: negative expected revision: %w", op.Type, o.Kind, Ident(o.Project, o.Name), errs.ErrInvalid)
		}
	}
	return nil
}

// hasEscapedNUL reports whether JSON text has a \u0000 escape (one not
// itself escaped as \\u0000): jsonb rejects it.
func hasEscapedNUL(data []byte) bool {
	for i := 0; ; {
		j := bytes.Index(data[i:], []byte(`\u0000`))
		if j < 0 {
			return false
		}
		j += i
		backslashes := 0
		for k := j - 1; k >= 0 && data[k] == '\\'; k-- {
			backslashes++
		}
		if backslashes%2 == 0 {
			return true
		}
		i = j + 1
	}
}
