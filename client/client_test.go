package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	v1 "github.com/outpost-edge/outpost/api/v1"
)

func TestParseServer(t *testing.T) {
	tests := []struct {
		in, want, err string
	}{
		{in: "https://hub:7080", want: "https://hub:7080"},
		{in: "hub:7080", want: "https://hub:7080"},
		{in: "  https://hub:7080/  ", want: "https://hub:7080"},
		{in: "https://proxy/outpost/", want: "https://proxy/outpost"},
		{in: "http://127.0.0.1:7080", want: "http://127.0.0.1:7080"},
		{in: "", err: "no hub server address"},
		{in: "ftp://hub", err: "scheme must be https or http"},
		{in: "https://", err: "no host"},
		{in: "https://hub?x=1", err: "query"},
	}
	for _, tt := range tests {
		u, err := parseServer(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("parseServer(%q) err = %v, want %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("parseServer(%q): %v", tt.in, err)
			continue
		}
		if u.String() != tt.want {
			t.Errorf("parseServer(%q) = %q, want %q", tt.in, u, tt.want)
		}
	}
}

func TestURLEscapesSegments(t *testing.T) {
	c, err := New(Config{Server: "https://proxy/outpost/"})
	if err != nil {
		t.Fatal(err)
	}
	got := c.url(apiPath("projects", "a b", "hosts", "x/y"), map[string][]string{"selector": {"k=v,k2"}})
	want := "https://proxy/outpost/api/v1/projects/a%20b/hosts/x%2Fy?selector=k%3Dv%2Ck2"
	if got != want {
		t.Fatalf("url = %q, want %q", got, want)
	}
}

func TestNewBadCA(t *testing.T) {
	if _, err := New(Config{Server: "hub", CAPEM: []byte("not pem")}); err == nil || !strings.Contains(err.Error(), "no PEM certificate") {
		t.Fatalf("err = %v", err)
	}
	if _, err := New(Config{Server: "hub", CAFile: "/nonexistent/ca.crt"}); err == nil || !strings.Contains(err.Error(), "read CA file") {
		t.Fatalf("err = %v", err)
	}
}

func TestDecodeError(t *testing.T) {
	tests := []struct {
		name     string
		status   int
		body     string
		sentinel error
		msg      string
	}{
		{"hub error", 404, `{"code":"not_found","message":"host \"edge-1\" not found"}`, ErrNotFound, `host "edge-1" not found`},
		{"conflict", 409, `{"code":"conflict","message":"conflict"}`, ErrConflict, "conflict"},
		{"field is shown", 422, `{"code":"invalid","message":"must be 0 or more","field":"spec.maxUses"}`, ErrInvalid, "spec.maxUses: must be 0 or more"},
		{"field already in message", 422, `{"code":"invalid","message":"spec.maxUses: must be 0 or more","field":"spec.maxUses"}`, ErrInvalid, "spec.maxUses: must be 0 or more"},
		{"proxy html", 502, `<html>bad gateway</html>`, ErrUnavailable, "bad gateway"},
		{"plain text", 401, "token expired\n", ErrUnauthenticated, "token expired"},
		{"empty body", 403, "", ErrForbidden, "forbidden"},
		{"gone", 410, `{"code":"gone","message":"revision 3 was compacted"}`, ErrGone, "revision 3 was compacted"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := decodeError(tt.status, []byte(tt.body))
			if !errors.Is(err, tt.sentinel) {
				t.Errorf("errors.Is(%v, %v) = false", err, tt.sentinel)
			}
			if err.Error() != tt.msg {
				t.Errorf("message = %q, want %q", err.Error(), tt.msg)
			}
			var ae *APIError
			if !errors.As(err, &ae) || ae.Status != tt.status {
				t.Errorf("not an APIError with status %d: %#v", tt.status, err)
			}
		})
	}
}

// sseHandler streams the given SSE text, then either holds the stream open
// until the client goes away or closes it.
func sseHandler(t *testing.T, body string, hold bool, seen chan<- *http.Request) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if seen != nil {
			seen <- r
		}
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		io.WriteString(w, body)
		w.(http.Flusher).Flush()
		if hold {
			<-r.Context().Done()
		}
	}
}

