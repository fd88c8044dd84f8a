package client

import (
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func TestSSEReader(t *testing.T) {
	type ev struct{ name, id, data string }
	tests := []struct {
		name   string
		stream string
		want   []ev
	}{
		{
			name:   "one change",
			stream: "event: change\ndata: {\"type\":\"Added\"}\n\n",
			want:   []ev{{"change", "", `{"type":"Added"}`}},
		},
		{
			name: "comments and keep-alives are skipped",
			stream: ": connected\n\n" +
				":keep-alive\n" +
				"event: change\n: in the middle\ndata: 1\n\n" +
				": ping\n\n",
			want: []ev{{"change", "", "1"}},
		},
		{
			name:   "multi-line data is joined with newlines",
			stream: "event: change\ndata: {\ndata:   \"a\": 1\ndata: }\n\n",
			want:   []ev{{"change", "", "{\n  \"a\": 1\n}"}},
		},
		{
			name:   "no space after the colon, ids, CRLF",
			stream: "event:change\r\nid:7\r\ndata:x\r\n\r\nevent: change\r\ndata: y\r\n\r\n",
			want:   []ev{{"change", "7", "x"}, {"change", "", "y"}},
		},
		{
			name:   "an event without a name is a message",
			stream: "data: hello\n\n",
			want:   []ev{{"message", "", "hello"}},
		},
		{
			name:   "a block without data dispatches nothing and does not leak its name",
			stream: "event: change\nid: 3\n\ndata: z\n\n",
			want:   []ev{{"message", "", "z"}},
		},
		{
			name:   "unknown fields and retry are ignored",
			stream: "retry: 1000\nfoo: bar\nevent: change\ndata: 2\n\n",
			want:   []ev{{"change", "", "2"}},
		},
		{
			name:   "empty data line counts as data",
			stream: "event: change\ndata\n\n",
			want:   []ev{{"change", "", ""}},
		},
		{
			name:   "a partial final event is dropped",
			stream: "event: change\ndata: 1\n\nevent: change\ndata: {\"trunc",
			want:   []ev{{"change", "", "1"}},
		},
		{
			name:   "a final event without its blank line is dropped",
			stream: "event: change\ndata: 1\n\nevent: change\ndata: 2\n",
			want:   []ev{{"change", "", "1"}},
		},
		{
			name:   "empty stream",
			stream: "",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// One byte at a time, so no event depends on arriving in one read.
			r := newSSEReader(iotest.OneByteReader(strings.NewReader(tt.stream)))
			var got []ev
			for {
				e, err := r.next()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatalf("next: %v", err)
				}
				got = append(got, ev{e.Name, e.ID, string(e.Data)})
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %d events %q, want %d %q", len(got), got, len(tt.want), tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("event %d = %+v, want %+v", i, got[i], tt.want[i])
				}
			}
		})
	}
}

func TestSSEReaderLongLine(t *testing.T) {
	// An object larger than the read buffer must come through whole.
	big := strings.Repeat("x", 1<<20)
	r := newSSEReader(strings.NewReader("event: change\ndata: " + big + "\n\n"))
	e, err := r.next()
	if err != nil {
		t.Fatal(err)
	}
	if string(e.Data) != big {
		t.Fatalf("data has %d bytes, want %d", len(e.Data), len(big))
	}
}

func TestSSEReaderReadError(t *testing.T) {
	boom := errors.New("boom")
	r := newSSEReader(io.MultiReader(strings.NewReader("event: change\ndata: 1\n\n"), iotest.ErrReader(boom)))
	if _, err := r.next(); err != nil {
		t.Fatal(err)
	}
	if _, err := r.next(); !errors.Is(err, boom) {
		t.Fatalf("err = %v, want boom", err)
	}
}
