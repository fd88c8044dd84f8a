package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/outpost-edge/outpost/internal/errs"
	"github.com/outpost-edge/outpost/internal/hub/store"
)

// Run runs the conformance suite. open must return a new, empty store for
// each call and close it when t ends (t.Cleanup).
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		f    func(t *testing.T, open func(t *testing.T) store.Store)
	}{
		{"EmptyStore", testEmptyStore},
		{"CreateAndGet", testCreateAndGet},
		{"Times", testTimes},
		{"GetNotFound", testGetNotFound},
		{"CreateDuplicate", testCreateDuplicate},
		{"Update", testUpdate},
		{"UpdateKey", testUpdateKey},
		{"UpdateUnconditional", testUpdateUnconditional},
		{"UpdateErrors", testUpdateErrors},
		{"Delete", testDelete},
		{"DeleteErrors", testDeleteErrors},
		{"List", testList},
		{"ListPaging", testListPaging},
		{"WriteInvalid", testWriteInvalid},
		{"WriteEmpty", testWriteEmpty},
		{"WriteAtomic", testWriteAtomic},
		{"WriteSharedRevision", testWriteSharedRevision},
		{"WriteSameObjectTwice", testWriteSameObjectTwice},
		{"RevisionIncreases", testRevisionIncreases},
		{"Changes", testChanges},
		{"ChangesKeepRevisionsWhole", testChangesKeepRevisionsWhole},
		{"Compact", testCompact},
		{"Notify", testNotify},
		{"NotifyCoalesces", testNotifyCoalesces},
		{"NotifyClosedWhenContextEnds", testNotifyClosed},
		{"LastSeen", testLastSeen},
		{"CanceledContext", testCanceledContext},
		{"ConcurrentCreates", testConcurrentCreates},
		{"ConcurrentReadModifyWrite", testConcurrentReadModifyWrite},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.f(t, open) })
	}
}

// wait bounds every wait for something asynchronous (Notify): long enough for
// a loaded CI machine, short enough that a lost wake-up fails the test.
const wait = 10 * time.Second

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// obj builds an object; data is a JSON document.
func obj(kind, project, name, key, data string) store.Object {
	return store.Object{Kind: kind, Project: project, Name: name, Key: key, Data: []byte(data)}
}

func create(o store.Object) store.Op { return store.Op{Type: store.OpCreate, Object: o} }

func update(o store.Object, expect int64) store.Op {
	return store.Op{Type: store.OpUpdate, Object: o, ExpectRevision: expect}
}

func del(kind, project, name string, expect int64) store.Op {
	return store.Op{Type: store.OpDelete, Object: store.Object{Kind: kind, Project: project, Name: name}, ExpectRevision: expect}
}

// mustWrite writes ops and checks the result's shape.
func mustWrite(t *testing.T, s store.Store, ops ...store.Op) (int64, []store.Object) {
	t.Helper()
	rev, objs, err := s.Write(testCtx(t), ops...)
	if err != nil {
		t.Fatalf("Write: %v", err)
	}
	if len(objs) != len(ops) {
		t.Fatalf("Write returned %d objects for %d ops", len(objs), len(ops))
	}
	for i, o := range objs {
		if o.Revision != rev {
			t.Fatalf("Write object %d has revision %d, want the write's revision %d", i, o.Revision, rev)
		}
	}
	return rev, objs
}

func mustGet(t *testing.T, s store.Store, kind, project, name string) store.Object {
	t.Helper()
	o, err := s.Get(testCtx(t), kind, project, name)
	if err != nil {
		t.Fatalf("Get %s %s/%s: %v", kind, project, name, err)
	}
	return o
}

func mustRevision(t *testing.T, s store.Store) int64 {
	t.Helper()
	rev, err := s.Revision(testCtx(t))
	if err != nil {
		t.Fatalf("Revision: %v", err)
	}
	return rev
}

func mustChanges(t *testing.T, s store.Store, since int64, limit int) []store.Change {
	t.Helper()
	cs, err := s.Changes(testCtx(t), since, limit)
	if err != nil {
		t.Fatalf("Changes(%d, %d): %v", since, limit, err)
	}
	return cs
}

func jsonEqual(a, b []byte) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}

// checkObject compares every field; Data as JSON, times with Equal and in
// UTC.
func checkObject(t *testing.T, what string, got, want store.Object) {
	t.Helper()
	if got.Kind != want.Kind || got.Project != want.Project || got.Name != want.Name || got.Key != want.Key {
		t.Errorf("%s: got %s %q/%q key %q, want %s %q/%q key %q", what,
			got.Kind, got.Project, got.Name, got.Key, want.Kind, want.Project, want.Name, want.Key)
	}
	if got.Revision != want.Revision {
		t.Errorf("%s: revision %d, want %d", what, got.Revision, want.Revision)
	}
	if !got.CreatedAt.Equal(want.CreatedAt) {
		t.Errorf("%s: CreatedAt %v, want %v", what, got.CreatedAt, want.CreatedAt)
	}
	if !got.UpdatedAt.Equal(want.UpdatedAt) {
		t.Errorf("%s: UpdatedAt %v, want %v", what, got.UpdatedAt, want.UpdatedAt)
	}
	checkUTC(t, what, got)
	if !jsonEqual(got.Data, want.Data) {
		t.Errorf("%s: data %s, want %s", what, got.Data, want.Data)
	}
}

func checkUTC(t *testing.T, what string, o store.Object) {
	t.Helper()
	if o.CreatedAt.Location() != time.UTC || o.UpdatedAt.Location() != time.UTC {
		t.Errorf("%s: times not in UTC: %v, %v", what, o.CreatedAt, o.UpdatedAt)
	}
}

// checkErr wants err to wrap sentinel and its message to contain each of
// names (the object it is about).
func checkErr(t *testing.T, what string, err, sentinel error, names ...string) {
	t.Helper()
	if !errors.Is(err, sentinel) {
		t.Errorf("%s: error %v, want %v", what, err, sentinel)
		return
	}
	for _, n := range names {
		if !strings.Contains(err.Error(), n) {
			t.Errorf("%s: error %q does not name %s", what, err, n)
		}
	}
}

func checkNotFound(t *testing.T, s store.Store, kind, project, name string) {
	t.Helper()
	if o, err := s.Get(testCtx(t), kind, project, name); !errors.Is(err, errs.ErrNotFound) {
		t.Errorf("Get %s %s/%s after it should be gone: %+v, %v", kind, project, name, o, err)
	}
}

