package objects

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	v1 "github.com/outpost-edge/outpost/api/v1"
	"github.com/outpost-edge/outpost/internal/hub/store"
)

// Ptr is the pointer form of an api/v1 object type T.
type Ptr[T any] interface {
	*T
	v1.Object
}

// Decode turns a stored row into a T, taking name, project, revision and
// timestamps from the row (they are the truth, not the document).
func Decode[T any, P Ptr[T]](o store.Object) (*T, error) {
	t := new(T)
	if err := json.Unmarshal(o.Data, t); err != nil {
		return nil, fmt.Errorf("decode %s %q: %w", o.Kind, o.Project+"/"+o.Name, err)
	}
	m := P(t).GetObjectMeta()
	m.Name, m.Project = o.Name, o.Project
	m.Revision, m.CreatedAt, m.UpdatedAt = o.Revision, o.CreatedAt, o.UpdatedAt
	return t, nil
}

// Encode turns a T into a row of kind with the given unique key ("" none).
func Encode[T any, P Ptr[T]](kind string, obj *T, key string) (store.Object, error) {
	m := P(obj).GetObjectMeta()
	data, err := json.Marshal(obj)
	if err != nil {
		return store.Object{}, fmt.Errorf("encode %s %q: %w", kind, m.Name, err)
	}
	return store.Object{Kind: kind, Project: m.Project, Name: m.Name, Key: key, Data: data}, nil
}

// Get reads one object.
func Get[T any, P Ptr[T]](ctx context.Context, s store.Store, kind, project, name string) (*T, error) {
	o, err := s.Get(ctx, kind, project, name)
	if err != nil {
		return nil, err
	}
	return Decode[T, P](o)
}

// GetByKey reads one object by its unique key.
func GetByKey[T any, P Ptr[T]](ctx context.Context, s store.Store, kind, key string) (*T, error) {
	o, err := s.GetByKey(ctx, kind, key)
	if err != nil {
		return nil, err
	}
	return Decode[T, P](o)
}

// List reads every object of kind in project ("" for all projects), paging
// through the store so a large fleet is not one giant query.
func List[T any, P Ptr[T]](ctx context.Context, s store.Store, kind, project string) ([]*T, int64, error) {
	const page = 1000
	var out []*T
	opts := store.ListOptions{Kind: kind, Project: project, Limit: page}
	var rev int64
	for {
		rows, r, err := s.List(ctx, opts)
		if err != nil {
			return nil, 0, fmt.Errorf("list %s: %w", kind, err)
		}
		if rev == 0 {
			rev = r
		}
		for _, o := range rows {
			t, err := Decode[T, P](o)
			if err != nil {
				return nil, 0, err
			}
			out = append(out, t)
		}
		if len(rows) < page {
			return out, rev, nil
		}
		last := rows[len(rows)-1]
		opts.AfterProject, opts.AfterName = last.Project, last.Name
	}
}

// CreateOp returns the op that creates obj.
func CreateOp[T any, P Ptr[T]](kind string, obj *T, key string) (store.Op, error) {
	o, err := Encode[T, P](kind, obj, key)
	return store.Op{Type: store.OpCreate, Object: o}, err
}

// UpdateOp returns the op that replaces obj, expecting the revision in its
// metadata (0: unconditional).
func UpdateOp[T any, P Ptr[T]](kind string, obj *T, key string) (store.Op, error) {
	o, err := Encode[T, P](kind, obj, key)
	return store.Op{Type: store.OpUpdate, Object: o, ExpectRevision: P(obj).GetObjectMeta().Revision}, err
}

// DeleteOp returns the op that deletes kind/project/name at revision rev.
func DeleteOp(kind, project, name string, rev int64) store.Op {
	return store.Op{Type: store.OpDelete, Object: store.Object{Kind: kind, Project: project, Name: name}, ExpectRevision: rev}
}

// Event types.
const (
	EventNormal  = "Normal"
	EventWarning = "Warning"
)

// EventOp returns the op that records an event about kind/name in project.
func EventOp(project, kind, name, typ, reason, message string) store.Op {
	id := make([]byte, 8)
	rand.Read(id)
	now := time.Now().UTC()
	ev := &v1.Event{
		TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindEvent},
		Metadata: v1.ObjectMeta{
			// Names sort by time, so listing events by name lists them in order.
			Name:    fmt.Sprintf("%016x-%s", now.UnixNano(), hex.EncodeToString(id)),
			Project: project,
		},
		Object: kind + "/" + name, Type: typ, Reason: reason, Message: message, Time: now,
	}
	op, _ := CreateOp(v1.KindEvent, ev, "")
	return op
}

// Written decodes the i-th object a Write returned.
func Written[T any, P Ptr[T]](rows []store.Object, i int) (*T, error) {
	return Decode[T, P](rows[i])
}
