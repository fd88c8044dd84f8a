package cli

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	v1 "github.com/outpost-edge/outpost/api/v1"
	"github.com/outpost-edge/outpost/client"
)

type hostEvent = v1.WatchEvent[v1.EdgeHost]

func hev(typ string, rev int64, name string) hostEvent {
	return hostEvent{Type: typ, Revision: rev, Object: v1.EdgeHost{Metadata: v1.ObjectMeta{Name: name}}}
}

// scriptedWatch plays one script per call: its events, then its error
// (nil: hold the stream open until the watch is cancelled).
type scriptedWatch struct {
	t       *testing.T
	scripts []struct {
		events []hostEvent
		err    error
	}
	since []int64
}

func (s *scriptedWatch) add(err error, events ...hostEvent) {
	s.scripts = append(s.scripts, struct {
		events []hostEvent
		err    error
	}{events, err})
}

func (s *scriptedWatch) watch(ctx context.Context, since int64) (<-chan hostEvent, <-chan error) {
	s.since = append(s.since, since)
	events := make(chan hostEvent)
	errc := make(chan error, 1)
	if len(s.since) > len(s.scripts) {
		s.t.Errorf("watch called %d times, script has %d", len(s.since), len(s.scripts))
		close(events)
		errc <- errors.New("no script")
		close(errc)
		return events, errc
	}
	sc := s.scripts[len(s.since)-1]
	go func() {
		defer close(errc)
		defer close(events)
		for _, ev := range sc.events {
			select {
			case events <- ev:
			case <-ctx.Done():
				return
			}
		}
		if sc.err != nil {
			errc <- sc.err
			return
		}
		<-ctx.Done()
	}()
	return events, errc
}

func TestFollowResumesAfterStreamClosed(t *testing.T) {
	defer func(d time.Duration) { reconnectDelay = d }(reconnectDelay)
	reconnectDelay = time.Millisecond

	w := &scriptedWatch{t: t}
	// The stream closes between two objects written at revision 12.
	w.add(client.ErrStreamClosed, hev("Added", 11, "a"), hev("Modified", 12, "a"))
	// Resumed from 11, the hub replays revision 12 whole.
	w.add(client.ErrStreamClosed, hev("Modified", 12, "a"), hev("Added", 12, "b"), hev("Deleted", 13, "a"))
	// Nothing new, closed again: resume from 13 itself would replay "a"; the
	// resume point stays just before it and the replay is skipped.
	w.add(client.ErrStreamClosed, hev("Deleted", 13, "a"))
	w.add(nil, hev("Added", 14, "c"))

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var got []string
	err := follow(ctx, 10, w.watch, hostKey, func(ev hostEvent) error {
		got = append(got, fmt.Sprintf("%s %d %s", ev.Type, ev.Revision, ev.Object.Metadata.Name))
		if len(got) == 5 {
			cancel()
		}
		return nil
	})
	if err != nil {
		t.Fatalf("follow: %v", err)
	}
	want := []string{"Added 11 a", "Modified 12 a", "Added 12 b", "Deleted 13 a", "Added 14 c"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("emitted %q\nwant    %q", got, want)
	}
	if fmt.Sprint(w.since) != fmt.Sprint([]int64{10, 11, 12, 12}) {
		t.Errorf("watched since %v, want [10 11 12 12]", w.since)
	}
}

func TestFollowNoEventsResumesFromList(t *testing.T) {
	defer func(d time.Duration) { reconnectDelay = d }(reconnectDelay)
	reconnectDelay = time.Millisecond
	w := &scriptedWatch{t: t}
	w.add(client.ErrStreamClosed)
	w.add(nil, hev("Added", 8, "x"))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	err := follow(ctx, 7, w.watch, hostKey, func(ev hostEvent) error { cancel(); return nil })
	if err != nil {
		t.Fatal(err)
	}
	// Objects of revision 7 came with the list: resuming from 6 would
	// repeat them.
	if fmt.Sprint(w.since) != "[7 7]" {
		t.Errorf("watched since %v, want [7 7]", w.since)
	}
}

func TestFollowErrors(t *testing.T) {
	boom := errors.New("boom")
	gone := errors.Join(client.ErrGone)
	tests := []struct {
		name    string
		err     error
		emitErr error
		want    error
	}{
		{"watch fails", boom, nil, boom},
		{"change log compacted", gone, nil, client.ErrGone},
		{"emit fails", nil, boom, boom},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := &scriptedWatch{t: t}
			w.add(tt.err, hev("Added", 2, "a"), hev("Added", 3, "b"))
			err := follow(context.Background(), 1, w.watch, hostKey, func(hostEvent) error { return tt.emitErr })
			if !errors.Is(err, tt.want) {
				t.Errorf("err = %v, want %v", err, tt.want)
			}
		})
	}
}