func testEmptyStore(t *testing.T, open func(t *testing.T) store.Store) {
	s := open(t)
	ctx := testCtx(t)
	if rev := mustRevision(t, s); rev != 0 {
		t.Errorf("fresh store at revision %d, want 0", rev)
	}
	objs, rev, err := s.List(ctx, store.ListOptions{Kind: "Thing"})
	if err != nil || len(objs) != 0 || rev != 0 {
		t.Errorf("List of a fresh store: %v, %d, %v", objs, rev, err)
	}
	if cs := mustChanges(t, s, 0, 0); len(cs) != 0 {
		t.Errorf("Changes of a fresh store: %v", cs)
	}
	seen, err := s.LoadLastSeen(ctx)
	if err != nil || len(seen) != 0 {
		t.Errorf("LoadLastSeen of a fresh store: %v, %v", seen, err)
	}
}

func testCreateAndGet(t *testing.T, open func(t *testing.T) store.Store) {
	big := `{"blob":"` + strings.Repeat("x", 256<<10) + `"}`
	tests := []struct {
		name string
		o    store.Object
	}{
		{"in a project", obj("EdgeHost", "p1", "h1", "host-id-1", `{"spec":{"labels":{"a":"b"}},"n":1}`)},
		{"outside projects", obj("Project", "", "p1", "", `{"spec":{}}`)},
		{"with key outside projects", obj("APIToken", "", "t1", "tok-1", `{"x":[1,2,3]}`)},
		{"unicode and escapes", obj("Thing", "p", "ü-name", "", `{"s":"héllo \"q\" \u00e9 \n","e":null,"f":1.5,"b":true}`)},
		{"large document", obj("Thing", "p", "big", "", big)},
		{"empty object", obj("Thing", "p", "empty", "", `{}`)},
		// A backslash followed by the text u0000, not a NUL character.
		{"escaped backslash before u0000", obj("Thing", "p", "bs", "", `{"s":"\\u0000"}`)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := open(t)
			ctx := testCtx(t)
			rev, objs := mustWrite(t, s, create(tt.o))
			if rev <= 0 {
				t.Fatalf("create returned revision %d", rev)
			}
			got := objs[0]
			want := tt.o
			want.Revision, want.CreatedAt, want.UpdatedAt = rev, got.CreatedAt, got.CreatedAt
			checkObject(t, "Write result", got, want)
			if got.CreatedAt.IsZero() {
				t.Errorf("CreatedAt not set")
			}
			checkObject(t, "Get", mustGet(t, s, tt.o.Kind, tt.o.Project, tt.o.Name), want)
			if tt.o.Key != "" {
				byKey, err := s.GetByKey(ctx, tt.o.Kind, tt.o.Key)
				if err != nil {
					t.Fatalf("GetByKey: %v", err)
				}
				checkObject(t, "GetByKey", byKey, want)
			}
			if r := mustRevision(t, s); r != rev {
				t.Errorf("Revision %d after the write, want %d", r, rev)
			}
		})
	}
}

func testTimes(t *testing.T, open func(t *testing.T) store.Store) {
	s := open(t)
	before := time.Now()
	_, objs := mustWrite(t, s, create(obj("Thing", "p", "a", "", `{"v":1}`)))
	after := time.Now()
	c := objs[0]
	// Stores may truncate to microseconds.
	if c.CreatedAt.Before(before.Add(-time.Millisecond)) || c.CreatedAt.After(after.Add(time.Millisecond)) {
		t.Errorf("CreatedAt %v not between %v and %v", c.CreatedAt, before, after)
	}
	if !c.UpdatedAt.Equal(c.CreatedAt) {
		t.Errorf("new object: UpdatedAt %v != CreatedAt %v", c.UpdatedAt, c.CreatedAt)
	}
	time.Sleep(5 * time.Millisecond)
	_, objs = mustWrite(t, s, update(obj("Thing", "p", "a", "", `{"v":2}`), c.Revision))
	u := objs[0]
	if !u.CreatedAt.Equal(c.CreatedAt) {
		t.Errorf("update changed CreatedAt from %v to %v", c.CreatedAt, u.CreatedAt)
	}
	if !u.UpdatedAt.After(c.UpdatedAt) {
		t.Errorf("update did not move UpdatedAt: %v, before %v", u.UpdatedAt, c.UpdatedAt)
	}
	checkUTC(t, "updated", u)
	checkObject(t, "Get after update", mustGet(t, s, "Thing", "p", "a"), u)
}

func testGetNotFound(t *testing.T, open func(t *testing.T) store.Store) {
	s := open(t)
	mustWrite(t, s, create(obj("Thing", "p1", "a", "k1", `{}`)))
	ctx := testCtx(t)
	tests := []struct {
		desc                string
		kind, project, name string
		ident               string
	}{
		{"other name", "Thing", "p1", "b", `Thing "p1/b"`},
		{"other project", "Thing", "p2", "a", `Thing "p2/a"`},
		{"other kind", "Other", "p1", "a", `Other "p1/a"`},
		{"no project", "Thing", "", "a", `Thing "a"`},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			_, err := s.Get(ctx, tt.kind, tt.project, tt.name)
			checkErr(t, "Get", err, errs.ErrNotFound, tt.ident)
		})
	}
	keys := []struct{ name, kind, key string }{
		{"other key", "Thing", "k2"},
		{"key of other kind", "Other", "k1"},
		{"empty key", "Thing", ""},
	}
	for _, tt := range keys {
		t.Run("by key/"+tt.name, func(t *testing.T) {
			_, err := s.GetByKey(ctx, tt.kind, tt.key)
			checkErr(t, "GetByKey", err, errs.ErrNotFound, tt.kind)
		})
	}
}

func testCreateDuplicate(t *testing.T, open func(t *testing.T) store.Store) {
	s := open(t)
	rev, _ := mustWrite(t, s, create(obj("Thing", "p1", "a", "k1", `{"orig":true}`)),
		create(obj("Thing", "p1", "nokey", "", `{}`)))
	ctx := testCtx(t)
	fails := []struct {
		name  string
		o     store.Object
		ident string
	}{
		{"same name", obj("Thing", "p1", "a", "", `{}`), `Thing "p1/a"`},
		{"same name and key", obj("Thing", "p1", "a", "k1", `{}`), `Thing "p1/a"`},
		{"same key in another project", obj("Thing", "p2", "b", "k1", `{}`), `Thing "p2/b"`},
		{"same key outside projects", obj("Thing", "", "c", "k1", `{}`), `Thing "c"`},
	}
	for _, tt := range fails {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := s.Write(ctx, create(tt.o))
			checkErr(t, "create", err, errs.ErrAlreadyExists, tt.ident)
			if r := mustRevision(t, s); r != rev {
				t.Errorf("failed create moved the revision from %d to %d", rev, r)
			}
		})
	}
	if o := mustGet(t, s, "Thing", "p1", "a"); !jsonEqual(o.Data, []byte(`{"orig":true}`)) || o.Revision != rev {
		t.Errorf("failed creates changed the original: %s at %d", o.Data, o.Revision)
	}
	checkNotFound(t, s, "Thing", "p2", "b")

	oks := []struct {
		name string
		o    store.Object
	}{
		{"same name in another project", obj("Thing", "p2", "a", "", `{}`)},
		{"same name outside projects", obj("Thing", "", "a", "", `{}`)},
		{"same name of another kind", obj("Other", "p1", "a", "", `{}`)},
		{"same key of another kind", obj("Other", "p1", "x", "k1", `{}`)},
		{"second object without key", obj("Thing", "p1", "nokey2", "", `{}`)},
	}
	for _, tt := range oks {
		t.Run(tt.name, func(t *testing.T) {
			if _, _, err := s.Write(ctx, create(tt.o)); err != nil {
				t.Errorf("create: %v", err)
			}
		})
	}
}