func changeEvent(typ string, rev int64, id string) string {
	b, _ := json.Marshal(v1.WatchEvent[v1.EdgeHost]{Type: typ, Revision: rev, Object: v1.EdgeHost{Metadata: v1.ObjectMeta{Name: id}}})
	return fmt.Sprintf(": keep-alive\n\nevent: change\ndata: %s\n\n", b)
}

func TestWatchHosts(t *testing.T) {
	seen := make(chan *http.Request, 1)
	body := changeEvent("Added", 5, "edge-1") + changeEvent("Modified", 6, "edge-1")
	srv := httptest.NewServer(sseHandler(t, body, true, seen))
	defer srv.Close()
	c, err := New(Config{Server: srv.URL, Token: "secret"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events, errc := c.WatchHosts(ctx, "default", HostFilter{State: "Ready", Selector: "site=a"}, 4)

	r := <-seen
	if got := r.Header.Get("Authorization"); got != "Bearer secret" {
		t.Errorf("Authorization = %q", got)
	}
	if r.URL.Path != "/api/v1/projects/default/hosts" {
		t.Errorf("path = %q", r.URL.Path)
	}
	q := r.URL.Query()
	if q.Get("watch") != "1" || q.Get("since") != "4" || q.Get("state") != "Ready" || q.Get("selector") != "site=a" {
		t.Errorf("query = %q", r.URL.RawQuery)
	}

	for i, want := range []string{"Added", "Modified"} {
		select {
		case ev := <-events:
			if ev.Type != want || ev.Object.Metadata.Name != "edge-1" || ev.Revision != int64(5+i) {
				t.Errorf("event %d = %+v", i, ev)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("no event")
		}
	}
	cancel()
	for range events {
	}
	if err := <-errc; err != nil {
		t.Fatalf("after cancel: err = %v, want nil", err)
	}
}

func TestWatchServerCloses(t *testing.T) {
	srv := httptest.NewServer(sseHandler(t, changeEvent("Deleted", 9, "edge-2")+"event: change\ndata: {\"partial", false, nil))
	defer srv.Close()
	c, _ := New(Config{Server: srv.URL})
	events, errc := c.WatchHosts(context.Background(), "default", HostFilter{}, 0)
	var got []v1.WatchEvent[v1.EdgeHost]
	for ev := range events {
		got = append(got, ev)
	}
	if len(got) != 1 || got[0].Type != "Deleted" {
		t.Errorf("events = %+v", got)
	}
	if err := <-errc; !errors.Is(err, ErrStreamClosed) {
		t.Fatalf("err = %v, want ErrStreamClosed", err)
	}
}

func TestWatchGone(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusGone)
		io.WriteString(w, `{"code":"gone","message":"revision 1 is no longer in the change log"}`)
	}))
	defer srv.Close()
	c, _ := New(Config{Server: srv.URL})
	events, errc := c.WatchEvents(context.Background(), "default", EventFilter{}, 1)
	for range events {
		t.Error("unexpected event")
	}
	if err := <-errc; !errors.Is(err, ErrGone) {
		t.Fatalf("err = %v, want ErrGone", err)
	}
}

func TestPatchHostLabelsBody(t *testing.T) {
	var got map[string]any
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPatch || r.URL.Path != "/api/v1/projects/p/hosts/edge-1" {
			t.Errorf("%s %s", r.Method, r.URL.Path)
		}
		json.NewDecoder(r.Body).Decode(&got)
		io.WriteString(w, `{"metadata":{"name":"edge-1","revision":8}}`)
	}))
	defer srv.Close()
	c, _ := New(Config{Server: srv.URL})
	h, err := c.PatchHostLabels(context.Background(), "p", "edge-1", 7, map[string]string{"site": "a"}, []string{"old"})
	if err != nil {
		t.Fatal(err)
	}
	if h.Metadata.Revision != 8 {
		t.Errorf("revision = %d", h.Metadata.Revision)
	}
	want := `{"metadata":{"labels":{"old":null,"site":"a"},"revision":7}}`
	if b, _ := json.Marshal(got); string(b) != want {
		t.Errorf("body = %s, want %s", b, want)
	}
	if _, err := c.PatchHostLabels(context.Background(), "p", "edge-1", 7, map[string]string{"a": "1"}, []string{"a"}); err == nil {
		t.Error("set and remove of the same key: no error")
	}
}
