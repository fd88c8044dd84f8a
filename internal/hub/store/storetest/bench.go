package storetest

import (
	"context"
	"fmt"
	"testing"

	"github.com/outpost-edge/outpost/internal/hub/store"
)

// benchData is about the size of a small EdgeHost document.
const benchData = `{"apiVersion":"outpost.dev/v1","kind":"EdgeHost","metadata":{"labels":{"site":"store-0042","region":"eu-west"}},` +
	`"spec":{"hostname":"edge-0042","network":{"interfaces":{"eth0":{"dhcp":true}}},"k8s":{"distribution":"k3s","version":"v1.32.3"}},` +
	`"status":{"phase":"Ready","agentVersion":"0.4.1","conditions":[{"type":"Ready","status":"True"}]}}`

// BenchWrite measures one single-op create per iteration: the common write.
func BenchWrite(b *testing.B, s store.Store) {
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		name := fmt.Sprintf("host-%08d", i)
		if _, _, err := s.Write(ctx, store.Op{Type: store.OpCreate, Object: store.Object{
			Kind: "EdgeHost", Project: "bench", Name: name, Key: "id-" + name, Data: []byte(benchData),
		}}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchGet measures Get of one of 1,000 stored objects per iteration.
func BenchGet(b *testing.B, s store.Store) {
	ctx := context.Background()
	const n = 1000
	ops := make([]store.Op, n)
	for i := range ops {
		ops[i] = store.Op{Type: store.OpCreate, Object: store.Object{
			Kind: "EdgeHost", Project: "bench", Name: fmt.Sprintf("host-%04d", i), Data: []byte(benchData),
		}}
	}
	if _, _, err := s.Write(ctx, ops...); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if _, err := s.Get(ctx, "EdgeHost", "bench", ops[i%n].Object.Name); err != nil {
			b.Fatal(err)
		}
	}
}