func testUpdate(t *testing.T, open func(t *testing.T) store.Store) {
	s := open(t)
	r1, objs := mustWrite(t, s, create(obj("Thing", "p1", "a", "k1", `{"v":1}`)))
	created := objs[0]
	r2, objs := mustWrite(t, s, update(obj("Thing", "p1", "a", "k1", `{"v":2}`), r1))
	if r2 <= r1 {
		t.Fatalf("update revision %d not after create's %d", r2, r1)
	}
	want := obj("Thing", "p1", "a", "k1", `{"v":2}`)
	want.Revision, want.CreatedAt, want.UpdatedAt = r2, created.CreatedAt, objs[0].UpdatedAt
	checkObject(t, "Write result", objs[0], want)
	checkObject(t, "Get", mustGet(t, s, "Thing", "p1", "a"), want)
	byKey, err := s.GetByKey(testCtx(t), "Thing", "k1")
	if err != nil {
		t.Fatal(err)
	}
	checkObject(t, "GetByKey", byKey, want)

	// The new revision is the one to expect next.
	r3, _ := mustWrite(t, s, update(obj("Thing", "p1", "a", "k1", `{"v":3}`), r2))
	if got := mustGet(t, s, "Thing", "p1", "a"); got.Revision != r3 || !jsonEqual(got.Data, []byte(`{"v":3}`)) {
		t.Errorf("second update: %s at %d, want v 3 at %d", got.Data, got.Revision, r3)
	}
}

func testUpdateKey(t *testing.T, open func(t *testing.T) store.Store) {
	s := open(t)
	ctx := testCtx(t)
	r1, _ := mustWrite(t, s, create(obj("Thing", "p1", "a", "k1", `{}`)))
	r2, _ := mustWrite(t, s, update(obj("Thing", "p1", "a", "k2", `{}`), r1))
	if _, err := s.GetByKey(ctx, "Thing", "k1"); !errors.Is(err, errs.ErrNotFound) {
		t.Errorf("old key still finds the object: %v", err)
	}
	if o, err := s.GetByKey(ctx, "Thing", "k2"); err != nil || o.Name != "a" {
		t.Errorf("new key: %+v, %v", o, err)
	}
	// The old key is free for another object.
	mustWrite(t, s, create(obj("Thing", "p2", "b", "k1", `{}`)))
	// An empty key removes it.
	mustWrite(t, s, update(obj("Thing", "p1", "a", "", `{}`), r2))
	if _, err := s.GetByKey(ctx, "Thing", "k2"); !errors.Is(err, errs.ErrNotFound) {
		t.Errorf("removed key still finds the object: %v", err)
	}
	if o := mustGet(t, s, "Thing", "p1", "a"); o.Key != "" {
		t.Errorf("key %q after update without key", o.Key)
	}
}

func testUpdateUnconditional(t *testing.T, open func(t *testing.T) store.Store) {
	s := open(t)
	r1, _ := mustWrite(t, s, create(obj("Thing", "p1", "a", "", `{"v":1}`)))
	mustWrite(t, s, update(obj("Thing", "p1", "a", "", `{"v":2}`), r1))
	// ExpectRevision 0 writes over whatever is there, even though r1 is stale.
	r3, _ := mustWrite(t, s, update(obj("Thing", "p1", "a", "", `{"v":3}`), 0))
	if o := mustGet(t, s, "Thing", "p1", "a"); o.Revision != r3 || !jsonEqual(o.Data, []byte(`{"v":3}`)) {
		t.Errorf("unconditional update: %s at %d", o.Data, o.Revision)
	}
}

func testUpdateErrors(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name     string
		op       func(r1, r2 int64) store.Op
		sentinel error
		ident    string
	}{
		{"stale revision", func(r1, r2 int64) store.Op {
			return update(obj("Thing", "p1", "a", "k1", `{"v":9}`), r1)
		}, errs.ErrConflict, `Thing "p1/a"`},
		{"future revision", func(r1, r2 int64) store.Op {
			return update(obj("Thing", "p1", "a", "k1", `{"v":9}`), r2+100)
		}, errs.ErrConflict, `Thing "p1/a"`},
		{"missing object", func(r1, r2 int64) store.Op {
			return update(obj("Thing", "p1", "nope", "", `{"v":9}`), 0)
		}, errs.ErrNotFound, `Thing "p1/nope"`},
		{"missing object with revision", func(r1, r2 int64) store.Op {
			return update(obj("Thing", "p1", "nope", "", `{"v":9}`), r2)
		}, errs.ErrNotFound, `Thing "p1/nope"`},
		{"key of another object", func(r1, r2 int64) store.Op {
			return update(obj("Thing", "p1", "a", "k2", `{"v":9}`), r2)
		}, errs.ErrAlreadyExists, `Thing "p1/a"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := open(t)
			r1, _ := mustWrite(t, s, create(obj("Thing", "p1", "a", "k1", `{"v":1}`)),
				create(obj("Thing", "p1", "b", "k2", `{}`)))
			r2, objs := mustWrite(t, s, update(obj("Thing", "p1", "a", "k1", `{"v":2}`), r1))
			_, _, err := s.Write(testCtx(t), tt.op(r1, r2))
			checkErr(t, "update", err, tt.sentinel, tt.ident)
			if r := mustRevision(t, s); r != r2 {
				t.Errorf("failed update moved the revision from %d to %d", r2, r)
			}
			checkObject(t, "object after failed update", mustGet(t, s, "Thing", "p1", "a"), objs[0])
		})
	}
}

func testDelete(t *testing.T, open func(t *testing.T) store.Store) {
	s := open(t)
	ctx := testCtx(t)
	r1, _ := mustWrite(t, s, create(obj("Thing", "p1", "a", "k1", `{"v":1}`)))
	r2, objs := mustWrite(t, s, update(obj("Thing", "p1", "a", "k1", `{"v":2}`), r1))
	before := objs[0]
	r3, objs := mustWrite(t, s, del("Thing", "p1", "a", r2))
	want := before
	want.Revision = r3
	checkObject(t, "deleted object", objs[0], want)
	checkNotFound(t, s, "Thing", "p1", "a")
	if _, err := s.GetByKey(ctx, "Thing", "k1"); !errors.Is(err, errs.ErrNotFound) {
		t.Errorf("GetByKey after delete: %v", err)
	}
	if list, _, err := s.List(ctx, store.ListOptions{Kind: "Thing"}); err != nil || len(list) != 0 {
		t.Errorf("List after delete: %v, %v", list, err)
	}
	// Name and key can be used again, and the new object starts afresh.
	r4, objs := mustWrite(t, s, create(obj("Thing", "p1", "a", "k1", `{"v":"new"}`)))
	if objs[0].CreatedAt.Before(before.CreatedAt) || objs[0].Revision != r4 {
		t.Errorf("recreated object: %+v", objs[0])
	}
	// Unconditional delete.
	mustWrite(t, s, del("Thing", "p1", "a", 0))
	checkNotFound(t, s, "Thing", "p1", "a")
}

func testDeleteErrors(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name     string
		op       func(r1, r2 int64) store.Op
		sentinel error
		ident    string
	}{
		{"stale revision", func(r1, r2 int64) store.Op { return del("Thing", "p1", "a", r1) }, errs.ErrConflict, `Thing "p1/a"`},
		{"missing object", func(r1, r2 int64) store.Op { return del("Thing", "p1", "nope", 0) }, errs.ErrNotFound, `Thing "p1/nope"`},
		{"other kind", func(r1, r2 int64) store.Op { return del("Other", "p1", "a", r2) }, errs.ErrNotFound, `Other "p1/a"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := open(t)
			r1, _ := mustWrite(t, s, create(obj("Thing", "p1", "a", "", `{"v":1}`)))
			r2, objs := mustWrite(t, s, update(obj("Thing", "p1", "a", "", `{"v":2}`), r1))
			_, _, err := s.Write(testCtx(t), tt.op(r1, r2))
			checkErr(t, "delete", err, tt.sentinel, tt.ident)
			if r := mustRevision(t, s); r != r2 {
				t.Errorf("failed delete moved the revision from %d to %d", r2, r)
			}
			checkObject(t, "object after failed delete", mustGet(t, s, "Thing", "p1", "a"), objs[0])
		})
	}
}

func names(objs []store.Object) []string {
	out := make([]string, len(objs))
	for i, o := range objs {
		out[i] = o.Project + "/" + o.Name
	}
	return out
}

func testList(t *testing.T, open func(t *testing.T) store.Store) {
	s := open(t)
	ctx := testCtx(t)
	// Written out of order: List sorts.
	mustWrite(t, s,
		create(obj("Thing", "p2", "b", "", `{"n":"p2/b"}`)),
		create(obj("Thing", "p1", "c", "", `{"n":"p1/c"}`)),
		create(obj("Thing", "p1", "a", "", `{"n":"p1/a"}`)),
		create(obj("Thing", "", "z", "", `{"n":"/z"}`)),
		create(obj("Other", "p1", "a", "", `{}`)),
	)
	rev, _ := mustWrite(t, s, create(obj("Thing", "p2", "a", "", `{"n":"p2/a"}`)))
	tests := []struct {
		name string
		opts store.ListOptions
		want []string
	}{
		{"all projects", store.ListOptions{Kind: "Thing"}, []string{"/z", "p1/a", "p1/c", "p2/a", "p2/b"}},
		{"one project", store.ListOptions{Kind: "Thing", Project: "p1"}, []string{"p1/a", "p1/c"}},
		{"other kind", store.ListOptions{Kind: "Other"}, []string{"p1/a"}},
		{"unknown project", store.ListOptions{Kind: "Thing", Project: "p9"}, []string{}},
		{"unknown kind", store.ListOptions{Kind: "Nothing"}, []string{}},
		{"limit", store.ListOptions{Kind: "Thing", Limit: 2}, []string{"/z", "p1/a"}},
		{"limit in project", store.ListOptions{Kind: "Thing", Project: "p2", Limit: 1}, []string{"p2/a"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			objs, r, err := s.List(ctx, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			if got := names(objs); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("List = %v, want %v", got, tt.want)
			}
			if r != rev {
				t.Errorf("List revision %d, want %d", r, rev)
			}
			for _, o := range objs {
				if o.Kind != tt.opts.Kind || o.Revision <= 0 {
					t.Errorf("listed %+v", o)
				}
				checkUTC(t, "listed", o)
				if o.Kind == "Thing" && !jsonEqual(o.Data, []byte(`{"n":"`+o.Project+"/"+o.Name+`"}`)) {
					t.Errorf("%s/%s has data %s", o.Project, o.Name, o.Data)
				}
			}
		})
	}
}

func testListPaging(t *testing.T, open func(t *testing.T) store.Store) {
	s := open(t)
	ctx := testCtx(t)
	var ops []store.Op
	for _, p := range []string{"", "p1", "p2", "p3"} {
		for i := range 7 {
			ops = append(ops, create(obj("Thing", p, fmt.Sprintf("n%02d", i), "", `{}`)))
		}
	}
	mustWrite(t, s, ops...)
	for _, pageSize := range []int{1, 3, 7, 100} {
		for _, project := range []string{"", "p2"} {
			t.Run(fmt.Sprintf("project %q by %d", project, pageSize), func(t *testing.T) {
				all, _, err := s.List(ctx, store.ListOptions{Kind: "Thing", Project: project})
				if err != nil {
					t.Fatal(err)
				}
				var paged []store.Object
				opts := store.ListOptions{Kind: "Thing", Project: project, Limit: pageSize}
				for pages := 0; ; pages++ {
					if pages > len(all)+1 {
						t.Fatalf("paging does not end")
					}
					page, _, err := s.List(ctx, opts)
					if err != nil {
						t.Fatal(err)
					}
					if len(page) > pageSize {
						t.Fatalf("page of %d objects, limit %d", len(page), pageSize)
					}
					paged = append(paged, page...)
					if len(page) < pageSize {
						break
					}
					last := page[len(page)-1]
					opts.AfterProject, opts.AfterName = last.Project, last.Name
					if project != "" {
						// Within one project, the name alone pages.
						opts.AfterProject = ""
					}
				}
				if got, want := names(paged), names(all); !reflect.DeepEqual(got, want) {
					t.Errorf("pages = %v, want %v", got, want)
				}
				if project == "" && len(all) != 28 {
					t.Errorf("listed %d objects, want 28", len(all))
				}
			})
		}
	}
	// A page can start in the middle of a project.
	page, _, err := s.List(ctx, store.ListOptions{Kind: "Thing", AfterProject: "p1", AfterName: "n05", Limit: 3})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := names(page), []string{"p1/n06", "p2/n00", "p2/n01"}; !reflect.DeepEqual(got, want) {
		t.Errorf("page after p1/n05 = %v, want %v", got, want)
	}
}

func testWriteInvalid(t *testing.T, open func(t *testing.T) store.Store) {
	s := open(t)
	rev, _ := mustWrite(t, s, create(obj("Thing", "p1", "a", "", `{}`)))
	tests := []struct {
		name string
		op   store.Op
	}{
		{"unknown op type", store.Op{Type: 0, Object: obj("Thing", "p1", "b", "", `{}`)}},
		{"op type out of range", store.Op{Type: 99, Object: obj("Thing", "p1", "b", "", `{}`)}},
		{"empty kind", create(obj("", "p1", "b", "", `{}`))},
		{"empty name", create(obj("Thing", "p1", "", "", `{}`))},
		{"invalid JSON", create(obj("Thing", "p1", "b", "", `{"a":`))},
		{"no data", create(obj("Thing", "p1", "b", "", ``))},
		{"invalid JSON in update", update(obj("Thing", "p1", "a", "", `nope`), 0)},
		{"negative revision", update(obj("Thing", "p1", "a", "", `{}`), -1)},
		{"NUL in data", create(obj("Thing", "p1", "b", "", `{"s":"a\u0000b"}`))},
		{"NUL after escaped backslashes", create(obj("Thing", "p1", "b", "", `{"s":"\\\u0000"}`))},
		{"NUL in name", create(obj("Thing", "p1", "b\x00", "", `{}`))},
		{"invalid UTF-8 in key", create(obj("Thing", "p1", "b", "k\xff", `{}`))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// After a valid op, which must not be applied either.
			_, _, err := s.Write(testCtx(t), create(obj("Thing", "p1", "ok", "", `{}`)), tt.op)
			checkErr(t, "Write", err, errs.ErrInvalid)
			if r := mustRevision(t, s); r != rev {
				t.Errorf("invalid write moved the revision from %d to %d", rev, r)
			}
			checkNotFound(t, s, "Thing", "p1", "ok")
		})
	}
}

func testWriteEmpty(t *testing.T, open func(t *testing.T) store.Store) {
	s := open(t)
	rev, _ := mustWrite(t, s, create(obj("Thing", "p1", "a", "", `{}`)))
	got, objs, err := s.Write(testCtx(t))
	if err != nil || got != rev || len(objs) != 0 {
		t.Errorf("empty Write = %d, %v, %v; want %d and nothing", got, objs, err, rev)
	}
	if r := mustRevision(t, s); r != rev {
		t.Errorf("empty Write moved the revision from %d to %d", rev, r)
	}
}

func testWriteAtomic(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name     string
		ops      func(xRev int64) []store.Op
		sentinel error
	}{
		{"update of missing object last", func(int64) []store.Op {
			return []store.Op{create(obj("Thing", "p1", "a", "ka", `{}`)), create(obj("Thing", "p1", "b", "", `{}`)),
				update(obj("Thing", "p1", "missing", "", `{}`), 0)}
		}, errs.ErrNotFound},
		{"duplicate name", func(int64) []store.Op {
			return []store.Op{create(obj("Thing", "p1", "a", "", `{}`)), create(obj("Thing", "p1", "x", "", `{}`))}
		}, errs.ErrAlreadyExists},
		{"duplicate name within the write", func(int64) []store.Op {
			return []store.Op{create(obj("Thing", "p1", "a", "", `{}`)), create(obj("Thing", "p1", "a", "", `{}`))}
		}, errs.ErrAlreadyExists},
		{"duplicate key", func(int64) []store.Op {
			return []store.Op{create(obj("Thing", "p1", "a", "", `{}`)), create(obj("Thing", "p1", "b", "kx", `{}`))}
		}, errs.ErrAlreadyExists},
		{"stale update after a good one", func(xRev int64) []store.Op {
			return []store.Op{update(obj("Thing", "p1", "x", "kx", `{"v":"changed"}`), xRev),
				create(obj("Thing", "p1", "a", "", `{}`)), update(obj("Thing", "p1", "x", "kx", `{}`), xRev)}
		}, errs.ErrConflict},
		{"delete then missing delete", func(xRev int64) []store.Op {
			return []store.Op{del("Thing", "p1", "x", xRev), del("Thing", "p1", "missing", 0)}
		}, errs.ErrNotFound},
		{"stale delete", func(xRev int64) []store.Op {
			return []store.Op{create(obj("Thing", "p1", "a", "", `{}`)), del("Thing", "p1", "x", xRev-1)}
		}, errs.ErrConflict},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := open(t)
			mustWrite(t, s, create(obj("Thing", "p0", "first", "", `{}`)))
			xRev, objs := mustWrite(t, s, create(obj("Thing", "p1", "x", "kx", `{"v":"orig"}`)))
			x := objs[0]
			_, _, err := s.Write(testCtx(t), tt.ops(xRev)...)
			checkErr(t, "Write", err, tt.sentinel)
			if r := mustRevision(t, s); r != xRev {
				t.Errorf("failed Write moved the revision from %d to %d", xRev, r)
			}
			checkNotFound(t, s, "Thing", "p1", "a")
			checkNotFound(t, s, "Thing", "p1", "b")
			checkObject(t, "x after failed Write", mustGet(t, s, "Thing", "p1", "x"), x)
			if cs := mustChanges(t, s, xRev, 0); len(cs) != 0 {
				t.Errorf("failed Write left %d changes", len(cs))
			}
			if _, err := s.GetByKey(testCtx(t), "Thing", "ka"); !errors.Is(err, errs.ErrNotFound) {
				t.Errorf("key of a rolled-back create: %v", err)
			}
			// The store still works, and the next revision follows on.
			r, _ := mustWrite(t, s, create(obj("Thing", "p1", "after", "", `{}`)))
			if r <= xRev {
				t.Errorf("next write got revision %d, not after %d", r, xRev)
			}
		})
	}
}

func testWriteSharedRevision(t *testing.T, open func(t *testing.T) store.Store) {
	s := open(t)
	r1, _ := mustWrite(t, s, create(obj("Thing", "p1", "x", "kx", `{"v":1}`)), create(obj("Thing", "p1", "y", "", `{}`)))
	ops := []store.Op{
		create(obj("Thing", "p1", "a", "", `{"v":"a"}`)),
		update(obj("Thing", "p1", "x", "kx", `{"v":2}`), r1),
		del("Thing", "p1", "y", r1),
		create(obj("Other", "", "b", "kx", `{"v":"b"}`)),
	}
	rev, objs := mustWrite(t, s, ops...)
	wantNames := []string{"p1/a", "p1/x", "p1/y", "/b"}
	if got := names(objs); !reflect.DeepEqual(got, wantNames) {
		t.Errorf("Write returned %v, want op order %v", got, wantNames)
	}
	if !jsonEqual(objs[1].Data, []byte(`{"v":2}`)) || !jsonEqual(objs[2].Data, []byte(`{}`)) {
		t.Errorf("Write returned data %s, %s", objs[1].Data, objs[2].Data)
	}
	cs := mustChanges(t, s, r1, 0)
	wantTypes := []store.ChangeType{store.Created, store.Updated, store.Deleted, store.Created}
	if len(cs) != len(ops) {
		t.Fatalf("%d changes for %d ops", len(cs), len(ops))
	}
	for i, c := range cs {
		if c.Type != wantTypes[i] || c.Object.Revision != rev || names([]store.Object{c.Object})[0] != wantNames[i] {
			t.Errorf("change %d: %v %s/%s at %d, want %v %s at %d", i, c.Type, c.Object.Project, c.Object.Name,
				c.Object.Revision, wantTypes[i], wantNames[i], rev)
		}
	}
	for _, n := range []struct{ kind, project, name string }{{"Thing", "p1", "a"}, {"Thing", "p1", "x"}, {"Other", "", "b"}} {
		if o := mustGet(t, s, n.kind, n.project, n.name); o.Revision != rev {
			t.Errorf("%s %s/%s at revision %d, want %d", n.kind, n.project, n.name, o.Revision, rev)
		}
	}
	if objs, r, err := s.List(testCtx(t), store.ListOptions{Kind: "Thing"}); err != nil || r != rev || len(objs) != 2 {
		t.Errorf("List after the write: %v at %d, %v", names(objs), r, err)
	}
}

func testWriteSameObjectTwice(t *testing.T, open func(t *testing.T) store.Store) {
	s := open(t)
	rev, objs := mustWrite(t, s,
		create(obj("Thing", "p1", "a", "k", `{"v":1}`)),
		update(obj("Thing", "p1", "a", "k", `{"v":2}`), 0),
	)
	if !jsonEqual(objs[1].Data, []byte(`{"v":2}`)) {
		t.Errorf("second op returned %s", objs[1].Data)
	}
	if o := mustGet(t, s, "Thing", "p1", "a"); !jsonEqual(o.Data, []byte(`{"v":2}`)) || o.Revision != rev {
		t.Errorf("object after create+update: %s at %d", o.Data, o.Revision)
	}
	cs := mustChanges(t, s, 0, 0)
	if len(cs) != 2 || cs[0].Type != store.Created || cs[1].Type != store.Updated {
		t.Errorf("changes: %+v", cs)
	}
	// Deleting and re-creating in one write frees and takes the key.
	mustWrite(t, s, del("Thing", "p1", "a", rev), create(obj("Thing", "p2", "b", "k", `{}`)))
	if o, err := s.GetByKey(testCtx(t), "Thing", "k"); err != nil || o.Project != "p2" {
		t.Errorf("GetByKey after delete+create: %+v, %v", o, err)
	}
}

func testRevisionIncreases(t *testing.T, open func(t *testing.T) store.Store) {
	s := open(t)
	var last int64
	for i := range 20 {
		var op store.Op
		switch i % 3 {
		case 0:
			op = create(obj("Thing", "p", fmt.Sprint(i), "", `{}`))
		case 1:
			op = update(obj("Thing", "p", fmt.Sprint(i-1), "", `{"u":1}`), 0)
		case 2:
			op = del("Thing", "p", fmt.Sprint(i-2), 0)
		}
		rev, _ := mustWrite(t, s, op)
		if rev <= last {
			t.Fatalf("write %d got revision %d after %d", i, rev, last)
		}
		last = rev
		if r := mustRevision(t, s); r != rev {
			t.Fatalf("Revision %d after write at %d", r, rev)
		}
	}
}

func testChanges(t *testing.T, open func(t *testing.T) store.Store) {
	s := open(t)
	r1, c1 := mustWrite(t, s, create(obj("Thing", "p1", "a", "ka", `{"v":1}`)))
	r2, c2 := mustWrite(t, s, update(obj("Thing", "p1", "a", "ka", `{"v":2}`), r1))
	_, c3 := mustWrite(t, s, create(obj("Thing", "", "b", "", `{"v":"b"}`)))
	r4, c4 := mustWrite(t, s, del("Thing", "p1", "a", r2))
	all := []store.Change{
		{Type: store.Created, Object: c1[0]},
		{Type: store.Updated, Object: c2[0]},
		{Type: store.Created, Object: c3[0]},
		{Type: store.Deleted, Object: c4[0]},
	}
	// The deleted change carries the object as it was, with data and key.
	deleted := c2[0]
	deleted.Revision = r4
	checkObject(t, "deleted object", c4[0], deleted)

	tests := []struct {
		name  string
		since int64
		limit int
		want  []store.Change
	}{
		{"all", 0, 0, all},
		{"since first", r1, 0, all[1:]},
		{"since middle", r2, 0, all[2:]},
		{"since last", r4, 0, nil},
		{"since the future", r4 + 100, 0, nil},
		{"limit", 0, 2, all[:2]},
		{"limit after since", r1, 1, all[1:2]},
		{"negative limit is no limit", 0, -1, all},
		{"limit above count", r2, 10, all[2:]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := mustChanges(t, s, tt.since, tt.limit)
			if len(got) != len(tt.want) {
				t.Fatalf("Changes(%d, %d) returned %d changes, want %d", tt.since, tt.limit, len(got), len(tt.want))
			}
			for i := range got {
				if got[i].Type != tt.want[i].Type {
					t.Errorf("change %d: type %v, want %v", i, got[i].Type, tt.want[i].Type)
				}
				checkObject(t, fmt.Sprintf("change %d", i), got[i].Object, tt.want[i].Object)
			}
		})
	}
}

func testChangesKeepRevisionsWhole(t *testing.T, open func(t *testing.T) store.Store) {
	s := open(t)
	r1, _ := mustWrite(t, s, create(obj("Thing", "p", "a", "", `{}`)))
	r2, _ := mustWrite(t, s, create(obj("Thing", "p", "b", "", `{}`)), create(obj("Thing", "p", "c", "", `{}`)),
		create(obj("Thing", "p", "d", "", `{}`)))
	r3, _ := mustWrite(t, s, create(obj("Thing", "p", "e", "", `{}`)))
	tests := []struct {
		since int64
		limit int
		want  []int64 // revision of each change
	}{
		{0, 1, []int64{r1}},
		{0, 2, []int64{r1}}, // r2 would not fit whole
		{0, 3, []int64{r1}},
		{0, 4, []int64{r1, r2, r2, r2}},
		{0, 5, []int64{r1, r2, r2, r2, r3}},
		{r1, 1, []int64{r2, r2, r2}}, // r2 alone is bigger than limit: all of it
		{r1, 2, []int64{r2, r2, r2}},
		{r1, 3, []int64{r2, r2, r2}},
		{r1, 4, []int64{r2, r2, r2, r3}},
		{r2, 1, []int64{r3}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("since %d limit %d", tt.since, tt.limit), func(t *testing.T) {
			cs := mustChanges(t, s, tt.since, tt.limit)
			got := make([]int64, len(cs))
			for i, c := range cs {
				got[i] = c.Object.Revision
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("revisions %v, want %v", got, tt.want)
			}
			// Changes within a revision keep op order.
			for i := 1; i < len(cs); i++ {
				if cs[i].Object.Revision == cs[i-1].Object.Revision && cs[i].Object.Name < cs[i-1].Object.Name {
					t.Errorf("op order lost: %s before %s", cs[i-1].Object.Name, cs[i].Object.Name)
				}
			}
		})
	}
}

func testCompact(t *testing.T, open func(t *testing.T) store.Store) {
	s := open(t)
	ctx := testCtx(t)
	var revs []int64
	for i := range 5 {
		r, _ := mustWrite(t, s, create(obj("Thing", "p", fmt.Sprint(i), "", `{}`)))
		revs = append(revs, r)
	}
	if err := s.Compact(ctx, revs[2]); err != nil {
		t.Fatal(err)
	}
	checkRevs := func(since int64, want ...int64) {
		t.Helper()
		cs := mustChanges(t, s, since, 0)
		var got []int64
		for _, c := range cs {
			got = append(got, c.Object.Revision)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("Changes(%d): revisions %v, want %v", since, got, want)
		}
	}
	checkGone := func(since int64) {
		t.Helper()
		_, err := s.Changes(ctx, since, 0)
		checkErr(t, fmt.Sprintf("Changes(%d)", since), err, errs.ErrGone, fmt.Sprint(since))
	}
	checkRevs(revs[2], revs[3], revs[4])
	checkGone(revs[1])
	checkGone(0)

	// Compacting less does not bring anything back.
	if err := s.Compact(ctx, revs[0]); err != nil {
		t.Fatal(err)
	}
	checkGone(revs[1])
	checkRevs(revs[2], revs[3], revs[4])

	// Compacting past the newest revision stops at it: a watcher that has
	// seen everything can go on.
	if err := s.Compact(ctx, revs[4]+100); err != nil {
		t.Fatal(err)
	}
	checkRevs(revs[4])
	checkGone(revs[3])
	r, _ := mustWrite(t, s, create(obj("Thing", "p", "late", "", `{}`)))
	checkRevs(revs[4], r)

	// Objects are not touched by compaction.
	objs, _, err := s.List(ctx, store.ListOptions{Kind: "Thing"})
	if err != nil || len(objs) != 6 {
		t.Errorf("List after Compact: %d objects, %v", len(objs), err)
	}
}

// waitFor reads ch until it delivers a revision >= want.
func waitFor(t *testing.T, what string, ch <-chan int64, want int64) int64 {
	t.Helper()
	timeout := time.After(wait)
	for {
		select {
		case rev, ok := <-ch:
			if !ok {
				t.Fatalf("%s: channel closed while waiting for revision %d", what, want)
			}
			if rev >= want {
				return rev
			}
		case <-timeout:
			t.Fatalf("%s: no revision >= %d within %v", what, want, wait)
		}
	}
}

func testNotify(t *testing.T, open func(t *testing.T) store.Store) {
	s := open(t)
	ctx := testCtx(t)
	ch1 := s.Notify(ctx)
	ch2 := s.Notify(ctx)
	rev, _ := mustWrite(t, s, create(obj("Thing", "p", "a", "", `{}`)))
	waitFor(t, "first subscriber", ch1, rev)
	waitFor(t, "second subscriber", ch2, rev)
	// A second write wakes them again.
	rev, _ = mustWrite(t, s, update(obj("Thing", "p", "a", "", `{"v":2}`), rev))
	if got := waitFor(t, "first subscriber", ch1, rev); got != rev {
		t.Errorf("woke with revision %d, want %d", got, rev)
	}
	waitFor(t, "second subscriber", ch2, rev)
	// Failed writes and last-seen saves are not revisions.
	if _, _, err := s.Write(ctx, update(obj("Thing", "p", "a", "", `{}`), rev-1)); !errors.Is(err, errs.ErrConflict) {
		t.Fatalf("stale update: %v", err)
	}
	if err := s.SaveLastSeen(ctx, map[string]time.Time{"h": time.Now()}); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-ch1:
		if r > rev {
			t.Errorf("woke with revision %d after no write (last %d)", r, rev)
		}
	case <-time.After(200 * time.Millisecond):
	}
}

func testNotifyCoalesces(t *testing.T, open func(t *testing.T) store.Store) {
	s := open(t)
	ctx := testCtx(t)
	ch := s.Notify(ctx)
	var last int64
	for i := range 5 {
		last, _ = mustWrite(t, s, create(obj("Thing", "p", fmt.Sprint(i), "", `{}`)))
	}
	// The reader was not reading: it finds only the newest revision, not a
	// backlog.
	if got := waitFor(t, "slow reader", ch, 1); got != last {
		t.Errorf("slow reader got revision %d first, want the newest %d", got, last)
	}
	select {
	case r := <-ch:
		t.Errorf("second value %d after the newest revision %d", r, last)
	case <-time.After(200 * time.Millisecond):
	}
}

func testNotifyClosed(t *testing.T, open func(t *testing.T) store.Store) {
	s := open(t)
	ctx, cancel := context.WithCancel(testCtx(t))
	ch := s.Notify(ctx)
	other := s.Notify(testCtx(t))
	cancel()
	timeout := time.After(wait)
	for closed := false; !closed; {
		select {
		case _, ok := <-ch:
			closed = !ok
		case <-timeout:
			t.Fatalf("Notify channel still open %v after its context ended", wait)
		}
	}
	// Other subscribers live on.
	rev, _ := mustWrite(t, s, create(obj("Thing", "p", "a", "", `{}`)))
	waitFor(t, "remaining subscriber", other, rev)

	// A context that has already ended gives a closed channel.
	done, cancelDone := context.WithCancel(testCtx(t))
	cancelDone()
	ch = s.Notify(done)
	timeout = time.After(wait)
	for closed := false; !closed; {
		select {
		case _, ok := <-ch:
			closed = !ok
		case <-timeout:
			t.Fatalf("Notify with an ended context: channel still open after %v", wait)
		}
	}
}

func testLastSeen(t *testing.T, open func(t *testing.T) store.Store) {
	s := open(t)
	ctx := testCtx(t)
	// Not UTC on the way in: the store must still give UTC back.
	zone := time.FixedZone("UTC+5", 5*3600)
	t0 := time.Date(2025, 3, 1, 12, 0, 0, 123456789, zone)
	rev, _ := mustWrite(t, s, create(obj("Thing", "p", "a", "", `{}`)))

	check := func(want map[string]time.Time) {
		t.Helper()
		got, err := s.LoadLastSeen(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) {
			t.Errorf("LoadLastSeen returned %d hosts, want %d", len(got), len(want))
		}
		for k, w := range want {
			g, ok := got[k]
			if !ok {
				t.Errorf("host %q missing", k)
				continue
			}
			if d := g.Sub(w); d < -time.Millisecond || d > time.Millisecond {
				t.Errorf("host %q: %v, want %v", k, g, w)
			}
			if g.Location() != time.UTC {
				t.Errorf("host %q: time %v not in UTC", k, g)
			}
		}
	}

	if err := s.SaveLastSeen(ctx, map[string]time.Time{"h1": t0, "h2": t0.Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	check(map[string]time.Time{"h1": t0, "h2": t0.Add(time.Minute)})

	// Upsert: h1 newer wins, h2 older is ignored, h3 is new.
	if err := s.SaveLastSeen(ctx, map[string]time.Time{
		"h1": t0.Add(time.Hour),
		"h2": t0.Add(-time.Hour),
		"h3": t0.Add(2 * time.Second),
	}); err != nil {
		t.Fatal(err)
	}
	check(map[string]time.Time{"h1": t0.Add(time.Hour), "h2": t0.Add(time.Minute), "h3": t0.Add(2 * time.Second)})

	if err := s.SaveLastSeen(ctx, nil); err != nil {
		t.Errorf("SaveLastSeen(nil): %v", err)
	}

	// A fleet-sized flush.
	many := map[string]time.Time{"h1": t0.Add(time.Hour), "h2": t0.Add(time.Minute), "h3": t0.Add(2 * time.Second)}
	for i := range 1000 {
		many[fmt.Sprintf("host-%04d", i)] = t0.Add(time.Duration(i) * time.Second)
	}
	if err := s.SaveLastSeen(ctx, many); err != nil {
		t.Fatal(err)
	}
	check(many)

	if r := mustRevision(t, s); r != rev {
		t.Errorf("SaveLastSeen moved the revision from %d to %d", rev, r)
	}
	if cs := mustChanges(t, s, rev, 0); len(cs) != 0 {
		t.Errorf("SaveLastSeen added %d changes", len(cs))
	}
}

func testCanceledContext(t *testing.T, open func(t *testing.T) store.Store) {
	s := open(t)
	rev, _ := mustWrite(t, s, create(obj("Thing", "p", "a", "", `{}`)))
	ctx, cancel := context.WithCancel(testCtx(t))
	cancel()
	if _, _, err := s.Write(ctx, create(obj("Thing", "p", "b", "", `{}`))); err == nil {
		t.Errorf("Write with a canceled context succeeded")
	}
	if _, err := s.Get(ctx, "Thing", "p", "a"); err == nil {
		t.Errorf("Get with a canceled context succeeded")
	}
	if r := mustRevision(t, s); r != rev {
		t.Errorf("canceled Write moved the revision from %d to %d", rev, r)
	}
	checkNotFound(t, s, "Thing", "p", "b")
}

func testConcurrentCreates(t *testing.T, open func(t *testing.T) store.Store) {
	s := open(t)
	const workers, each = 8, 10
	var (
		mu   sync.Mutex
		revs = map[int64]string{}
		wg   sync.WaitGroup
	)
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				name := fmt.Sprintf("w%d-%d", w, i)
				rev, _, err := s.Write(testCtx(t), create(obj("Thing", "p", name, "key-"+name, `{}`)))
				if err != nil {
					t.Errorf("create %s: %v", name, err)
					return
				}
				mu.Lock()
				if prev, dup := revs[rev]; dup {
					t.Errorf("%s and %s both got revision %d", prev, name, rev)
				}
				revs[rev] = name
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(revs) != workers*each {
		t.Fatalf("%d distinct revisions for %d writes", len(revs), workers*each)
	}
	cs := mustChanges(t, s, 0, 0)
	if len(cs) != workers*each {
		t.Fatalf("%d changes for %d writes", len(cs), workers*each)
	}
	for i, c := range cs {
		if i > 0 && c.Object.Revision <= cs[i-1].Object.Revision {
			t.Errorf("change log out of order: %d after %d", c.Object.Revision, cs[i-1].Object.Revision)
		}
		if revs[c.Object.Revision] != c.Object.Name {
			t.Errorf("change at %d is %s, the write at that revision was %s", c.Object.Revision, c.Object.Name, revs[c.Object.Revision])
		}
	}
}

// testConcurrentReadModifyWrite is the lost-update test: goroutines increment
// one counter with optimistic concurrency; every increment must survive.
func testConcurrentReadModifyWrite(t *testing.T, open func(t *testing.T) store.Store) {
	s := open(t)
	const workers, each = 8, 15
	start, _ := mustWrite(t, s, create(obj("Counter", "", "c", "", `{"n":0}`)))
	var (
		wg        sync.WaitGroup
		conflicts sync.Map
	)
	for w := range workers {
		wg.Go(func() {
			ctx := testCtx(t)
			for range each {
				for attempt := 0; ; attempt++ {
					if attempt > 10000 {
						t.Errorf("worker %d: no progress after %d conflicts", w, attempt)
						return
					}
					o, err := s.Get(ctx, "Counter", "", "c")
					if err != nil {
						t.Errorf("Get: %v", err)
						return
					}
					var v struct{ N int }
					if err := json.Unmarshal(o.Data, &v); err != nil {
						t.Errorf("counter data %s: %v", o.Data, err)
						return
					}
					next := fmt.Appendf(nil, `{"n":%d}`, v.N+1)
					_, _, err = s.Write(ctx, update(store.Object{Kind: "Counter", Name: "c", Data: next}, o.Revision))
					if errors.Is(err, errs.ErrConflict) {
						conflicts.Store(w, true)
						continue
					}
					if err != nil {
						t.Errorf("update: %v", err)
						return
					}
					break
				}
			}
		})
	}
	wg.Wait()
	o := mustGet(t, s, "Counter", "", "c")
	var v struct{ N int }
	if err := json.Unmarshal(o.Data, &v); err != nil {
		t.Fatal(err)
	}
	if v.N != workers*each {
		t.Errorf("counter is %d after %d increments: updates were lost", v.N, workers*each)
	}
	// Conflicting attempts must not have used up revisions.
	if r := mustRevision(t, s); r != start+workers*each || o.Revision != r {
		t.Errorf("revision %d (object at %d) after %d updates from %d", r, o.Revision, workers*each, start)
	}
	n := 0
	conflicts.Range(func(any, any) bool { n++; return true })
	t.Logf("%d of %d workers hit a conflict", n, workers)
}
