package api_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	v1 "github.com/outpost-edge/outpost/api/v1"
	"github.com/outpost-edge/outpost/examples"
	"github.com/outpost-edge/outpost/internal/catalog"
	"github.com/outpost-edge/outpost/internal/hub/api"
	"github.com/outpost-edge/outpost/internal/hub/objects"
	"github.com/outpost-edge/outpost/internal/hub/store/sqlite"
	"github.com/outpost-edge/outpost/internal/profile"
	"github.com/outpost-edge/outpost/internal/testutil/hubtest"
	"github.com/outpost-edge/outpost/pki"
)

// ---------------------------------------------------------------------------
// The document and a checker that holds every exchange against it.

var registerSSEDecoder sync.Once

type apiDoc struct {
	doc    *openapi3.T
	router routers.Router
}

// loadDoc loads and validates the embedded document, then closes its object
// schemas (see closeObjects) for response checking.
func loadDoc(t testing.TB) *apiDoc {
	t.Helper()
	// kin-openapi has no decoder for text/event-stream; the stream is checked
	// event by event (watchStream), so the body as a whole is just a string.
	registerSSEDecoder.Do(func() {
		openapi3filter.RegisterBodyDecoder("text/event-stream", openapi3filter.PlainBodyDecoder)
	})
	doc, err := openapi3.NewLoader().LoadFromData(api.OpenAPI)
	if err != nil {
		t.Fatalf("load openapi.json: %v", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("openapi.json is not a valid OpenAPI 3 document: %v", err)
	}
	closeObjects(doc)
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatalf("route openapi.json: %v", err)
	}
	return &apiDoc{doc: doc, router: router}
}

// closeObjects forbids properties the document does not name in every
// component object schema that does not say otherwise. The document leaves
// them open so clients tolerate fields added later; the test closes them so
// a field the hub sends but the document does not describe (or a stored
// secret hash leaking into a response) fails the test.
func closeObjects(doc *openapi3.T) {
	seen := map[*openapi3.Schema]bool{}
	var walk func(*openapi3.SchemaRef)
	walk = func(ref *openapi3.SchemaRef) {
		if ref == nil || ref.Value == nil || seen[ref.Value] {
			return
		}
		s := ref.Value
		seen[s] = true
		if len(s.Properties) > 0 && s.AdditionalProperties.Has == nil && s.AdditionalProperties.Schema == nil {
			closed := false
			s.AdditionalProperties.Has = &closed
		}
		for _, p := range s.Properties {
			walk(p)
		}
		walk(s.Items)
		walk(s.AdditionalProperties.Schema)
	}
	for _, s := range doc.Components.Schemas {
		walk(s)
	}
}

// operation is one method+path of the document.
type operation struct {
	method, path string
	op           *openapi3.Operation
}

func (o operation) String() string { return o.method + " " + o.path }

// operations lists the document's operations in a stable order.
func (d *apiDoc) operations() []operation {
	var out []operation
	for path, item := range d.doc.Paths.Map() {
		for method, op := range item.Operations() {
			out = append(out, operation{method: method, path: path, op: op})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].path != out[j].path {
			return out[i].path < out[j].path
		}
		return out[i].method < out[j].method
	})
	return out
}

// secured reports whether the operation needs a bearer token.
func (d *apiDoc) secured(o operation) bool {
	if o.op.Security != nil {
		return len(*o.op.Security) > 0
	}
	return len(d.doc.Security) > 0
}

// checker sends requests to a hub and checks each request and response
// against the document, recording which statuses each operation gave.
type checker struct {
	hub *hubtest.Hub
	doc *apiDoc

	mu   sync.Mutex
	seen map[string]map[int]bool // operationId → statuses observed
}

func newChecker(t testing.TB, hub *hubtest.Hub) *checker {
	return &checker{hub: hub, doc: loadDoc(t), seen: map[string]map[int]bool{}}
}

// call is one request. offDoc marks a request the document itself refuses
// (a wrong type, a missing required field, a huge body): it is sent to see
// that the hub refuses it too, so it is not checked against the document.
type call struct {
	method, path, token string
	body                any
	offDoc              bool
}

type answer struct {
	status int
	header http.Header
	body   []byte
}

func encodeBody(t testing.TB, body any) []byte {
	t.Helper()
	switch b := body.(type) {
	case nil:
		return nil
	case []byte:
		return b
	case string:
		return []byte(b)
	}
	data, err := json.Marshal(body)
	if err != nil {
		t.Fatalf("encode body: %v", err)
	}
	return data
}

func newRequest(t testing.TB, ctx context.Context, method, target string, body []byte) *http.Request {
	t.Helper()
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, target, r)
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return req
}

// route finds the document's operation for req; a request the hub is sent
// must be one the document describes.
func (c *checker) route(t testing.TB, req *http.Request) (*routers.Route, map[string]string) {
	t.Helper()
	route, params, err := c.doc.router.FindRoute(req)
	if err != nil {
		t.Fatalf("%s %s is not in openapi.json: %v", req.Method, req.URL.Path, err)
	}
	return route, params
}

func (c *checker) validateRequest(t testing.TB, req *http.Request, body []byte, route *routers.Route, params map[string]string) {
	t.Helper()
	vreq := req.Clone(req.Context())
	if body != nil {
		vreq.Body = io.NopCloser(bytes.NewReader(body))
	}
	in := &openapi3filter.RequestValidationInput{
		Request: vreq, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, MultiError: true},
	}
	if err := openapi3filter.ValidateRequest(req.Context(), in); err != nil {
		t.Errorf("%s %s: the test's request does not match openapi.json: %v", req.Method, req.URL, err)
	}
}

func (c *checker) validateResponse(t testing.TB, req *http.Request, route *routers.Route, params map[string]string, status int, header http.Header, body []byte) {
	t.Helper()
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route},
		Status:                 status,
		Header:                 header,
		// IncludeResponseStatus: a status the document does not list is a
		// failure, not silently accepted.
		Options: &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	in.SetBodyBytes(body)
	if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
		t.Errorf("%s %s answered %d in a way openapi.json does not allow: %v\nbody: %s", req.Method, req.URL, status, err, body)
	}
	if (status == http.StatusNoContent) != (len(body) == 0) {
		t.Errorf("%s %s answered %d with a %d-byte body", req.Method, req.URL, status, len(body))
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	id := route.Operation.OperationID
	if c.seen[id] == nil {
		c.seen[id] = map[int]bool{}
	}
	c.seen[id][status] = true
}

func (c *checker) send(t testing.TB, r call) answer {
	t.Helper()
	body := encodeBody(t, r.body)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req := newRequest(t, ctx, r.method, c.hub.URL+r.path, body)
	route, params := c.route(t, req)
	if !r.offDoc {
		c.validateRequest(t, req, body, route, params)
	}
	resp, err := c.hub.Client(r.token).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", r.method, r.path, err)
	}
	if resp.Header.Get("Content-Type") == "text/event-stream" {
		// A stream does not end; watch reads those. Here it is the answer
		// to a request that should have been refused: report the status.
		resp.Body.Close()
		return answer{status: resp.StatusCode, header: resp.Header}
	}
	data, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatalf("%s %s: read body: %v", r.method, r.path, err)
	}
	c.validateResponse(t, req, route, params, resp.StatusCode, resp.Header, data)
	return answer{status: resp.StatusCode, header: resp.Header, body: data}
}

// expect sends r and fails the test unless the hub answers want.
func (c *checker) expect(t testing.TB, want int, r call) answer {
	t.Helper()
	a := c.send(t, r)
	if a.status != want {
		t.Fatalf("%s %s: got %d, want %d: %s", r.method, r.path, a.status, want, a.body)
	}
	return a
}

// expectError is expect for error answers, also checking code and field.
func (c *checker) expectError(t testing.TB, want int, code, field string, r call) v1.Error {
	t.Helper()
	a := c.expect(t, want, r)
	var e v1.Error
	if err := json.Unmarshal(a.body, &e); err != nil {
		t.Fatalf("%s %s: error body: %v: %s", r.method, r.path, err, a.body)
	}
	if e.Code != code || e.Field != field {
		t.Fatalf("%s %s: got code %q field %q, want %q %q (message %q)", r.method, r.path, e.Code, e.Field, code, field, e.Message)
	}
	return e
}

func decode[T any](t testing.TB, a answer) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(a.body, &v); err != nil {
		t.Fatalf("decode %T: %v: %s", v, err, a.body)
	}
	return v
}

// requireCoverage fails for every operation of the document the test never
// saw succeed, so a route added to the document needs a test too.
func (c *checker) requireCoverage(t testing.TB) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, o := range c.doc.operations() {
		ok := false
		var got []int
		for status := range c.seen[o.op.OperationID] {
			got = append(got, status)
			ok = ok || status/100 == 2
		}
		slices.Sort(got)
		if !ok {
			t.Errorf("%s (%s) never answered 2xx in this test (saw %v)", o, o.op.OperationID, got)
		} else {
			t.Logf("%-60s %v", o, got)
		}
	}
}

// ---------------------------------------------------------------------------
// Watch streams.

type sseEvent struct {
	name, id string
	data     []byte
}

// watchStream is an open ?watch=1 response. Every event read is checked
// against the schema the document names for the stream (x-event-data);
// close checks the response as a whole.
type watchStream struct {
	c      *checker
	req    *http.Request
	route  *routers.Route
	params map[string]string
	resp   *http.Response
	cancel context.CancelFunc
	events chan sseEvent
	done   chan struct{}
	schema *openapi3.Schema

	mu  sync.Mutex
	raw bytes.Buffer

	closeOnce sync.Once
}

func (c *checker) watch(t testing.TB, path, token string) *watchStream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req := newRequest(t, ctx, http.MethodGet, c.hub.URL+path, nil)
	req.Header.Set("Accept", "text/event-stream")
	route, params := c.route(t, req)
	c.validateRequest(t, req, nil, route, params)
	resp, err := c.hub.Client(token).Do(req)
	if err != nil {
		cancel()
		t.Fatalf("GET %s: %v", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		data, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		cancel()
		c.validateResponse(t, req, route, params, resp.StatusCode, resp.Header, data)
		t.Fatalf("GET %s: got %d, want a 200 stream: %s", path, resp.StatusCode, data)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		cancel()
		resp.Body.Close()
		t.Fatalf("GET %s: Content-Type %q, want text/event-stream", path, ct)
	}
	w := &watchStream{
		c: c, req: req, route: route, params: params, resp: resp, cancel: cancel,
		events: make(chan sseEvent, 256), done: make(chan struct{}),
		schema: c.eventDataSchema(t, route),
	}
	go w.read()
	t.Cleanup(func() { w.close(t) })
	return w
}

// eventDataSchema resolves the x-event-data extension of the operation's
// text/event-stream answer.
func (c *checker) eventDataSchema(t testing.TB, route *routers.Route) *openapi3.Schema {
	t.Helper()
	resp := route.Operation.Responses.Status(http.StatusOK)
	if resp == nil || resp.Value == nil || resp.Value.Content["text/event-stream"] == nil {
		t.Fatalf("%s %s: openapi.json has no text/event-stream answer", route.Method, route.Path)
	}
	ext := resp.Value.Content["text/event-stream"].Extensions["x-event-data"]
	var ref string
	switch v := ext.(type) {
	case string:
		ref = v
	case json.RawMessage:
		json.Unmarshal(v, &ref)
	}
	name, ok := strings.CutPrefix(ref, "#/components/schemas/")
	s := c.doc.doc.Components.Schemas[name]
	if !ok || s == nil || s.Value == nil {
		t.Fatalf("%s %s: x-event-data %v names no component schema", route.Method, route.Path, ext)
	}
	return s.Value
}

func (w *watchStream) read() {
	defer close(w.done)
	defer close(w.events)
	sc := bufio.NewScanner(io.TeeReader(w.resp.Body, lockedWriter{w}))
	var ev sseEvent
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if ev.name != "" || ev.data != nil {
				select {
				case w.events <- ev:
				case <-w.req.Context().Done():
					return
				}
			}
			ev = sseEvent{}
		case strings.HasPrefix(line, ":"):
		case strings.HasPrefix(line, "event: "):
			ev.name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "id: "):
			ev.id = strings.TrimPrefix(line, "id: ")
		case strings.HasPrefix(line, "data: "):
			ev.data = append(ev.data, strings.TrimPrefix(line, "data: ")...)
		}
	}
}

type lockedWriter struct{ w *watchStream }

func (l lockedWriter) Write(p []byte) (int, error) {
	l.w.mu.Lock()
	defer l.w.mu.Unlock()
	return l.w.raw.Write(p)
}

// next returns the next event, failing the test when none comes within a
// few seconds or the stream ends.
func (w *watchStream) next(t testing.TB) sseEvent {
	t.Helper()
	select {
	case ev, ok := <-w.events:
		if !ok {
			t.Fatalf("GET %s: stream ended", w.req.URL)
		}
		w.check(t, ev)
		return ev
	case <-time.After(10 * time.Second):
		t.Fatalf("GET %s: no event within 10s", w.req.URL)
	}
	return sseEvent{}
}

// nextChange is next for "change" events, decoded.
func nextChange[T any](t testing.TB, w *watchStream) v1.WatchEvent[T] {
	t.Helper()
	ev := w.next(t)
	if ev.name != "change" {
		t.Fatalf("GET %s: event %q (%s), want change", w.req.URL, ev.name, ev.data)
	}
	var we v1.WatchEvent[T]
	if err := json.Unmarshal(ev.data, &we); err != nil {
		t.Fatalf("GET %s: decode change: %v", w.req.URL, err)
	}
	if ev.id != fmt.Sprint(we.Revision) {
		t.Errorf("GET %s: event id %q is not the change's revision %d", w.req.URL, ev.id, we.Revision)
	}
	return we
}

func (w *watchStream) check(t testing.TB, ev sseEvent) {
	t.Helper()
	var schema *openapi3.Schema
	switch ev.name {
	case "change":
		schema = w.schema
	case "error":
		schema = w.c.doc.doc.Components.Schemas["Error"].Value
	default:
		t.Errorf("GET %s: event %q is not described in openapi.json", w.req.URL, ev.name)
		return
	}
	var v any
	if err := json.Unmarshal(ev.data, &v); err != nil {
		t.Errorf("GET %s: event data is not JSON: %v: %s", w.req.URL, err, ev.data)
		return
	}
	if err := w.c.doc.doc.ValidateSchemaJSON(schema, v, openapi3.MultiErrors(), openapi3.VisitAsResponse()); err != nil {
		t.Errorf("GET %s: %s event does not match openapi.json: %v\ndata: %s", w.req.URL, ev.name, err, ev.data)
	}
}

func (w *watchStream) close(t testing.TB) {
	w.closeOnce.Do(func() {
		w.cancel()
		<-w.done
		w.resp.Body.Close()
		w.mu.Lock()
		raw := bytes.Clone(w.raw.Bytes())
		w.mu.Unlock()
		w.c.validateResponse(t, w.req, w.route, w.params, w.resp.StatusCode, w.resp.Header, raw)
	})
}

// ---------------------------------------------------------------------------
// A fake agent, enough to put hosts in every state through the agent API.

type fakeAgent struct {
	id   string
	key  *ecdsa.PrivateKey
	csr  string
	cert *tls.Certificate
}

func newAgent(t testing.TB, id string) *fakeAgent {
	t.Helper()
	key, err := pki.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	csr, err := pki.NewCSR(key, id)
	if err != nil {
		t.Fatal(err)
	}
	return &fakeAgent{id: id, key: key, csr: csr}
}

func agentPost(t testing.TB, hub *hubtest.Hub, client *http.Client, path string, body any) (int, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req := newRequest(t, ctx, http.MethodPost, hub.AgentURL+path, encodeBody(t, body))
	req.Header.Set(v1.HeaderAgentProtocol, fmt.Sprint(v1.AgentProtocolVersion))
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	return resp.StatusCode, data
}

// enroll sends an enrollment with the agent's own ID and CSR; on 200 the
// agent keeps its certificate for later heartbeats.
func (a *fakeAgent) enroll(t testing.TB, hub *hubtest.Hub, req v1.EnrollRequest) (int, v1.EnrollResponse, []byte) {
	t.Helper()
	req.HostID, req.CSR = a.id, a.csr
	status, data := agentPost(t, hub, hub.AgentClient(nil), v1.AgentPathEnroll, req)
	var resp v1.EnrollResponse
	if status == http.StatusOK || status == http.StatusAccepted {
		if err := json.Unmarshal(data, &resp); err != nil {
			t.Fatalf("enroll %s: %v: %s", a.id, err, data)
		}
	}
	if status == http.StatusOK {
		keyPEM, err := pki.EncodeKey(a.key)
		if err != nil {
			t.Fatal(err)
		}
		cert, err := tls.X509KeyPair([]byte(resp.Certificate), keyPEM)
		if err != nil {
			t.Fatalf("enroll %s: certificate: %v", a.id, err)
		}
		a.cert = &cert
	}
	return status, resp, data
}

// mustEnroll enrolls and fails unless the hub answers want.
func (a *fakeAgent) mustEnroll(t testing.TB, hub *hubtest.Hub, want int, req v1.EnrollRequest) v1.EnrollResponse {
	t.Helper()
	status, resp, data := a.enroll(t, hub, req)
	if status != want {
		t.Fatalf("enroll %s: got %d, want %d: %s", a.id, status, want, data)
	}
	return resp
}

func (a *fakeAgent) heartbeat(t testing.TB, hub *hubtest.Hub, req v1.HeartbeatRequest) {
	t.Helper()
	if a.cert == nil {
		t.Fatalf("heartbeat %s: not enrolled", a.id)
	}
	status, data := agentPost(t, hub, hub.AgentClient(a.cert), v1.AgentPathHeartbeat, req)
	if status != http.StatusOK {
		t.Fatalf("heartbeat %s: got %d: %s", a.id, status, data)
	}
}

// inventory is what a small industrial PC reports.
func inventory(hostname string) *v1.Inventory {
	return &v1.Inventory{
		Hostname:  hostname,
		Arch:      "amd64",
		OS:        v1.OSInfo{Name: "Ubuntu", Version: "24.04.1 LTS", KernelVersion: "6.8.0-45-generic"},
		CPU:       v1.CPU{Model: "Intel(R) Xeon(R) E-2314 CPU @ 2.80GHz", Cores: 4},
		MemoryMiB: 31890,
		Disks: []v1.Disk{
			{Name: "nvme0n1", SizeBytes: 512110190592},
			{Name: "sda", SizeBytes: 32017047552, Removable: true},
		},
		NICs: []v1.NIC{
			{Name: "eno1", MAC: "3c:ec:ef:12:34:56", Addresses: []string{"10.20.0.11/24", "fe80::3eec:efff:fe12:3456/64"}, Up: true},
			{Name: "eno2", MAC: "3c:ec:ef:12:34:57", Up: false},
		},
		Serial:      "S1X2Y3Z4",
		ProductUUID: "4c4c4544-0042-3510-8052-b7c04f4e3232",
	}
}

// ---------------------------------------------------------------------------
// Small helpers for bodies.

type obj = map[string]any

func names[T v1.Object](items []T) []string {
	out := make([]string, 0, len(items))
	for _, it := range items {
		out = append(out, it.GetObjectMeta().Name)
	}
	return out
}

func ptrs[T any](items []T) []*T {
	out := make([]*T, len(items))
	for i := range items {
		out[i] = &items[i]
	}
	return out
}

func hostNames(l v1.List[v1.EdgeHost]) []string { return names(ptrs(l.Items)) }

// mustNotContainKey fails when any object in a JSON document has key: the
// secret of a token is shown once, at creation, and never again.
func mustNotContainKey(t testing.TB, body []byte, key string) {
	t.Helper()
	var walk func(v any) bool
	walk = func(v any) bool {
		switch x := v.(type) {
		case map[string]any:
			if _, ok := x[key]; ok {
				return true
			}
			for _, e := range x {
				if walk(e) {
					return true
				}
			}
		case []any:
			if slices.ContainsFunc(x, walk) {
				return true
			}
		}
		return false
	}
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("decode: %v", err)
	}
	if walk(v) {
		t.Errorf("answer carries %q: %s", key, body)
	}
}

// ---------------------------------------------------------------------------
// The tests.

// TestIntegrationOpenAPI drives every operation of openapi.json against a
// real hub, success and error paths, and checks each request and answer
// against the document.
func TestIntegrationOpenAPI(t *testing.T) {
	hub := hubtest.Start(t)
	c := newChecker(t, hub)
	admin := hub.AdminToken
	const project = "plant-7"
	pp := "/api/v1/projects/" + project
	now := time.Now().UTC()

	t.Run("document", func(t *testing.T) {
		a := c.expect(t, 200, call{method: "GET", path: "/api/v1/openapi.json"})
		if !bytes.Equal(a.body, api.OpenAPI) {
			t.Error("GET /api/v1/openapi.json does not serve the embedded document")
		}
	})

	t.Run("unauthenticated", func(t *testing.T) {
		for _, o := range c.doc.operations() {
			if !c.doc.secured(o) {
				continue
			}
			path := strings.NewReplacer("{project}", project, "{name}", "nothing", "{id}", "nothing", "{registry}", "nothing", "{version}", "1.0.0").Replace(o.path)
			var body any
			if o.op.RequestBody != nil {
				body = obj{}
			}
			a := c.send(t, call{method: o.method, path: path, body: body, offDoc: true})
			if a.status != 401 {
				t.Errorf("%s without a token: got %d, want 401: %s", o, a.status, a.body)
				continue
			}
			if got := a.header.Get("WWW-Authenticate"); !strings.HasPrefix(got, "Bearer") {
				t.Errorf("%s without a token: WWW-Authenticate %q", o, got)
			}
			c.expectError(t, 401, v1.CodeUnauthenticated, "", call{method: o.method, path: path, token: "opt_notatoken_notasecretatall", body: body, offDoc: true})
		}
	})

	t.Run("whoami", func(t *testing.T) {
		a := c.expect(t, 200, call{method: "GET", path: "/api/v1/whoami", token: admin})
		mustNotContainKey(t, a.body, "token")
		who := decode[v1.APIToken](t, a)
		if who.Metadata.Name != "admin" || !reflect.DeepEqual(who.Spec.Roles, []v1.ProjectRole{{Project: "*", Role: "admin"}}) {
			t.Errorf("whoami = %+v, want the first admin token", who)
		}
	})

	var projectRev int64
	t.Run("projects", func(t *testing.T) {
		l := decode[v1.List[v1.Project]](t, c.expect(t, 200, call{method: "GET", path: "/api/v1/projects", token: admin}))
		if !slices.Contains(names(ptrs(l.Items)), "default") {
			t.Errorf("projects %v lack the default project", names(ptrs(l.Items)))
		}

		p := decode[v1.Project](t, c.expect(t, 201, call{method: "POST", path: "/api/v1/projects", token: admin, body: obj{
			"apiVersion": v1.APIVersion, "kind": v1.KindProject,
			"metadata": obj{"name": project, "labels": obj{"region": "eu"}},
			"spec":     obj{"description": "Plant 7, Berlin-Spandau"},
		}}))
		if p.Metadata.Name != project || p.Metadata.Revision == 0 || p.Metadata.CreatedAt.IsZero() || p.Metadata.Labels["region"] != "eu" || p.Spec.Description == "" {
			t.Errorf("created project = %+v", p)
		}
		projectRev = p.Metadata.Revision
		c.expect(t, 201, call{method: "POST", path: "/api/v1/projects", token: admin, body: obj{"metadata": obj{"name": "scratch"}}})

		c.expectError(t, 409, v1.CodeAlreadyExists, "", call{method: "POST", path: "/api/v1/projects", token: admin, body: obj{"metadata": obj{"name": project}}})
		c.expectError(t, 422, v1.CodeInvalid, "metadata.name", call{method: "POST", path: "/api/v1/projects", token: admin, body: obj{"metadata": obj{"name": "Plant_7"}}})
		c.expectError(t, 422, v1.CodeInvalid, "metadata.name", call{method: "POST", path: "/api/v1/projects", token: admin, body: obj{"metadata": obj{"name": 7}}, offDoc: true})
		c.expectError(t, 400, v1.CodeBadRequest, "", call{method: "POST", path: "/api/v1/projects", token: admin, body: obj{"metadata": obj{"name": "x"}, "colour": "red"}, offDoc: true})
		c.expectError(t, 400, v1.CodeBadRequest, "", call{method: "POST", path: "/api/v1/projects", token: admin, body: `{"metadata":`, offDoc: true})

		got := decode[v1.Project](t, c.expect(t, 200, call{method: "GET", path: pp, token: admin}))
		if got.Metadata.Revision != projectRev {
			t.Errorf("read revision %d, created %d", got.Metadata.Revision, projectRev)
		}
		c.expectError(t, 404, v1.CodeNotFound, "", call{method: "GET", path: "/api/v1/projects/nowhere", token: admin})

		up := decode[v1.Project](t, c.expect(t, 200, call{method: "PUT", path: pp, token: admin, body: obj{
			"metadata": obj{"revision": projectRev, "labels": obj{"region": "eu-central"}},
			"spec":     obj{"description": "Plant 7, Berlin-Spandau, hall 2"},
		}}))
		if up.Metadata.Revision <= projectRev || up.Metadata.Labels["region"] != "eu-central" || up.Spec.Description != "Plant 7, Berlin-Spandau, hall 2" {
			t.Errorf("updated project = %+v", up)
		}
		c.expectError(t, 409, v1.CodeConflict, "", call{method: "PUT", path: pp, token: admin, body: obj{
			"metadata": obj{"revision": projectRev}, "spec": obj{"description": "stale"},
		}})
		c.expectError(t, 422, v1.CodeInvalid, "metadata.revision", call{method: "PUT", path: pp, token: admin, body: obj{"spec": obj{"description": "no revision"}}, offDoc: true})
		c.expectError(t, 404, v1.CodeNotFound, "", call{method: "PUT", path: "/api/v1/projects/nowhere", token: admin, body: obj{"metadata": obj{"revision": 1}}})
		projectRev = up.Metadata.Revision
	})

	t.Run("request body limit", func(t *testing.T) {
		big := strings.Repeat("x", api.MaxBodyBytes+1024)
		for _, o := range c.doc.operations() {
			if o.op.RequestBody == nil {
				continue
			}
			path := strings.NewReplacer("{project}", project, "{name}", "big", "{id}", "big", "{registry}", "big", "{version}", "1.0.0").Replace(o.path)
			c.expectError(t, 413, v1.CodeTooLarge, "", call{method: o.method, path: path, token: admin,
				body: obj{"metadata": obj{"name": "big", "labels": obj{"filler": big}}}, offDoc: true})
		}
	})

	var ciToken string
	t.Run("api tokens", func(t *testing.T) {
		expires := now.Add(48 * time.Hour).Truncate(time.Second)
		a := c.expect(t, 201, call{method: "POST", path: "/api/v1/tokens", token: admin, body: obj{
			"apiVersion": v1.APIVersion, "kind": v1.KindAPIToken,
			"metadata": obj{"name": "ci", "labels": obj{"owner": "build-team"}},
			"spec": obj{
				"description": "CI pipeline of the plant-7 rollout",
				"roles":       []obj{{"project": project, "role": "editor"}},
				"expiresAt":   expires,
			},
		}})
		tok := decode[v1.APIToken](t, a)
		if !strings.HasPrefix(tok.Token, "opt_") || tok.Status.ID == "" || tok.Spec.ExpiresAt == nil || !tok.Spec.ExpiresAt.Equal(expires) {
			t.Errorf("created API token = %+v", tok)
		}
		ciToken = tok.Token

		c.expectError(t, 409, v1.CodeAlreadyExists, "", call{method: "POST", path: "/api/v1/tokens", token: admin, body: obj{
			"metadata": obj{"name": "ci"}, "spec": obj{"roles": []obj{{"project": project, "role": "viewer"}}},
		}})
		c.expectError(t, 422, v1.CodeInvalid, "spec.roles[0].role", call{method: "POST", path: "/api/v1/tokens", token: admin, body: obj{
			"metadata": obj{"name": "x"}, "spec": obj{"roles": []obj{{"project": project, "role": "owner"}}},
		}, offDoc: true})
		c.expectError(t, 422, v1.CodeInvalid, "spec.roles", call{method: "POST", path: "/api/v1/tokens", token: admin, body: obj{
			"metadata": obj{"name": "x"}, "spec": obj{"roles": []obj{}},
		}, offDoc: true})
		c.expectError(t, 422, v1.CodeInvalid, "spec.expiresAt", call{method: "POST", path: "/api/v1/tokens", token: admin, body: obj{
			"metadata": obj{"name": "x"}, "spec": obj{"roles": []obj{{"project": project, "role": "viewer"}}, "expiresAt": now.Add(-time.Hour)},
		}})

		l := c.expect(t, 200, call{method: "GET", path: "/api/v1/tokens", token: admin})
		mustNotContainKey(t, l.body, "token")
		if got := names(ptrs(decode[v1.List[v1.APIToken]](t, l).Items)); !slices.Equal(got, []string{"admin", "ci"}) {
			t.Errorf("API tokens = %v, want [admin ci]", got)
		}
		g := c.expect(t, 200, call{method: "GET", path: "/api/v1/tokens/ci", token: admin})
		mustNotContainKey(t, g.body, "token")
		c.expectError(t, 404, v1.CodeNotFound, "", call{method: "GET", path: "/api/v1/tokens/nothing", token: admin})

		// The new token works, within its roles.
		who := decode[v1.APIToken](t, c.expect(t, 200, call{method: "GET", path: "/api/v1/whoami", token: ciToken}))
		if who.Metadata.Name != "ci" || who.Token != "" {
			t.Errorf("whoami with the new token = %v", who)
		}
		if l := decode[v1.List[v1.Project]](t, c.expect(t, 200, call{method: "GET", path: "/api/v1/projects", token: ciToken})); !slices.Equal(names(ptrs(l.Items)), []string{project}) {
			t.Errorf("an editor of %s lists projects %v", project, names(ptrs(l.Items)))
		}
		c.expectError(t, 403, v1.CodeForbidden, "", call{method: "POST", path: "/api/v1/projects", token: ciToken, body: obj{"metadata": obj{"name": "mine"}}})
		c.expectError(t, 403, v1.CodeForbidden, "", call{method: "PUT", path: pp, token: ciToken, body: obj{"metadata": obj{"revision": projectRev}}})
		c.expectError(t, 403, v1.CodeForbidden, "", call{method: "DELETE", path: pp, token: ciToken})
		c.expectError(t, 403, v1.CodeForbidden, "", call{method: "POST", path: "/api/v1/tokens", token: ciToken, body: obj{
			"metadata": obj{"name": "escalate"}, "spec": obj{"roles": []obj{{"project": project, "role": "admin"}}},
		}})
	})

	var rackToken string
	t.Run("registration tokens", func(t *testing.T) {
		expires := now.Add(7 * 24 * time.Hour).Truncate(time.Second)
		rt := decode[v1.RegistrationToken](t, c.expect(t, 201, call{method: "POST", path: pp + "/registrationtokens", token: ciToken, body: obj{
			"apiVersion": v1.APIVersion, "kind": v1.KindRegistrationToken,
			"metadata": obj{"name": "rack-a", "labels": obj{"team": "ops"}},
			"spec": obj{
				"description": "Rack A, hall 2",
				"expiresAt":   expires,
				"maxUses":     5,
				"labels":      obj{"site": "berlin"},
			},
		}}))
		if !strings.HasPrefix(rt.Token, "ort_") || rt.Status.State != v1.TokenActive || rt.Status.Uses != 0 || rt.Metadata.Project != project || rt.Spec.MaxUses != 5 {
			t.Errorf("created registration token = %+v", rt)
		}
		rackToken = rt.Token
		c.expect(t, 201, call{method: "POST", path: pp + "/registrationtokens", token: admin, body: obj{"metadata": obj{"name": "spare"}}})

		c.expectError(t, 409, v1.CodeAlreadyExists, "", call{method: "POST", path: pp + "/registrationtokens", token: admin, body: obj{"metadata": obj{"name": "rack-a"}}})
		c.expectError(t, 422, v1.CodeInvalid, "spec.maxUses", call{method: "POST", path: pp + "/registrationtokens", token: admin, body: obj{"metadata": obj{"name": "x"}, "spec": obj{"maxUses": -1}}, offDoc: true})
		c.expectError(t, 422, v1.CodeInvalid, "spec.maxUses", call{method: "POST", path: pp + "/registrationtokens", token: admin, body: obj{"metadata": obj{"name": "x"}, "spec": obj{"maxUses": "five"}}, offDoc: true})
		c.expectError(t, 422, v1.CodeInvalid, "spec.revoked", call{method: "POST", path: pp + "/registrationtokens", token: admin, body: obj{"metadata": obj{"name": "x"}, "spec": obj{"revoked": true}}})
		c.expectError(t, 422, v1.CodeInvalid, "spec.labels.bad key", call{method: "POST", path: pp + "/registrationtokens", token: admin, body: obj{"metadata": obj{"name": "x"}, "spec": obj{"labels": obj{"bad key": "v"}}}})
		c.expectError(t, 404, v1.CodeNotFound, "", call{method: "POST", path: "/api/v1/projects/nowhere/registrationtokens", token: admin, body: obj{"metadata": obj{"name": "x"}}})

		l := c.expect(t, 200, call{method: "GET", path: pp + "/registrationtokens", token: admin})
		mustNotContainKey(t, l.body, "token")
		if got := names(ptrs(decode[v1.List[v1.RegistrationToken]](t, l).Items)); !slices.Equal(got, []string{"rack-a", "spare"}) {
			t.Errorf("registration tokens = %v", got)
		}
		g := c.expect(t, 200, call{method: "GET", path: pp + "/registrationtokens/rack-a", token: admin})
		mustNotContainKey(t, g.body, "token")
		c.expectError(t, 404, v1.CodeNotFound, "", call{method: "GET", path: pp + "/registrationtokens/nothing", token: admin})

		w := c.watch(t, pp+"/registrationtokens?watch=1", admin)
		for _, want := range []string{"rack-a", "spare"} {
			ev := nextChange[v1.RegistrationToken](t, w)
			if ev.Type != v1.WatchAdded || ev.Object.Metadata.Name != want || ev.Object.Token != "" {
				t.Errorf("watch: %s %s (token %q), want Added %s without secret", ev.Type, ev.Object.Metadata.Name, ev.Object.Token, want)
			}
		}
		w.close(t)
		c.expectError(t, 422, v1.CodeInvalid, "since", call{method: "GET", path: pp + "/registrationtokens?watch=1&since=yesterday", token: admin, offDoc: true})
	})

	berlin1, hamburg1 := newAgent(t, "edge-berlin-1"), newAgent(t, "edge-hamburg-1")
	t.Run("hosts", func(t *testing.T) {
		// edge-berlin-1 enrolls with the registration token and reports
		// itself unhealthy; edge-berlin-2 is pre-registered and never seen;
		// edge-hamburg-1 enrolls without a token and waits for approval.
		resp := berlin1.mustEnroll(t, hub, 200, v1.EnrollRequest{
			RegistrationToken: rackToken, Labels: map[string]string{"rack": "a"},
			AgentVersion: "1.4.1", Inventory: inventory("berlin-1"),
		})
		if resp.Status != v1.EnrollApproved || resp.Project != project {
			t.Fatalf("enroll with token = %+v", resp)
		}
		berlin1.heartbeat(t, hub, v1.HeartbeatRequest{AgentVersion: "1.4.2", Health: v1.HealthUnhealthy, HealthMessage: "disk /var is 95% full"})

		reg := decode[v1.EdgeHost](t, c.expect(t, 201, call{method: "POST", path: pp + "/hosts", token: admin, body: obj{
			"apiVersion": v1.APIVersion, "kind": v1.KindEdgeHost,
			"metadata": obj{"name": "edge-berlin-2", "labels": obj{"site": "berlin", "name": "Berlin 2"}},
		}}))
		if reg.Status.State != v1.HostUnpaired || reg.Status.Health != v1.HealthUnknown || reg.Spec.DisplayName != "Berlin 2" || reg.Metadata.Project != project {
			t.Errorf("pre-registered host = %+v", reg)
		}
		c.expectError(t, 409, v1.CodeAlreadyExists, "", call{method: "POST", path: pp + "/hosts", token: admin, body: obj{"metadata": obj{"name": "edge-berlin-2"}}})
		c.expectError(t, 409, v1.CodeAlreadyExists, "", call{method: "POST", path: "/api/v1/projects/scratch/hosts", token: admin, body: obj{"metadata": obj{"name": "edge-berlin-1"}}})
		c.expectError(t, 422, v1.CodeInvalid, "metadata.name", call{method: "POST", path: pp + "/hosts", token: admin, body: obj{"metadata": obj{"name": "Edge_2"}}})
		c.expectError(t, 404, v1.CodeNotFound, "", call{method: "POST", path: "/api/v1/projects/nowhere/hosts", token: admin, body: obj{"metadata": obj{"name": "edge-x"}}})

		pending := hamburg1.mustEnroll(t, hub, 202, v1.EnrollRequest{Project: project, AgentVersion: "1.4.2", Inventory: inventory("hamburg-1")})
		if pending.Status != v1.EnrollPending {
			t.Fatalf("enroll without token = %+v", pending)
		}

		all := decode[v1.List[v1.EdgeHost]](t, c.expect(t, 200, call{method: "GET", path: pp + "/hosts", token: admin}))
		if got := hostNames(all); !slices.Equal(got, []string{"edge-berlin-1", "edge-berlin-2", "edge-hamburg-1"}) {
			t.Fatalf("hosts = %v", got)
		}
		for _, f := range []struct {
			query string
			want  []string
		}{
			{"state=PendingApproval", []string{"edge-hamburg-1"}},
			{"state=unpaired", []string{"edge-berlin-2"}},
			{"health=Unhealthy", []string{"edge-berlin-1"}},
			{"health=Unknown", []string{"edge-berlin-2", "edge-hamburg-1"}},
			{"selector=site%3Dberlin", []string{"edge-berlin-1", "edge-berlin-2"}},
			{"selector=" + url.QueryEscape("site=berlin,!rack"), []string{"edge-berlin-2"}},
			{"selector=" + url.QueryEscape("site!=berlin"), []string{"edge-hamburg-1"}},
			{"selector=rack", []string{"edge-berlin-1"}},
			{"state=Ready&selector=" + url.QueryEscape("rack==a"), []string{"edge-berlin-1"}},
			{"state=InUse", []string{}},
		} {
			l := decode[v1.List[v1.EdgeHost]](t, c.expect(t, 200, call{method: "GET", path: pp + "/hosts?" + f.query, token: admin}))
			if got := hostNames(l); !slices.Equal(got, f.want) {
				t.Errorf("hosts?%s = %v, want %v", f.query, got, f.want)
			}
		}
		c.expectError(t, 422, v1.CodeInvalid, "selector", call{method: "GET", path: pp + "/hosts?selector=" + url.QueryEscape("=berlin"), token: admin})

		h := decode[v1.EdgeHost](t, c.expect(t, 200, call{method: "GET", path: pp + "/hosts/edge-berlin-1", token: admin}))
		st := h.Status
		if st.State != v1.HostReady || st.Health != v1.HealthUnhealthy || st.HealthMessage != "disk /var is 95% full" ||
			st.AgentVersion != "1.4.2" || st.EnrolledWith != "rack-a" || st.EnrollmentID == "" || st.CertificateSerial == "" ||
			st.CertificateExpires == nil || st.LastSeen == nil || st.PairedAt == nil || st.PublicKeyHash == "" {
			t.Errorf("enrolled host status = %+v", st)
		}
		if !reflect.DeepEqual(st.Inventory, inventory("berlin-1")) || st.InventoryHash != inventory("berlin-1").Hash() {
			t.Errorf("inventory = %+v (hash %s), want what the agent sent", st.Inventory, st.InventoryHash)
		}
		if h.Metadata.Labels["site"] != "berlin" || h.Metadata.Labels["rack"] != "a" {
			t.Errorf("labels = %v, want the token's site and the agent's rack", h.Metadata.Labels)
		}
		c.expectError(t, 404, v1.CodeNotFound, "", call{method: "GET", path: pp + "/hosts/nothing", token: admin})
		if rt := decode[v1.RegistrationToken](t, c.expect(t, 200, call{method: "GET", path: pp + "/registrationtokens/rack-a", token: admin})); rt.Status.Uses != 1 {
			t.Errorf("registration token uses = %d after one enrollment", rt.Status.Uses)
		}

		// Labels: set, replace the display name, remove with null.
		patched := decode[v1.EdgeHost](t, c.expect(t, 200, call{method: "PATCH", path: pp + "/hosts/edge-berlin-2", token: admin, body: obj{
			"metadata": obj{"revision": reg.Metadata.Revision, "labels": obj{"name": "Berlin Two", "site": nil, "tier": "edge"}},
		}}))
		if !reflect.DeepEqual(patched.Metadata.Labels, map[string]string{"name": "Berlin Two", "tier": "edge"}) || patched.Spec.DisplayName != "Berlin Two" {
			t.Errorf("patched host labels %v, display name %q", patched.Metadata.Labels, patched.Spec.DisplayName)
		}
		c.expectError(t, 409, v1.CodeConflict, "", call{method: "PATCH", path: pp + "/hosts/edge-berlin-2", token: admin, body: obj{
			"metadata": obj{"revision": reg.Metadata.Revision, "labels": obj{"tier": "core"}},
		}})
		c.expectError(t, 422, v1.CodeInvalid, "metadata.revision", call{method: "PATCH", path: pp + "/hosts/edge-berlin-2", token: admin, body: obj{
			"metadata": obj{"labels": obj{"tier": "core"}},
		}, offDoc: true})
		c.expectError(t, 422, v1.CodeInvalid, "metadata.labels.bad key!", call{method: "PATCH", path: pp + "/hosts/edge-berlin-2", token: admin, body: obj{
			"metadata": obj{"revision": patched.Metadata.Revision, "labels": obj{"bad key!": "x"}},
		}})
		c.expectError(t, 400, v1.CodeBadRequest, "", call{method: "PATCH", path: pp + "/hosts/edge-berlin-2", token: admin, body: obj{
			"metadata": obj{"revision": patched.Metadata.Revision, "name": "renamed"},
		}, offDoc: true})
		c.expectError(t, 404, v1.CodeNotFound, "", call{method: "PATCH", path: pp + "/hosts/nothing", token: admin, body: obj{"metadata": obj{"revision": 1}}})

		// Approval: only a pending host, and only once.
		approved := decode[v1.EdgeHost](t, c.expect(t, 200, call{method: "POST", path: pp + "/hosts/edge-hamburg-1/approve", token: admin}))
		if approved.Status.State != v1.HostReady || approved.Status.PairedAt == nil || approved.Status.EnrollmentID == "" {
			t.Errorf("approved host status = %+v", approved.Status)
		}
		c.expectError(t, 409, v1.CodeConflict, "", call{method: "POST", path: pp + "/hosts/edge-hamburg-1/approve", token: admin})
		c.expectError(t, 409, v1.CodeConflict, "", call{method: "POST", path: pp + "/hosts/edge-berlin-2/approve", token: admin})
		c.expectError(t, 404, v1.CodeNotFound, "", call{method: "POST", path: pp + "/hosts/nothing/approve", token: admin})
		// The agent asks again with the same key and now gets its certificate.
		hamburg1.mustEnroll(t, hub, 200, v1.EnrollRequest{Project: project})
	})

	t.Run("watch hosts", func(t *testing.T) {
		// Without since: the matching hosts first, then their changes.
		w := c.watch(t, pp+"/hosts?watch=1&selector=site%3Dberlin", admin)
		ev := nextChange[v1.EdgeHost](t, w)
		if ev.Type != v1.WatchAdded || ev.Object.Metadata.Name != "edge-berlin-1" || ev.Object.Status.Inventory == nil {
			t.Fatalf("first event %s %s, want Added edge-berlin-1 with inventory", ev.Type, ev.Object.Metadata.Name)
		}
		c.expect(t, 200, call{method: "PATCH", path: pp + "/hosts/edge-berlin-1", token: admin, body: obj{
			"metadata": obj{"revision": ev.Object.Metadata.Revision, "labels": obj{"tier": "edge"}},
		}})
		ev = nextChange[v1.EdgeHost](t, w)
		if ev.Type != v1.WatchModified || ev.Object.Metadata.Name != "edge-berlin-1" || ev.Object.Metadata.Labels["tier"] != "edge" {
			t.Errorf("after a label change: %s %s %v", ev.Type, ev.Object.Metadata.Name, ev.Object.Metadata.Labels)
		}
		w.close(t)

		// With since: only what changed after the list.
		l := decode[v1.List[v1.EdgeHost]](t, c.expect(t, 200, call{method: "GET", path: pp + "/hosts", token: admin}))
		w = c.watch(t, fmt.Sprintf("%s/hosts?watch=1&since=%d", pp, l.Revision), admin)
		var rev int64
		for _, h := range l.Items {
			if h.Metadata.Name == "edge-berlin-2" {
				rev = h.Metadata.Revision
			}
		}
		c.expect(t, 200, call{method: "PATCH", path: pp + "/hosts/edge-berlin-2", token: admin, body: obj{
			"metadata": obj{"revision": rev, "labels": obj{"name": "Berlin 2"}},
		}})
		ev = nextChange[v1.EdgeHost](t, w)
		if ev.Type != v1.WatchModified || ev.Object.Metadata.Name != "edge-berlin-2" || ev.Revision <= l.Revision {
			t.Errorf("first event after since=%d: %s %s at %d", l.Revision, ev.Type, ev.Object.Metadata.Name, ev.Revision)
		}
		c.expect(t, 204, call{method: "DELETE", path: pp + "/hosts/edge-berlin-2", token: ciToken})
		ev = nextChange[v1.EdgeHost](t, w)
		if ev.Type != v1.WatchDeleted || ev.Object.Metadata.Name != "edge-berlin-2" {
			t.Errorf("after delete: %s %s", ev.Type, ev.Object.Metadata.Name)
		}
		w.close(t)

		c.expectError(t, 404, v1.CodeNotFound, "", call{method: "DELETE", path: pp + "/hosts/edge-berlin-2", token: admin})
		c.expectError(t, 404, v1.CodeNotFound, "", call{method: "GET", path: pp + "/hosts/edge-berlin-2", token: admin})
		c.expectError(t, 422, v1.CodeInvalid, "since", call{method: "GET", path: pp + "/hosts?watch=1&since=-4", token: admin, offDoc: true})
	})

	t.Run("events", func(t *testing.T) {
		l := decode[v1.List[v1.Event]](t, c.expect(t, 200, call{method: "GET", path: pp + "/events", token: admin}))
		reasons := map[string]string{}
		for _, e := range l.Items {
			reasons[e.Object+" "+e.Reason] = e.Type
		}
		for _, want := range []string{
			"RegistrationToken/rack-a Created", "EdgeHost/edge-berlin-1 Paired", "EdgeHost/edge-berlin-1 Unhealthy",
			"EdgeHost/edge-berlin-2 Registered", "EdgeHost/edge-berlin-2 Deleted",
			"EdgeHost/edge-hamburg-1 ApprovalRequested", "EdgeHost/edge-hamburg-1 Paired",
		} {
			if _, ok := reasons[want]; !ok {
				t.Errorf("no event %q in %v", want, reasons)
			}
		}
		if reasons["EdgeHost/edge-berlin-1 Unhealthy"] != objects.EventWarning {
			t.Errorf("an unhealthy host is a %q event, want Warning", reasons["EdgeHost/edge-berlin-1 Unhealthy"])
		}
		if !slices.IsSortedFunc(l.Items, func(a, b v1.Event) int { return a.Time.Compare(b.Time) }) {
			t.Error("events are not oldest first")
		}

		one := decode[v1.List[v1.Event]](t, c.expect(t, 200, call{method: "GET", path: pp + "/events?object=" + url.QueryEscape("EdgeHost/edge-hamburg-1"), token: admin}))
		var got []string
		for _, e := range one.Items {
			if e.Object != "EdgeHost/edge-hamburg-1" {
				t.Errorf("events?object=EdgeHost/edge-hamburg-1 returned one about %s", e.Object)
			}
			got = append(got, e.Reason)
		}
		if !slices.Equal(got, []string{"ApprovalRequested", "Paired"}) {
			t.Errorf("events of edge-hamburg-1 = %v", got)
		}

		w := c.watch(t, pp+"/events?watch=1&object="+url.QueryEscape("EdgeHost/edge-hamburg-1"), admin)
		for _, want := range got {
			if ev := nextChange[v1.Event](t, w); ev.Type != v1.WatchAdded || ev.Object.Reason != want {
				t.Errorf("event watch: %s %s, want Added %s", ev.Type, ev.Object.Reason, want)
			}
		}
		// A new event about the object arrives live.
		hamburg1.heartbeat(t, hub, v1.HeartbeatRequest{Health: v1.HealthHealthy})
		if ev := nextChange[v1.Event](t, w); ev.Type != v1.WatchAdded || ev.Object.Reason != v1.HealthHealthy {
			t.Errorf("live event: %s %s, want Added Healthy", ev.Type, ev.Object.Reason)
		}
		w.close(t)
		c.expectError(t, 422, v1.CodeInvalid, "since", call{method: "GET", path: pp + "/events?watch=1&since=x", token: admin, offDoc: true})
		c.expectError(t, 404, v1.CodeNotFound, "", call{method: "GET", path: "/api/v1/projects/nowhere/events", token: ciToken})
	})

	t.Run("revoke and delete registration tokens", func(t *testing.T) {
		rt := decode[v1.RegistrationToken](t, c.expect(t, 200, call{method: "POST", path: pp + "/registrationtokens/rack-a/revoke", token: admin}))
		if rt.Status.State != v1.TokenRevoked || !rt.Spec.Revoked || rt.Status.Uses != 1 {
			t.Errorf("revoked token = %+v", rt)
		}
		c.expect(t, 200, call{method: "POST", path: pp + "/registrationtokens/rack-a/revoke", token: admin})
		c.expectError(t, 404, v1.CodeNotFound, "", call{method: "POST", path: pp + "/registrationtokens/nothing/revoke", token: admin})
		if status, _, data := newAgent(t, "edge-late-1").enroll(t, hub, v1.EnrollRequest{RegistrationToken: rackToken}); status != 401 || !strings.Contains(string(data), v1.CodeTokenRevoked) {
			t.Errorf("enroll with a revoked token: %d %s", status, data)
		}

		c.expect(t, 204, call{method: "DELETE", path: pp + "/registrationtokens/rack-a", token: admin})
		c.expectError(t, 404, v1.CodeNotFound, "", call{method: "DELETE", path: pp + "/registrationtokens/rack-a", token: admin})
		c.expectError(t, 404, v1.CodeNotFound, "", call{method: "GET", path: pp + "/registrationtokens/rack-a", token: admin})
		c.expect(t, 204, call{method: "DELETE", path: pp + "/registrationtokens/spare", token: ciToken})
	})

	t.Run("modeling", func(t *testing.T) { testModeling(t, c, admin, ciToken, project) })

	t.Run("clusters", func(t *testing.T) { testClusters(t, c, hub, admin) })

	t.Run("delete", func(t *testing.T) {
		c.expect(t, 204, call{method: "DELETE", path: "/api/v1/tokens/ci", token: admin})
		c.expectError(t, 401, v1.CodeUnauthenticated, "", call{method: "GET", path: "/api/v1/whoami", token: ciToken})
		c.expectError(t, 404, v1.CodeNotFound, "", call{method: "DELETE", path: "/api/v1/tokens/ci", token: admin})

		// plant-7 still has two hosts.
		c.expectError(t, 409, v1.CodeConflict, "", call{method: "DELETE", path: pp, token: admin})
		c.expect(t, 204, call{method: "DELETE", path: "/api/v1/projects/scratch", token: admin})
		c.expectError(t, 404, v1.CodeNotFound, "", call{method: "GET", path: "/api/v1/projects/scratch", token: admin})
		c.expectError(t, 404, v1.CodeNotFound, "", call{method: "DELETE", path: "/api/v1/projects/scratch", token: admin})
		for _, id := range []string{"edge-berlin-1", "edge-hamburg-1"} {
			c.expect(t, 204, call{method: "DELETE", path: pp + "/hosts/" + id, token: admin})
		}
		c.expect(t, 204, call{method: "DELETE", path: pp, token: admin})
	})

	c.requireCoverage(t)
}

// TestIntegrationOpenAPIRoutes keeps the document honest: the routes the
// hub registers and the operations the document describes are the same set,
// each documented operation reaches a handler, and operation IDs name the
// handlers.
func TestIntegrationOpenAPIRoutes(t *testing.T) {
	d := loadDoc(t)
	documented := map[string]string{}
	for _, o := range d.operations() {
		documented[o.String()] = o.op.OperationID
	}

	// Routes are registered in several files of the package (user.go,
	// modeling.go, routes.go, …): read every one that is not a test, so a
	// route added in a new file is held against the document too.
	served := map[string]string{} // "METHOD /path" → handler method ("" outside UserAPI)
	sources, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	userRoute := regexp.MustCompile(`\bh\("([A-Z]+) (/[^"]*)", a\.(\w+)\)`)
	muxRoute := regexp.MustCompile(`mux\.\w+\("([A-Z]+) (/api/[^"]*)"`)
	perFile := map[string]int{}
	for _, f := range sources {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range userRoute.FindAllStringSubmatch(string(src), -1) {
			served[m[1]+" "+m[2]] = m[3]
			perFile[f]++
		}
		for _, m := range muxRoute.FindAllStringSubmatch(string(src), -1) {
			if _, ok := served[m[1]+" "+m[2]]; !ok {
				served[m[1]+" "+m[2]] = ""
			}
			perFile[f]++
		}
	}
	// The patterns must still match how routes are written: the files
	// known to hold routes must yield them.
	for _, f := range []string{"user.go", "modeling.go", "routes.go"} {
		if perFile[f] == 0 {
			t.Fatalf("found no routes in %s; has the way routes are registered changed? Update the patterns.", f)
		}
	}
	if len(served) < 30 {
		t.Fatalf("found only %d routes; has the way routes are registered changed? Update the patterns.", len(served))
	}

	for route, handler := range served {
		id, ok := documented[route]
		switch {
		case !ok:
			t.Errorf("the hub serves %s but openapi.json does not describe it", route)
		case handler != "" && id != handler:
			t.Errorf("%s: operationId %q, but the handler is a.%s", route, id, handler)
		}
	}
	for route := range documented {
		if _, ok := served[route]; !ok {
			t.Errorf("openapi.json describes %s but the hub does not register it", route)
		}
	}

	// Every documented operation must reach a handler, not the catch-all
	// that answers unknown /api/ paths.
	hub := hubtest.Start(t)
	noRoute := func(method, path string) (bool, int, []byte) {
		var body any
		if method == "POST" || method == "PUT" || method == "PATCH" {
			body = "{}"
		}
		resp, data := hub.Do(t, method, path, hub.AdminToken, body)
		var e v1.Error
		json.Unmarshal(data, &e)
		return resp.StatusCode == 405 || resp.StatusCode == 404 && strings.HasPrefix(e.Message, "no route"), resp.StatusCode, data
	}
	for _, o := range d.operations() {
		path := strings.NewReplacer("{project}", "no-such-project", "{name}", "no-such-name", "{id}", "no-such-host", "{registry}", "no-such-registry", "{version}", "1.0.0").Replace(o.path)
		if miss, status, data := noRoute(o.method, path); miss {
			t.Errorf("%s: no handler (%d %s)", o, status, data)
		}
	}
	// The check above can tell: paths and methods the hub does not serve
	// do hit the catch-all.
	for _, r := range [][2]string{{"GET", "/api/v1/nothing"}, {"PATCH", "/api/v1/projects"}, {"POST", "/api/v1/projects/p/events"}} {
		if miss, status, data := noRoute(r[0], r[1]); !miss {
			t.Errorf("%s %s reached a handler (%d %s); the no-route check is broken", r[0], r[1], status, data)
		}
	}
}

// TestIntegrationWatchSinceCompacted: a watch from a revision the change log
// no longer holds must fail with 410 gone (docs/api.md, openapi.json), so a
// client knows at once to list again.
func TestIntegrationWatchSinceCompacted(t *testing.T) {
	hub := hubtest.Start(t)
	c := newChecker(t, hub)
	admin := hub.AdminToken
	c.expect(t, 201, call{method: "POST", path: "/api/v1/projects", token: admin, body: obj{"metadata": obj{"name": "p1"}}})
	for _, id := range []string{"h1", "h2", "h3"} {
		c.expect(t, 201, call{method: "POST", path: "/api/v1/projects/p1/hosts", token: admin, body: obj{"metadata": obj{"name": id}}})
	}

	// Compaction runs every few minutes in the hub; do it from outside
	// through a second handle on the hub's SQLite file (server.Run keeps
	// it at DataDir/outpost.db), which SQLite's locking allows.
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(hub.DataDir, "outpost.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	rev, err := st.Revision(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// rev-1, not rev: the hub's own change follower may still be reading
	// the last revision, and must not be overtaken.
	if err := st.Compact(ctx, rev-1); err != nil {
		t.Fatal(err)
	}

	for _, list := range []string{"hosts", "events", "registrationtokens"} {
		t.Run(list, func(t *testing.T) {
			target := "/api/v1/projects/p1/" + list + "?watch=1&since=1"
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			req := newRequest(t, ctx, "GET", hub.URL+target, nil)
			route, params := c.route(t, req)
			resp, err := hub.Client(admin).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				// Say what came instead: the first event of the stream.
				var first []string
				sc := bufio.NewScanner(resp.Body)
				for sc.Scan() {
					line := sc.Text()
					if line == "" && len(first) > 0 {
						break
					}
					if strings.HasPrefix(line, "event: ") || strings.HasPrefix(line, "data: ") {
						first = append(first, line)
					}
				}
				t.Fatalf("GET %s: got 200 %s and then %q; want 410 gone before the stream starts", target, resp.Header.Get("Content-Type"), strings.Join(first, " | "))
			}
			data, _ := io.ReadAll(resp.Body)
			c.validateResponse(t, req, route, params, resp.StatusCode, resp.Header, data)
			var e v1.Error
			json.Unmarshal(data, &e)
			if resp.StatusCode != http.StatusGone || e.Code != v1.CodeGone {
				t.Fatalf("GET %s: got %d %s, want 410 gone", target, resp.StatusCode, data)
			}
		})
	}
}

// TestIntegrationCreateValidatesLabels: creates check metadata.labels as
// PUT and PATCH do, so no object can be made with labels no update of it
// could write back.
func TestIntegrationCreateValidatesLabels(t *testing.T) {
	hub := hubtest.Start(t)
	c := newChecker(t, hub)
	admin := hub.AdminToken
	c.expect(t, 201, call{method: "POST", path: "/api/v1/projects", token: admin, body: obj{"metadata": obj{"name": "p1"}}})
	bad := obj{"team": "ops", "bad key!": "x"}
	for kind, r := range map[string]call{
		"project":            {method: "POST", path: "/api/v1/projects", body: obj{"metadata": obj{"name": "p2", "labels": bad}}},
		"API token":          {method: "POST", path: "/api/v1/tokens", body: obj{"metadata": obj{"name": "t2", "labels": bad}, "spec": obj{"roles": []obj{{"project": "p1", "role": "viewer"}}}}},
		"registration token": {method: "POST", path: "/api/v1/projects/p1/registrationtokens", body: obj{"metadata": obj{"name": "rt2", "labels": bad}}},
		"host":               {method: "POST", path: "/api/v1/projects/p1/hosts", body: obj{"metadata": obj{"name": "h2", "labels": bad}}},
	} {
		t.Run(kind, func(t *testing.T) {
			r.token = admin
			c.expectError(t, 422, v1.CodeInvalid, "metadata.labels.bad key!", r)
		})
	}
}

// TestIntegrationRegistrationTokenWatch: a registration token in a watch
// event carries the same derived state as in a list, for the first events
// and for the changes after them alike.
func TestIntegrationRegistrationTokenWatch(t *testing.T) {
	hub := hubtest.Start(t)
	c := newChecker(t, hub)
	admin := hub.AdminToken
	pp := "/api/v1/projects/p1"
	c.expect(t, 201, call{method: "POST", path: "/api/v1/projects", token: admin, body: obj{"metadata": obj{"name": "p1"}}})
	c.expect(t, 201, call{method: "POST", path: pp + "/registrationtokens", token: admin, body: obj{"metadata": obj{"name": "rt-1"}}})

	w := c.watch(t, pp+"/registrationtokens?watch=1", admin)
	check := func(typ, name, state string) {
		t.Helper()
		ev := nextChange[v1.RegistrationToken](t, w)
		if ev.Type != typ || ev.Object.Metadata.Name != name || ev.Object.Status.State != state || ev.Object.Token != "" {
			t.Errorf("watch: %s %s in state %q (token %q), want %s %s in state %q without secret",
				ev.Type, ev.Object.Metadata.Name, ev.Object.Status.State, ev.Object.Token, typ, name, state)
		}
	}
	check(v1.WatchAdded, "rt-1", v1.TokenActive)
	c.expect(t, 201, call{method: "POST", path: pp + "/registrationtokens", token: admin, body: obj{"metadata": obj{"name": "rt-2"}, "spec": obj{"maxUses": 1}}})
	check(v1.WatchAdded, "rt-2", v1.TokenActive)
	c.expect(t, 200, call{method: "POST", path: pp + "/registrationtokens/rt-1/revoke", token: admin})
	check(v1.WatchModified, "rt-1", v1.TokenRevoked)
}

// ---------------------------------------------------------------------------
// The modeling API: registries, packs, profiles.

// helmRepo is a Helm chart repository whose index a test can change.
type helmRepo struct {
	*httptest.Server
	mu    sync.Mutex
	index string
}

func newHelmRepo(t testing.TB, index string) *helmRepo {
	r := &helmRepo{index: index}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path != "/index.yaml" {
			http.NotFound(w, req)
			return
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		w.Header().Set("Content-Type", "application/x-yaml")
		io.WriteString(w, r.index)
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *helmRepo) set(index string) {
	r.mu.Lock()
	r.index = index
	r.mu.Unlock()
}

const agentDigest = "9a6968c9efd5650510d8253dca227a4c191bc7457c01ffdcc2af877f11dcb194"

// agentIndex is a Helm index as `helm repo index` writes it, with entries
// a registry must leave out: a library chart and a version that is not
// MAJOR.MINOR.PATCH.
func agentIndex(extra string) string {
	return `apiVersion: v1
entries:
  edge-agent:
` + extra + `  - apiVersion: v2
    name: edge-agent
    version: 1.2.0
    appVersion: "1.2"
    description: The site agent
    kubeVersion: ">=1.28.0-0"
    digest: ` + agentDigest + `
    urls:
    - edge-agent-1.2.0.tgz
  - apiVersion: v2
    name: edge-agent
    version: 1.1.0
    description: An older site agent
    urls:
    - https://mirror.example.com/charts/edge-agent-1.1.0.tgz
  helpers:
  - apiVersion: v2
    name: helpers
    type: library
    version: 0.1.0
    urls:
    - helpers-0.1.0.tgz
  snapshot:
  - apiVersion: v2
    name: snapshot
    version: latest
    urls:
    - snapshot.tgz
generated: "2025-01-01T00:00:00Z"
`
}

// newestOn is the newest version of a pack that is not deprecated and
// starts with prefix: what a train such as 1.30.x must resolve to.
func newestOn(pk v1.Pack, prefix string) string {
	best := ""
	for _, v := range pk.Spec.Versions {
		if !v.Deprecated && strings.HasPrefix(v.Version, prefix) && (best == "" || catalog.Newer(v.Version, best)) {
			best = v.Version
		}
	}
	return best
}

func layerNames(rp v1.RenderedProfile) []string {
	var out []string
	for _, l := range rp.Layers {
		out = append(out, l.Name)
	}
	return out
}

func resolvedOf(cp v1.ClusterProfile, layer string) string {
	for _, r := range cp.Status.Resolved {
		if r.Layer == layer {
			return r.Version
		}
	}
	return ""
}

// testModeling walks the modeling routes in project as a hub admin (admin)
// and an editor of the project (editor): registries from a Helm repository
// served by the test, the packs they bring next to the built-in catalog,
// and a full profile through its life: render, update, publish, clone,
// bump, trains that move when the registry gains a version.
func testModeling(t *testing.T, c *checker, admin, editor, project string) {
	pp := "/api/v1/projects/" + project
	repo := newHelmRepo(t, agentIndex(""))
	viewer := decode[v1.APIToken](t, c.expect(t, 201, call{method: "POST", path: "/api/v1/tokens", token: admin, body: obj{
		"metadata": obj{"name": "plant-viewer"}, "spec": obj{"roles": []obj{{"project": project, "role": "viewer"}}},
	}})).Token

	t.Run("registries", func(t *testing.T) {
		l := decode[v1.List[v1.Registry]](t, c.expect(t, 200, call{method: "GET", path: "/api/v1/registries", token: viewer}))
		if got := names(ptrs(l.Items)); !slices.Equal(got, []string{"builtin"}) {
			t.Fatalf("registries at start = %v, want [builtin]", got)
		}
		b := decode[v1.Registry](t, c.expect(t, 200, call{method: "GET", path: "/api/v1/registries/builtin", token: editor}))
		if b.Spec.Type != v1.RegistryBuiltin || b.Status.LastSync == nil || b.Status.Packs < 5 || b.Status.Versions <= b.Status.Packs || b.Status.CatalogHash == "" {
			t.Errorf("built-in registry = %+v", b)
		}

		created := decode[v1.Registry](t, c.expect(t, 201, call{method: "POST", path: "/api/v1/registries", token: admin, body: obj{
			"apiVersion": v1.APIVersion, "kind": v1.KindRegistry,
			"metadata": obj{"name": "lab", "labels": obj{"owner": "platform"}},
			"spec":     obj{"type": "helm", "url": repo.URL, "syncInterval": "0"},
		}}))
		if created.Status.LastSync == nil || created.Status.LastError != "" || created.Status.Packs != 1 || created.Status.Versions != 2 || created.Metadata.Labels["owner"] != "platform" {
			t.Errorf("created registry status = %+v", created.Status)
		}
		c.expectError(t, 409, v1.CodeAlreadyExists, "", call{method: "POST", path: "/api/v1/registries", token: admin, body: obj{
			"metadata": obj{"name": "lab"}, "spec": obj{"type": "helm", "url": repo.URL},
		}})
		for _, bad := range []struct {
			field  string
			spec   obj
			offDoc bool
		}{
			{"spec.type", obj{"type": "builtin"}, false},
			{"spec.type", obj{"type": "git", "url": repo.URL}, true},
			{"spec.url", obj{"type": "helm"}, false},
			{"spec.url", obj{"type": "helm", "url": "ftp://charts.example.com"}, false},
			{"spec.url", obj{"type": "pack-index", "url": repo.URL, "directory": "/srv/packs"}, false},
			{"spec.directory", obj{"type": "helm", "url": repo.URL, "directory": "/srv/packs"}, false},
			{"spec.syncInterval", obj{"type": "helm", "url": repo.URL, "syncInterval": "5s"}, false},
		} {
			c.expectError(t, 422, v1.CodeInvalid, bad.field, call{method: "POST", path: "/api/v1/registries", token: admin, offDoc: bad.offDoc,
				body: obj{"metadata": obj{"name": "bad"}, "spec": bad.spec}})
		}
		c.expectError(t, 422, v1.CodeInvalid, "metadata.name", call{method: "POST", path: "/api/v1/registries", token: admin, body: obj{
			"metadata": obj{"name": "Lab_2"}, "spec": obj{"type": "helm", "url": repo.URL},
		}})
		// Registries are hub-wide: project roles do not change them.
		for _, tok := range []string{editor, viewer} {
			c.expectError(t, 403, v1.CodeForbidden, "", call{method: "POST", path: "/api/v1/registries", token: tok, body: obj{
				"metadata": obj{"name": "mine"}, "spec": obj{"type": "helm", "url": repo.URL},
			}})
			c.expectError(t, 403, v1.CodeForbidden, "", call{method: "PUT", path: "/api/v1/registries/lab", token: tok, body: obj{
				"metadata": obj{"revision": created.Metadata.Revision}, "spec": obj{"type": "helm", "url": "https://elsewhere.example.com"},
			}})
			c.expectError(t, 403, v1.CodeForbidden, "", call{method: "POST", path: "/api/v1/registries/lab/sync", token: tok})
			c.expectError(t, 403, v1.CodeForbidden, "", call{method: "DELETE", path: "/api/v1/registries/lab", token: tok})
		}

		// A registry that cannot be read is still made; its status says why.
		gone := httptest.NewServer(http.NotFoundHandler())
		goneURL := gone.URL
		gone.Close()
		broken := decode[v1.Registry](t, c.expect(t, 201, call{method: "POST", path: "/api/v1/registries", token: admin, body: obj{
			"metadata": obj{"name": "broken"}, "spec": obj{"type": "pack-index", "url": goneURL},
		}}))
		if broken.Status.LastError == "" || broken.Status.LastErrorAt == nil || broken.Status.LastSync != nil || broken.Status.Packs != 0 {
			t.Errorf("registry that cannot be read: status %+v", broken.Status)
		}
		synced := decode[v1.Registry](t, c.expect(t, 200, call{method: "POST", path: "/api/v1/registries/broken/sync", token: admin}))
		if synced.Status.LastError == "" || synced.Status.LastErrorAt == nil || synced.Status.LastErrorAt.Before(*broken.Status.LastErrorAt) {
			t.Errorf("sync of a registry that cannot be read: status %+v", synced.Status)
		}
		c.expect(t, 204, call{method: "DELETE", path: "/api/v1/registries/broken", token: admin})
		c.expectError(t, 404, v1.CodeNotFound, "", call{method: "DELETE", path: "/api/v1/registries/broken", token: admin})
		c.expectError(t, 404, v1.CodeNotFound, "", call{method: "GET", path: "/api/v1/registries/broken", token: admin})
		c.expectError(t, 404, v1.CodeNotFound, "", call{method: "POST", path: "/api/v1/registries/broken/sync", token: admin})
		c.expectError(t, 422, v1.CodeInvalid, "metadata.name", call{method: "DELETE", path: "/api/v1/registries/builtin", token: admin})

		// Update: spec and labels replace the stored ones, with the revision read.
		up := decode[v1.Registry](t, c.expect(t, 200, call{method: "PUT", path: "/api/v1/registries/lab", token: admin, body: obj{
			"metadata": obj{"revision": created.Metadata.Revision, "labels": obj{"owner": "edge-team"}},
			"spec":     obj{"type": "helm", "url": repo.URL + "/index.yaml", "syncInterval": "30m"},
		}}))
		if up.Metadata.Revision <= created.Metadata.Revision || up.Spec.SyncInterval != "30m" || up.Metadata.Labels["owner"] != "edge-team" || up.Status.Packs != 1 || up.Status.LastError != "" {
			t.Errorf("updated registry = %+v", up)
		}
		c.expectError(t, 409, v1.CodeConflict, "", call{method: "PUT", path: "/api/v1/registries/lab", token: admin, body: obj{
			"metadata": obj{"revision": created.Metadata.Revision}, "spec": obj{"type": "helm", "url": repo.URL},
		}})
		c.expectError(t, 422, v1.CodeInvalid, "metadata.revision", call{method: "PUT", path: "/api/v1/registries/lab", token: admin, offDoc: true, body: obj{
			"metadata": obj{}, "spec": obj{"type": "helm", "url": repo.URL},
		}})
		c.expectError(t, 404, v1.CodeNotFound, "", call{method: "PUT", path: "/api/v1/registries/nothing", token: admin, body: obj{
			"metadata": obj{"revision": 1}, "spec": obj{"type": "helm", "url": repo.URL},
		}})

		// Every token reads registries, so what it reads must not carry the
		// credentials a registry's URL may hold; the packs do not either.
		c.expect(t, 201, call{method: "POST", path: "/api/v1/registries", token: admin, body: obj{
			"metadata": obj{"name": "private"}, "spec": obj{"type": "helm", "url": strings.Replace(repo.URL, "http://", "http://robot:s3cret-pass@", 1)},
		}})
		for _, path := range []string{"/api/v1/registries", "/api/v1/registries/private", "/api/v1/packs?registry=private"} {
			if a := c.expect(t, 200, call{method: "GET", path: path, token: viewer}); strings.Contains(string(a.body), "s3cret-pass") {
				t.Errorf("BUG: GET %s shows a viewer the registry's password: %s", path, a.body)
			}
		}
		c.expect(t, 204, call{method: "DELETE", path: "/api/v1/registries/private", token: admin})
	})

	var k3s v1.Pack
	t.Run("packs", func(t *testing.T) {
		all := decode[v1.List[v1.Pack]](t, c.expect(t, 200, call{method: "GET", path: "/api/v1/packs", token: viewer}))
		got := names(ptrs(all.Items))
		for _, want := range []string{"builtin/ubuntu", "builtin/k3s", "builtin/calico", "builtin/local-path", "builtin/metrics-server", "lab/edge-agent"} {
			if !slices.Contains(got, want) {
				t.Errorf("packs %v lack %s", got, want)
			}
		}
		for _, f := range []struct {
			query string
			want  []string
		}{
			{"registry=lab", []string{"lab/edge-agent"}},
			{"registry=builtin&layer=os&name=ubuntu", []string{"builtin/ubuntu"}},
			{"type=helm&name=agent", []string{"lab/edge-agent"}},
			{"layer=cni&name=calico", []string{"builtin/calico"}},
			{"name=no-such-pack", []string{}},
		} {
			l := decode[v1.List[v1.Pack]](t, c.expect(t, 200, call{method: "GET", path: "/api/v1/packs?" + f.query, token: editor}))
			if got := names(ptrs(l.Items)); !slices.Equal(got, f.want) {
				t.Errorf("packs?%s = %v, want %v", f.query, got, f.want)
			}
		}

		k3s = decode[v1.Pack](t, c.expect(t, 200, call{method: "GET", path: "/api/v1/packs/builtin/k3s", token: viewer}))
		if k3s.Spec.Layer != v1.LayerK8s || k3s.Spec.Type != v1.PackDistro || newestOn(k3s, "1.30.") == "" {
			t.Fatalf("builtin/k3s = %+v, want a k8s distro with 1.30 versions", k3s.Spec)
		}
		for i, v := range k3s.Spec.Versions {
			if i > 0 && catalog.Newer(v.Version, k3s.Spec.Versions[i-1].Version) {
				t.Errorf("k3s versions are not newest first: %s after %s", v.Version, k3s.Spec.Versions[i-1].Version)
			}
			if v.KubernetesVersion == "" || len(v.Artifacts) == 0 || !slices.ContainsFunc(v.Presets, func(p v1.Preset) bool { return p.Name == "external-cni" }) {
				t.Errorf("k3s %s: kubernetesVersion %q, %d artifacts, presets %v", v.Version, v.KubernetesVersion, len(v.Artifacts), v.Presets)
			}
		}

		// The Helm repository: one pack per installable chart.
		agent := decode[v1.Pack](t, c.expect(t, 200, call{method: "GET", path: "/api/v1/packs/lab/edge-agent", token: viewer}))
		want := v1.PackSpec{Name: "edge-agent", Registry: "lab", Description: "The site agent", Layer: v1.LayerAddon, Type: v1.PackHelm, Versions: []v1.PackVersion{
			{
				Version:     "1.2.0",
				Constraints: &v1.Constraints{Kubernetes: ">=1.28.0-0"},
				Chart:       &v1.ChartRef{Repository: repo.URL, Name: "edge-agent", Version: "1.2.0", Digest: agentDigest},
				Artifacts:   []v1.Artifact{{Name: "edge-agent-1.2.0.tgz", URL: repo.URL + "/edge-agent-1.2.0.tgz", SHA256: agentDigest}},
			},
			{Version: "1.1.0", Chart: &v1.ChartRef{Repository: repo.URL, Name: "edge-agent", Version: "1.1.0"}},
		}}
		if !reflect.DeepEqual(agent.Spec, want) {
			got, _ := json.MarshalIndent(agent.Spec, "", "  ")
			exp, _ := json.MarshalIndent(want, "", "  ")
			t.Errorf("lab/edge-agent =\n%s\nwant\n%s", got, exp)
		}
		c.expectError(t, 404, v1.CodeNotFound, "", call{method: "GET", path: "/api/v1/packs/lab/helpers", token: viewer})
		c.expectError(t, 404, v1.CodeNotFound, "", call{method: "GET", path: "/api/v1/packs/lab/snapshot", token: viewer})
		c.expectError(t, 404, v1.CodeNotFound, "", call{method: "GET", path: "/api/v1/packs/nowhere/k3s", token: viewer})
	})

	k3sTrain := newestOn(k3s, "1.30.")
	profile := func(name, version string) obj {
		return obj{
			"apiVersion": v1.APIVersion, "kind": v1.KindClusterProfile,
			"metadata": obj{"name": name, "labels": obj{"tier": "edge"}},
			"spec": obj{
				"type": "full", "version": version, "description": "Ubuntu, k3s on 1.30, Calico, local-path and the site agent",
				"layers": []obj{
					{"pack": "ubuntu", "version": "24.04.x"},
					{"pack": "k3s", "version": "1.30.x", "presets": []string{"disable-traefik"}, "values": "config:\n  node-label:\n    - site={{ .Vars.site }}\n"},
					{"name": "cni", "pack": "calico", "version": "3.x"},
					{"pack": "local-path", "registry": "builtin", "version": "0.0.30"},
					{"name": "agent", "pack": "edge-agent", "registry": "lab", "version": "1.x", "values": "replicas: 2\n",
						"manifests": []obj{{"name": "site-ns", "content": "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: site-{{ .Vars.site }}\n"}}},
				},
				"variables": []obj{
					{"name": "site", "type": "string", "default": "lab", "regex": "[a-z]+"},
					{"name": "vip", "type": "ipv4", "default": "10.20.0.10"},
				},
			},
		}
	}

	var cp v1.ClusterProfile
	t.Run("profiles", func(t *testing.T) {
		cp = decode[v1.ClusterProfile](t, c.expect(t, 201, call{method: "POST", path: pp + "/profiles", token: editor, body: profile("edge-k3s", "1.0.0")}))
		if cp.Metadata.Name != "edge-k3s" || cp.Metadata.Project != project || cp.Metadata.Revision == 0 || cp.Spec.Published || cp.Metadata.Labels["tier"] != "edge" {
			t.Errorf("created profile = %+v", cp)
		}
		if got := []string{cp.Spec.Layers[0].Name, cp.Spec.Layers[1].Name, cp.Spec.Layers[2].Name}; !slices.Equal(got, []string{"ubuntu", "k3s", "cni"}) {
			t.Errorf("layer names %v: an unnamed layer is named after its pack", got)
		}
		if resolvedOf(cp, "k3s") != k3sTrain || resolvedOf(cp, "agent") != "1.2.0" || resolvedOf(cp, "local-path") != "0.0.30" || len(cp.Status.Resolved) != 5 {
			t.Errorf("status.resolved = %+v, want k3s at %s and agent at 1.2.0", cp.Status.Resolved, k3sTrain)
		}
		c.expectError(t, 409, v1.CodeAlreadyExists, "", call{method: "POST", path: pp + "/profiles", token: editor, body: profile("edge-k3s", "1.0.0")})
		c.expectError(t, 404, v1.CodeNotFound, "", call{method: "POST", path: "/api/v1/projects/nowhere/profiles", token: admin, body: profile("edge-k3s", "1.0.0")})
		c.expectError(t, 403, v1.CodeForbidden, "", call{method: "POST", path: pp + "/profiles", token: viewer, body: profile("edge-k3s", "2.0.0")})

		// Validation names the layer and field.
		layers := func(l ...obj) obj {
			return obj{"metadata": obj{"name": "broken"}, "spec": obj{"type": "addon", "version": "1.0.0", "layers": l}}
		}
		for _, bad := range []struct {
			field string
			body  obj
		}{
			{"spec.layers[calico].pack", layers(obj{"pack": "calico", "version": "3.x"})},
			{"spec.layers[nope].pack", layers(obj{"pack": "nope", "version": "1.0.0"})},
			{"spec.layers[agent].version", layers(obj{"name": "agent", "pack": "edge-agent", "registry": "lab", "version": "9.x"})},
			{"spec.layers[agent].values", layers(obj{"name": "agent", "pack": "edge-agent", "registry": "lab", "version": "1.x", "values": "a: {{ .Vars.nope }}\n"})},
			{"spec.version", obj{"metadata": obj{"name": "broken"}, "spec": obj{"type": "addon", "version": "1.2", "layers": []obj{{"pack": "edge-agent", "registry": "lab", "version": "1.x"}}}}},
			{"spec.layers", obj{"metadata": obj{"name": "broken"}, "spec": obj{"type": "full", "version": "1.0.0", "layers": []obj{{"pack": "k3s", "version": "1.30.x"}}}}},
		} {
			c.expectError(t, 422, v1.CodeInvalid, bad.field, call{method: "POST", path: pp + "/profiles", token: editor, body: bad.body})
		}
		c.expectError(t, 400, v1.CodeBadRequest, "", call{method: "POST", path: pp + "/profiles", token: editor, offDoc: true,
			body: obj{"metadata": obj{"name": "x"}, "spec": obj{"type": "addon", "version": "1.0.0", "layers": []obj{{"pack": "edge-agent", "chart": "x"}}}}})

		// Reads: the list, one profile's versions, one version, latest.
		if got := names(ptrs(decode[v1.List[v1.ClusterProfile]](t, c.expect(t, 200, call{method: "GET", path: pp + "/profiles", token: viewer})).Items)); !slices.Equal(got, []string{"edge-k3s"}) {
			t.Errorf("profiles = %v", got)
		}
		c.expect(t, 200, call{method: "GET", path: pp + "/profiles?name=edge-k3s", token: viewer})
		c.expectError(t, 404, v1.CodeNotFound, "", call{method: "GET", path: pp + "/profiles?name=nothing", token: viewer})
		c.expectError(t, 404, v1.CodeNotFound, "", call{method: "GET", path: pp + "/profiles/nothing", token: viewer})
		if got := decode[v1.ClusterProfile](t, c.expect(t, 200, call{method: "GET", path: pp + "/profiles/edge-k3s/latest", token: viewer})); got.Spec.Version != "1.0.0" || got.Metadata.Revision != cp.Metadata.Revision {
			t.Errorf("latest = %s at %d", got.Spec.Version, got.Metadata.Revision)
		}
		c.expectError(t, 404, v1.CodeNotFound, "", call{method: "GET", path: pp + "/profiles/edge-k3s/9.9.9", token: viewer})
		c.expectError(t, 404, v1.CodeNotFound, "", call{method: "GET", path: pp + "/profiles/nothing/latest", token: viewer})
	})

	t.Run("render", func(t *testing.T) {
		rp := decode[v1.RenderedProfile](t, c.expect(t, 200, call{method: "POST", path: pp + "/profiles/edge-k3s/1.0.0/render", token: viewer,
			body: obj{"variables": obj{"site": "berlin"}}}))
		if !slices.Equal(layerNames(rp), []string{"ubuntu", "k3s", "cni", "local-path", "agent"}) || rp.Profile != "edge-k3s" || rp.Version != "1.0.0" || rp.Type != "full" {
			t.Fatalf("rendered %s@%s (%s) layers %v", rp.Profile, rp.Version, rp.Type, layerNames(rp))
		}
		if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(rp.Hash) {
			t.Errorf("hash %q", rp.Hash)
		}
		kl := rp.Layers[1]
		if kl.Layer != v1.LayerK8s || kl.Version != k3sTrain || kl.Train != "1.30.x" || kl.KubernetesVersion == "" || !strings.HasPrefix(k3sTrain, kl.KubernetesVersion+"+") || len(kl.Artifacts) == 0 {
			t.Errorf("k3s layer = %+v", kl)
		}
		// The layer's own values, the variable, the chosen preset and the
		// external-cni preset the calico layer switches on.
		for _, want := range []string{"- site=berlin", "cluster-cidr: 10.42.0.0/16", "flannel-backend: none", "disable-network-policy: true", "- traefik"} {
			if !strings.Contains(kl.Values, want) {
				t.Errorf("k3s values lack %q:\n%s", want, kl.Values)
			}
		}
		agent := rp.Layers[4]
		if agent.Version != "1.2.0" || agent.Train != "1.x" || agent.Chart == nil || agent.Chart.Repository != repo.URL || agent.Values != "replicas: 2\n" ||
			len(agent.Manifests) != 1 || !strings.Contains(agent.Manifests[0].Content, "name: site-berlin") {
			t.Errorf("agent layer = %+v", agent)
		}
		if cni := rp.Layers[2]; cni.Layer != v1.LayerCNI || cni.Chart == nil || cni.Train != "3.x" {
			t.Errorf("cni layer = %+v", cni)
		}
		if lp := rp.Layers[3]; lp.Train != "" || lp.Version != "0.0.30" || len(lp.Manifests) == 0 {
			t.Errorf("local-path layer = %+v", lp)
		}

		again := decode[v1.RenderedProfile](t, c.expect(t, 200, call{method: "POST", path: pp + "/profiles/edge-k3s/latest/render", token: editor,
			body: obj{"variables": obj{"site": "berlin"}}}))
		if again.Hash != rp.Hash {
			t.Errorf("the same render twice: hashes %s and %s", rp.Hash, again.Hash)
		}
		// No body: the defaults.
		def := decode[v1.RenderedProfile](t, c.expect(t, 200, call{method: "POST", path: pp + "/profiles/edge-k3s/1.0.0/render", token: viewer}))
		if def.Hash == rp.Hash || !strings.Contains(def.Layers[1].Values, "- site=lab") {
			t.Errorf("render with default variables: hash %s, k3s values\n%s", def.Hash, def.Layers[1].Values)
		}
		if def.Layers[0].Hash != rp.Layers[0].Hash || def.Layers[1].Hash == rp.Layers[1].Hash {
			t.Errorf("layer hashes: the os layer does not use the variable, the k3s layer does: %s/%s, %s/%s",
				def.Layers[0].Hash, rp.Layers[0].Hash, def.Layers[1].Hash, rp.Layers[1].Hash)
		}
		cur := decode[v1.ClusterProfile](t, c.expect(t, 200, call{method: "GET", path: pp + "/profiles/edge-k3s/1.0.0", token: viewer}))
		// ResolvedHash names where the layers resolve (api/v1): set, and
		// equal for two reads with no train move in between.
		cur2 := decode[v1.ClusterProfile](t, c.expect(t, 200, call{method: "GET", path: pp + "/profiles/edge-k3s/1.0.0", token: viewer}))
		if cur.Status.ResolvedHash == "" || len(cur.Status.Resolved) == 0 || cur2.Status.ResolvedHash != cur.Status.ResolvedHash {
			t.Errorf("status.resolvedHash = %q (then %q) with resolved %v", cur.Status.ResolvedHash, cur2.Status.ResolvedHash, cur.Status.Resolved)
		}

		for _, bad := range []struct {
			field string
			vars  obj
		}{
			{"variables.vip", obj{"vip": "not-an-ip"}},
			{"variables.site", obj{"site": "Berlin 2"}},
			{"variables.nope", obj{"nope": "x"}},
		} {
			c.expectError(t, 422, v1.CodeInvalid, bad.field, call{method: "POST", path: pp + "/profiles/edge-k3s/1.0.0/render", token: viewer, body: obj{"variables": bad.vars}})
		}
		c.expectError(t, 400, v1.CodeBadRequest, "", call{method: "POST", path: pp + "/profiles/edge-k3s/1.0.0/render", token: viewer, offDoc: true, body: obj{"vars": obj{}}})
		c.expectError(t, 404, v1.CodeNotFound, "", call{method: "POST", path: pp + "/profiles/edge-k3s/9.9.9/render", token: viewer})
	})

	t.Run("update and publish", func(t *testing.T) {
		body := profile("edge-k3s", "1.0.0")
		body["metadata"].(obj)["revision"] = cp.Metadata.Revision
		body["spec"].(obj)["description"] = "changed before publishing"
		c.expectError(t, 403, v1.CodeForbidden, "", call{method: "PUT", path: pp + "/profiles/edge-k3s/1.0.0", token: viewer, body: body})
		// The status a client sends is not the hub's to take.
		body["status"] = obj{"resolvedHash": "forged", "resolved": []obj{{"layer": "k3s", "version": "0.0.1"}}}
		up := decode[v1.ClusterProfile](t, c.expect(t, 200, call{method: "PUT", path: pp + "/profiles/edge-k3s/1.0.0", token: editor, body: body}))
		if up.Spec.Description != "changed before publishing" || up.Metadata.Revision <= cp.Metadata.Revision || len(up.Status.Resolved) != 5 || resolvedOf(up, "k3s") != k3sTrain {
			t.Errorf("updated profile = %+v", up)
		}
		if up.Status.ResolvedHash == "forged" {
			t.Error("BUG: PUT stores the status.resolvedHash the client sent")
		}
		delete(body, "status")
		c.expectError(t, 409, v1.CodeConflict, "", call{method: "PUT", path: pp + "/profiles/edge-k3s/1.0.0", token: editor, body: body})
		stale := profile("edge-k3s", "1.0.0")
		stale["metadata"] = obj{}
		c.expectError(t, 422, v1.CodeInvalid, "metadata.revision", call{method: "PUT", path: pp + "/profiles/edge-k3s/1.0.0", token: editor, offDoc: true, body: stale})
		moved := profile("edge-k3s", "1.0.1")
		moved["metadata"].(obj)["revision"] = up.Metadata.Revision
		c.expectError(t, 422, v1.CodeInvalid, "spec.version", call{method: "PUT", path: pp + "/profiles/edge-k3s/1.0.0", token: editor, body: moved})
		renamed := profile("edge-k3s-2", "1.0.0")
		renamed["metadata"].(obj)["revision"] = up.Metadata.Revision
		c.expectError(t, 422, v1.CodeInvalid, "metadata.name", call{method: "PUT", path: pp + "/profiles/edge-k3s/1.0.0", token: editor, body: renamed})
		c.expectError(t, 404, v1.CodeNotFound, "", call{method: "PUT", path: pp + "/profiles/edge-k3s/9.9.9", token: editor, body: body})

		c.expectError(t, 403, v1.CodeForbidden, "", call{method: "POST", path: pp + "/profiles/edge-k3s/1.0.0/publish", token: viewer})
		pub := decode[v1.ClusterProfile](t, c.expect(t, 200, call{method: "POST", path: pp + "/profiles/edge-k3s/1.0.0/publish", token: editor}))
		if !pub.Spec.Published || pub.Spec.Description != "changed before publishing" {
			t.Errorf("published profile = %+v", pub.Spec)
		}
		if again := decode[v1.ClusterProfile](t, c.expect(t, 200, call{method: "POST", path: pp + "/profiles/edge-k3s/1.0.0/publish", token: editor})); !again.Spec.Published || again.Metadata.Revision != pub.Metadata.Revision {
			t.Errorf("publishing again changed the profile: %d → %d", pub.Metadata.Revision, again.Metadata.Revision)
		}
		c.expectError(t, 404, v1.CodeNotFound, "", call{method: "POST", path: pp + "/profiles/edge-k3s/9.9.9/publish", token: editor})

		// A published version is frozen.
		frozen := profile("edge-k3s", "1.0.0")
		frozen["metadata"].(obj)["revision"] = pub.Metadata.Revision
		frozen["spec"].(obj)["published"] = true
		frozen["spec"].(obj)["description"] = "changed after publishing"
		c.expectError(t, 422, v1.CodeInvalid, "spec.description", call{method: "PUT", path: pp + "/profiles/edge-k3s/1.0.0", token: editor, body: frozen})
		frozen["spec"].(obj)["description"] = "changed before publishing"
		frozen["spec"].(obj)["layers"].([]obj)[1]["version"] = k3sTrain
		c.expectError(t, 422, v1.CodeInvalid, "spec.layers[k3s]", call{method: "PUT", path: pp + "/profiles/edge-k3s/1.0.0", token: editor, body: frozen})
		unpublish := profile("edge-k3s", "1.0.0")
		unpublish["metadata"].(obj)["revision"] = pub.Metadata.Revision
		unpublish["spec"].(obj)["description"] = "changed before publishing"
		c.expectError(t, 422, v1.CodeInvalid, "spec.published", call{method: "PUT", path: pp + "/profiles/edge-k3s/1.0.0", token: editor, body: unpublish})
		if got := decode[v1.ClusterProfile](t, c.expect(t, 200, call{method: "GET", path: pp + "/profiles/edge-k3s/1.0.0", token: viewer})); got.Metadata.Revision != pub.Metadata.Revision {
			t.Errorf("a refused update changed the published version (revision %d → %d)", pub.Metadata.Revision, got.Metadata.Revision)
		}
	})

	t.Run("clone and bump", func(t *testing.T) {
		c.expectError(t, 403, v1.CodeForbidden, "", call{method: "POST", path: pp + "/profiles/edge-k3s/1.0.0/clone", token: viewer, body: obj{"name": "edge-k3s-ha"}})
		cl := decode[v1.ClusterProfile](t, c.expect(t, 201, call{method: "POST", path: pp + "/profiles/edge-k3s/1.0.0/clone", token: editor, body: obj{"name": "edge-k3s-ha"}}))
		if cl.Metadata.Name != "edge-k3s-ha" || cl.Spec.Version != "1.0.0" || cl.Spec.Published || len(cl.Spec.Layers) != 5 || cl.Spec.Description != "changed before publishing" {
			t.Errorf("clone = %+v", cl)
		}
		cl2 := decode[v1.ClusterProfile](t, c.expect(t, 201, call{method: "POST", path: pp + "/profiles/edge-k3s/1.0.0/clone", token: editor, body: obj{"version": "2.0.0-rc.1"}}))
		if cl2.Metadata.Name != "edge-k3s" || cl2.Spec.Version != "2.0.0-rc.1" || cl2.Spec.Published {
			t.Errorf("clone to a new version = %+v", cl2.Spec)
		}
		c.expectError(t, 409, v1.CodeAlreadyExists, "", call{method: "POST", path: pp + "/profiles/edge-k3s/1.0.0/clone", token: editor, body: obj{}})
		c.expectError(t, 422, v1.CodeInvalid, "metadata.name", call{method: "POST", path: pp + "/profiles/edge-k3s/1.0.0/clone", token: editor, body: obj{"name": "Edge_K3s"}})
		c.expectError(t, 422, v1.CodeInvalid, "spec.version", call{method: "POST", path: pp + "/profiles/edge-k3s/1.0.0/clone", token: editor, body: obj{"name": "x", "version": "two"}})
		c.expectError(t, 404, v1.CodeNotFound, "", call{method: "POST", path: pp + "/profiles/nothing/1.0.0/clone", token: editor, body: obj{"name": "x"}})

		c.expectError(t, 403, v1.CodeForbidden, "", call{method: "POST", path: pp + "/profiles/edge-k3s/1.0.0/bump", token: viewer, body: obj{"part": "minor"}})
		b := decode[v1.ClusterProfile](t, c.expect(t, 201, call{method: "POST", path: pp + "/profiles/edge-k3s/1.0.0/bump", token: editor, body: obj{"part": "minor"}}))
		if b.Spec.Version != "1.1.0" || b.Spec.Published || b.Metadata.Labels["tier"] != "edge" {
			t.Errorf("bump minor = %s (published %v, labels %v)", b.Spec.Version, b.Spec.Published, b.Metadata.Labels)
		}
		c.expectError(t, 409, v1.CodeAlreadyExists, "", call{method: "POST", path: pp + "/profiles/edge-k3s/1.0.0/bump", token: editor, body: obj{"part": "minor"}})
		if p := decode[v1.ClusterProfile](t, c.expect(t, 201, call{method: "POST", path: pp + "/profiles/edge-k3s/1.1.0/bump", token: editor, body: obj{"part": "major"}})); p.Spec.Version != "2.0.0" {
			t.Errorf("bump major of 1.1.0 = %s", p.Spec.Version)
		}
		c.expectError(t, 422, v1.CodeInvalid, "", call{method: "POST", path: pp + "/profiles/edge-k3s/1.0.0/bump", token: editor, offDoc: true, body: obj{"part": "huge"}})

		// Versions in semantic order, latest the newest of them.
		l := decode[v1.List[v1.ClusterProfile]](t, c.expect(t, 200, call{method: "GET", path: pp + "/profiles/edge-k3s", token: viewer}))
		var versions []string
		for _, p := range l.Items {
			versions = append(versions, p.Spec.Version)
		}
		if !slices.Equal(versions, []string{"1.0.0", "1.1.0", "2.0.0-rc.1", "2.0.0"}) {
			t.Errorf("versions = %v", versions)
		}
		if latest := decode[v1.ClusterProfile](t, c.expect(t, 200, call{method: "GET", path: pp + "/profiles/edge-k3s/latest", token: viewer})); latest.Spec.Version != "2.0.0" {
			t.Errorf("latest = %s, want 2.0.0", latest.Spec.Version)
		}

		c.expectError(t, 403, v1.CodeForbidden, "", call{method: "DELETE", path: pp + "/profiles/edge-k3s/2.0.0", token: viewer})
		for _, v := range []string{"2.0.0", "2.0.0-rc.1", "1.1.0"} {
			c.expect(t, 204, call{method: "DELETE", path: pp + "/profiles/edge-k3s/" + v, token: editor})
		}
		c.expectError(t, 404, v1.CodeNotFound, "", call{method: "DELETE", path: pp + "/profiles/edge-k3s/1.1.0", token: editor})
	})

	t.Run("trains", func(t *testing.T) {
		repo.set(agentIndex(`  - apiVersion: v2
    name: edge-agent
    version: 1.3.0
    description: The site agent
    urls:
    - edge-agent-1.3.0.tgz
  - apiVersion: v2
    name: edge-agent
    version: 2.0.0-beta.1
    urls:
    - edge-agent-2.0.0-beta.1.tgz
`))
		synced := decode[v1.Registry](t, c.expect(t, 200, call{method: "POST", path: "/api/v1/registries/lab/sync", token: admin}))
		if synced.Status.Versions != 4 || synced.Status.LastError != "" {
			t.Fatalf("sync: status %+v", synced.Status)
		}
		// The train moves the published version's status (not its spec) and
		// the unpublished clone's alike.
		for _, name := range []string{"edge-k3s", "edge-k3s-ha"} {
			deadline := time.Now().Add(10 * time.Second)
			for {
				p := decode[v1.ClusterProfile](t, c.expect(t, 200, call{method: "GET", path: pp + "/profiles/" + name + "/1.0.0", token: viewer}))
				if resolvedOf(p, "agent") == "1.3.0" {
					if resolvedOf(p, "k3s") != k3sTrain {
						t.Errorf("%s: k3s moved to %s", name, resolvedOf(p, "k3s"))
					}
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%s: status.resolved %+v; the agent layer did not move to 1.3.0", name, p.Status.Resolved)
				}
				time.Sleep(50 * time.Millisecond)
			}
		}
		ev := decode[v1.List[v1.Event]](t, c.expect(t, 200, call{method: "GET", path: pp + "/events?object=" + url.QueryEscape("ClusterProfile/edge-k3s@1.0.0"), token: viewer}))
		var reasons []string
		moved := false
		for _, e := range ev.Items {
			reasons = append(reasons, e.Reason)
			moved = moved || e.Reason == "VersionsResolved" && strings.Contains(e.Message, "agent 1.2.0 → 1.3.0")
		}
		if !moved || !slices.Contains(reasons, "Created") || !slices.Contains(reasons, "Published") {
			t.Errorf("events of edge-k3s@1.0.0: %v (%+v)", reasons, ev.Items)
		}
		if rp := decode[v1.RenderedProfile](t, c.expect(t, 200, call{method: "POST", path: pp + "/profiles/edge-k3s/1.0.0/render", token: viewer})); rp.Layers[4].Version != "1.3.0" {
			t.Errorf("render after the train moved: agent at %s", rp.Layers[4].Version)
		}

		// A registry gone: its packs go with it, and profiles that use them
		// say which layer lost its pack.
		c.expect(t, 204, call{method: "DELETE", path: "/api/v1/registries/lab", token: admin})
		c.expectError(t, 404, v1.CodeNotFound, "", call{method: "GET", path: "/api/v1/packs/lab/edge-agent", token: viewer})
		c.expectError(t, 422, v1.CodeInvalid, "spec.layers[agent].pack", call{method: "POST", path: pp + "/profiles/edge-k3s/1.0.0/render", token: viewer})
		c.expectError(t, 422, v1.CodeInvalid, "spec.layers[agent].pack", call{method: "POST", path: pp + "/profiles/edge-k3s-ha/1.0.0/publish", token: editor})

		for _, p := range []string{"edge-k3s-ha/1.0.0", "edge-k3s/1.0.0"} {
			c.expect(t, 204, call{method: "DELETE", path: pp + "/profiles/" + p, token: editor})
		}
		c.expect(t, 204, call{method: "DELETE", path: "/api/v1/tokens/plant-viewer", token: admin})
	})
}

// TestIntegrationDeleteProjectWithProfiles: a project's profiles must not
// outlive it. Deleting a project that still has profiles is refused, or the
// profiles go with it; either way a new project of the same name starts
// empty.
func TestIntegrationDeleteProjectWithProfiles(t *testing.T) {
	hub := hubtest.Start(t)
	c := newChecker(t, hub)
	admin := hub.AdminToken
	const p = "plant-x"
	pp := "/api/v1/projects/" + p
	c.expect(t, 201, call{method: "POST", path: "/api/v1/projects", token: admin, body: obj{"metadata": obj{"name": p}}})
	c.expect(t, 201, call{method: "POST", path: pp + "/profiles", token: admin, body: obj{
		"metadata": obj{"name": "agents"},
		"spec":     obj{"type": "addon", "version": "1.0.0", "layers": []obj{{"pack": "metrics-server", "version": "3.x"}}},
	}})
	switch a := c.send(t, call{method: "DELETE", path: pp, token: admin}); a.status {
	case http.StatusConflict:
		return
	case http.StatusNoContent:
	default:
		t.Fatalf("DELETE %s: %d %s", pp, a.status, a.body)
	}
	c.expect(t, 201, call{method: "POST", path: "/api/v1/projects", token: admin, body: obj{"metadata": obj{"name": p}}})
	if got := listNames(t, c.expect(t, 200, call{method: "GET", path: pp + "/profiles", token: admin})); len(got) != 0 {
		t.Errorf("BUG: the new project %s has the deleted one's profiles %v", p, got)
	}
}

// ---------------------------------------------------------------------------
// Clusters: fake agents that play their part, and the cluster routes.

// agentGet is agentPost for GET.
func agentGet(t testing.TB, hub *hubtest.Hub, client *http.Client, path string) (int, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req := newRequest(t, ctx, http.MethodGet, hub.AgentURL+path, nil)
	req.Header.Set(v1.HeaderAgentProtocol, fmt.Sprint(v1.AgentProtocolVersion))
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return resp.StatusCode, data
}

// waitSpec long-polls the agent's spec, as the real agent does, until ok
// holds for it.
func (a *fakeAgent) waitSpec(t testing.TB, hub *hubtest.Hub, what string, ok func(*v1.HostSpec) bool) *v1.HostSpec {
	t.Helper()
	client := hub.AgentClient(a.cert)
	var since int64
	var last *v1.HostSpec
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); {
		status, data := agentGet(t, hub, client, fmt.Sprintf("%s?since=%d&wait=2", v1.AgentPathSpec, since))
		switch status {
		case http.StatusNotModified:
			continue
		case http.StatusOK:
		default:
			t.Fatalf("spec of %s: got %d: %s", a.id, status, data)
		}
		var spec v1.HostSpec
		if err := json.Unmarshal(data, &spec); err != nil {
			t.Fatalf("spec of %s: %v: %s", a.id, err, data)
		}
		if spec.Metadata.Revision <= since {
			t.Fatalf("spec of %s: revision %d answered to since=%d", a.id, spec.Metadata.Revision, since)
		}
		since, last = spec.Metadata.Revision, &spec
		if ok(&spec) {
			return a.latestSpec(t, hub, client, &spec, ok)
		}
	}
	t.Fatalf("%s: the spec of %s never came (last %+v)", what, a.id, last)
	return nil
}

// latestSpec keeps polling until the spec stays the same for a second and
// returns the last one ok holds for: the controller may write a host's spec
// twice in a row, and a report is only taken for the spec the host has now.
func (a *fakeAgent) latestSpec(t testing.TB, hub *hubtest.Hub, client *http.Client, spec *v1.HostSpec, ok func(*v1.HostSpec) bool) *v1.HostSpec {
	t.Helper()
	for {
		status, data := agentGet(t, hub, client, fmt.Sprintf("%s?since=%d&wait=1", v1.AgentPathSpec, spec.Metadata.Revision))
		if status == http.StatusNotModified {
			return spec
		}
		var next v1.HostSpec
		if status != http.StatusOK || json.Unmarshal(data, &next) != nil {
			t.Fatalf("spec of %s: got %d: %s", a.id, status, data)
		}
		if !ok(&next) {
			t.Fatalf("the spec of %s moved on to one the test did not expect: %+v", a.id, next.Cluster)
		}
		spec = &next
	}
}

// report sends the agent's progress on its spec.
func (a *fakeAgent) report(t testing.TB, hub *hubtest.Hub, rep v1.NodeReportSpec) {
	t.Helper()
	status, data := agentPost(t, hub, hub.AgentClient(a.cert), v1.AgentPathStatus, rep)
	if status != http.StatusNoContent {
		t.Fatalf("report of %s: got %d: %s", a.id, status, data)
	}
}

// applied is the report of a node that ran every step of its spec.
func applied(spec *v1.HostSpec, address string) v1.NodeReportSpec {
	steps := []v1.StepStatus{{Name: "os", State: v1.StepDone}, {Name: "distro", State: v1.StepDone}, {Name: "layers", State: v1.StepDone}}
	return v1.NodeReportSpec{
		SpecHash: spec.Hash, State: v1.NodeReady, Steps: steps,
		ControlPlaneUp: spec.Cluster.Role != v1.RoleWorker, NodeReady: true,
		Address: address, KubernetesVersion: spec.Cluster.Distro.KubernetesVersion,
	}
}

// waitCluster reads a cluster until ok holds for it.
func waitCluster(t testing.TB, c *checker, path, token, what string, ok func(v1.Cluster) bool) v1.Cluster {
	t.Helper()
	var cl v1.Cluster
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		cl = decode[v1.Cluster](t, c.expect(t, 200, call{method: "GET", path: path, token: token}))
		if ok(cl) {
			return cl
		}
	}
	t.Fatalf("%s: cluster %s is %s (%s), health %s, nodes %+v", what, cl.Metadata.Name, cl.Status.State, cl.Status.Reason, cl.Status.Health, cl.Status.Nodes)
	return cl
}

func nodeStates(cl v1.Cluster) map[string]string {
	out := map[string]string{}
	for _, n := range cl.Status.Nodes {
		out[n.Host] = n.State
	}
	return out
}

func hostState(t testing.TB, c *checker, pp, id, token string) string {
	t.Helper()
	return decode[v1.EdgeHost](t, c.expect(t, 200, call{method: "GET", path: pp + "/hosts/" + id, token: token})).Status.State
}

func eventReasons(t testing.TB, c *checker, pp, object, token string) []string {
	t.Helper()
	l := decode[v1.List[v1.Event]](t, c.expect(t, 200, call{method: "GET", path: pp + "/events?object=" + url.QueryEscape(object), token: token}))
	var out []string
	for _, e := range l.Items {
		out = append(out, e.Reason)
	}
	return out
}

// clusterBody is a cluster of the store-edge example profile on cp (the
// control plane) and workers.
func clusterBody(name string, cp []string, workers []string) obj {
	pools := []obj{{"name": "cp", "controlPlane": true, "hosts": cp}}
	if len(workers) > 0 {
		pools = append(pools, obj{"name": "workers", "hosts": workers})
	}
	return obj{
		"apiVersion": v1.APIVersion, "kind": v1.KindCluster,
		"metadata": obj{"name": name, "labels": obj{"site": "berlin"}},
		"spec": obj{
			"profiles":  []obj{{"name": "store-edge", "version": "1.0.0"}},
			"variables": obj{"siteCode": "de-017"},
			"pools":     pools,
		},
	}
}

// withSpec returns body with spec fields set (nil deletes one).
func withSpec(body obj, set obj) obj {
	spec := obj{}
	for k, v := range body["spec"].(obj) {
		spec[k] = v
	}
	for k, v := range set {
		if v == nil {
			delete(spec, k)
		} else {
			spec[k] = v
		}
	}
	out := obj{}
	for k, v := range body {
		out[k] = v
	}
	out["spec"] = spec
	return out
}

// testClusters walks the cluster routes in a project of its own: six hosts
// enrolled through the agent API (one of another architecture), the
// store-edge example profile, and fake agents that play the nodes' part
// through provisioning, a reconfiguration diff, an abort and a delete.
func testClusters(t *testing.T, c *checker, hub *hubtest.Hub, admin string) {
	const project = "stores"
	pp := "/api/v1/projects/" + project
	c.expect(t, 201, call{method: "POST", path: "/api/v1/projects", token: admin, body: obj{"metadata": obj{"name": project}}})
	token := func(name, role string) string {
		return decode[v1.APIToken](t, c.expect(t, 201, call{method: "POST", path: "/api/v1/tokens", token: admin, body: obj{
			"metadata": obj{"name": name}, "spec": obj{"roles": []obj{{"project": project, "role": role}}},
		}})).Token
	}
	editor, viewer := token("stores-editor", v1.RoleEditor), token("stores-viewer", v1.RoleViewer)
	rt := decode[v1.RegistrationToken](t, c.expect(t, 201, call{method: "POST", path: pp + "/registrationtokens", token: admin, body: obj{"metadata": obj{"name": "stores"}}})).Token

	agents := map[string]*fakeAgent{}
	for i := 1; i <= 6; i++ {
		id := fmt.Sprintf("store-%d", i)
		inv := inventory(id)
		if i == 6 {
			inv.Arch = "arm64"
		}
		agents[id] = newAgent(t, id)
		agents[id].mustEnroll(t, hub, 200, v1.EnrollRequest{RegistrationToken: rt, AgentVersion: "1.5.0", Inventory: inv})
	}
	c.expect(t, 201, call{method: "POST", path: pp + "/hosts", token: admin, body: obj{"metadata": obj{"name": "store-7"}}})
	storeEdge, err := profile.Decode(examples.StoreEdge)
	if err != nil {
		t.Fatal(err)
	}
	c.expect(t, 201, call{method: "POST", path: pp + "/profiles", token: editor, body: storeEdge})

	shopPath := pp + "/clusters/shop"
	var created v1.Cluster
	t.Run("create", func(t *testing.T) {
		a := c.expect(t, 201, call{method: "POST", path: pp + "/clusters", token: editor, body: clusterBody("shop", []string{"store-1"}, []string{"store-2"})})
		mustNotContainKey(t, a.body, "internal")
		mustNotContainKey(t, a.body, "joinToken")
		created = decode[v1.Cluster](t, a)
		if created.Metadata.Project != project || created.Metadata.Revision == 0 || created.Metadata.Labels["site"] != "berlin" ||
			created.Status.State != v1.ClusterPending || created.Status.Health != v1.HealthUnknown || created.Kind != v1.KindCluster {
			t.Errorf("created cluster = %+v", created)
		}
		// A pool without a strategy gets the default.
		for _, p := range created.Spec.Pools {
			if p.UpdateStrategy != v1.ExpandFirst {
				t.Errorf("pool %s: updateStrategy %q, want %s", p.Name, p.UpdateStrategy, v1.ExpandFirst)
			}
		}
		// What the client sends as status is not the hub's to take.
		forged := withSpec(clusterBody("forged", []string{"store-6"}, nil), obj{"forceDeleteAfter": "1s"})
		forged["status"] = obj{"state": "Running", "health": "Healthy"}
		if got := decode[v1.Cluster](t, c.expect(t, 201, call{method: "POST", path: pp + "/clusters", token: editor, body: forged})); got.Status.State != v1.ClusterPending {
			t.Errorf("created with a status: state %s", got.Status.State)
		}
		c.expect(t, 202, call{method: "POST", path: pp + "/clusters/forged/abort", token: editor})

		c.expectError(t, 409, v1.CodeAlreadyExists, "", call{method: "POST", path: pp + "/clusters", token: editor, body: clusterBody("shop", []string{"store-3"}, nil)})
		c.expectError(t, 403, v1.CodeForbidden, "", call{method: "POST", path: pp + "/clusters", token: viewer, body: clusterBody("kiosk", []string{"store-3"}, nil)})
		c.expectError(t, 404, v1.CodeNotFound, "", call{method: "POST", path: "/api/v1/projects/nowhere/clusters", token: admin, body: clusterBody("kiosk", []string{"store-3"}, nil)})
		c.expectError(t, 400, v1.CodeBadRequest, "", call{method: "POST", path: pp + "/clusters", token: editor, offDoc: true,
			body: withSpec(clusterBody("kiosk", []string{"store-3"}, nil), obj{"replicas": 3})})
	})

	t.Run("validation", func(t *testing.T) {
		// The forged cluster let store-6 go (its teardown is forced after a
		// second), so every host but shop's is Ready again.
		waitCluster(t, c, pp+"/clusters/forged", viewer, "forged torn down", func(cl v1.Cluster) bool { return cl.Status.State == v1.ClusterDeleted })
		// store-1 is claimed by shop's controller right after the create;
		// only then does another cluster naming it fail validation.
		for deadline := time.Now().Add(10 * time.Second); hostState(t, c, pp, "store-1", viewer) != v1.HostInUse; time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatal("store-1 never turned InUse")
			}
		}
		three := []string{"store-3", "store-4", "store-5"}
		k := func(set obj) obj { return withSpec(clusterBody("kiosk", []string{"store-3"}, nil), set) }
		for _, bad := range []struct {
			name, field string
			body        obj
			offDoc      bool
		}{
			{"name", "metadata.name", clusterBody("Kiosk_1", []string{"store-3"}, nil), false},
			{"no profile", "spec.profiles", k(obj{"profiles": []obj{}}), false},
			{"unknown profile", "spec.profiles[0]", k(obj{"profiles": []obj{{"name": "nothing", "version": "1.0.0"}}}), false},
			{"unknown profile version", "spec.profiles[0]", k(obj{"profiles": []obj{{"name": "store-edge", "version": "9.9.9"}}}), false},
			{"even control plane", "spec.pools[cp].hosts", withSpec(clusterBody("kiosk", []string{"store-3", "store-4"}, nil), obj{"vip": "10.20.0.100"}), false},
			{"no VIP for three", "spec.vip", clusterBody("kiosk", three, nil), false},
			{"VIP not an address", "spec.vip", withSpec(clusterBody("kiosk", three, nil), obj{"vip": "not a vip!"}), false},
			{"no control plane", "spec.pools", k(obj{"pools": []obj{{"name": "workers", "hosts": []string{"store-3"}}}}), false},
			{"two control planes", "spec.pools", k(obj{"pools": []obj{{"name": "cp", "controlPlane": true, "hosts": []string{"store-3"}}, {"name": "cp2", "controlPlane": true, "hosts": []string{"store-4"}}}}), false},
			{"empty worker pool", "spec.pools[workers].hosts", k(obj{"pools": []obj{{"name": "cp", "controlPlane": true, "hosts": []string{"store-3"}}, {"name": "workers", "hosts": []string{}}}}), false},
			{"host twice", "spec.pools[workers].hosts[store-3]", clusterBody("kiosk", []string{"store-3"}, []string{"store-3"}), false},
			{"unknown host", "spec.pools[cp].hosts[nope-1]", clusterBody("kiosk", []string{"nope-1"}, nil), false},
			{"host of another project", "spec.pools[cp].hosts[edge-berlin-1]", clusterBody("kiosk", []string{"edge-berlin-1"}, nil), false},
			{"host not paired", "spec.pools[cp].hosts[store-7]", clusterBody("kiosk", []string{"store-7"}, nil), false},
			{"host in another cluster", "spec.pools[cp].hosts[store-1]", clusterBody("kiosk", []string{"store-1"}, nil), false},
			{"another architecture", "spec.pools[workers].hosts[store-6]", clusterBody("kiosk", []string{"store-3"}, []string{"store-6"}), false},
			{"workloads on workers", "spec.pools[workers].allowWorkloads", k(obj{"pools": []obj{{"name": "cp", "controlPlane": true, "hosts": []string{"store-3"}}, {"name": "workers", "allowWorkloads": true, "hosts": []string{"store-4"}}}}), false},
			{"strategy", "spec.pools[cp].updateStrategy", k(obj{"pools": []obj{{"name": "cp", "controlPlane": true, "hosts": []string{"store-3"}, "updateStrategy": "rolling"}}}), true},
			{"force delete after", "spec.forceDeleteAfter", k(obj{"forceDeleteAfter": "soon"}), false},
			{"override of no layer", "spec.overrides[0].layer", k(obj{"overrides": []obj{{"layer": "traefik", "values": "a: 1\n"}}}), false},
			{"override of no profile's layer", "spec.overrides[0].layer", k(obj{"overrides": []obj{{"profile": "other", "layer": "k3s", "values": "a: 1\n"}}}), false},
			{"override not YAML", "spec.overrides[0].values", k(obj{"overrides": []obj{{"layer": "k3s", "values": "a: [\n"}}}), false},
			{"missing variable", "spec.variables.siteCode", k(obj{"variables": nil}), false},
			{"malformed variable", "spec.variables.siteCode", k(obj{"variables": obj{"siteCode": "Berlin"}}), false},
		} {
			t.Run(bad.name, func(t *testing.T) {
				r := call{method: "POST", path: pp + "/clusters", token: editor, body: bad.body, offDoc: bad.offDoc}
				if strings.HasPrefix(bad.field, "spec.variables.") {
					// The profile's own path for the variable means nothing
					// in a Cluster: the field must be where the cluster
					// sets it.
					e := decode[v1.Error](t, c.expect(t, 422, r))
					if e.Field != bad.field {
						t.Errorf("BUG: a cluster's bad variable answers field %q, want %q (%s)", e.Field, bad.field, e.Message)
					}
					return
				}
				c.expectError(t, 422, v1.CodeInvalid, bad.field, r)
			})
		}
		if got := listNames(t, c.expect(t, 200, call{method: "GET", path: pp + "/clusters", token: viewer})); !slices.Equal(got, []string{"forged", "shop"}) {
			t.Errorf("clusters after refused creates: %v", got)
		}

		// Two clusters on one host, created back to back: the second must
		// be refused even before the first one's controller claimed it,
		// or it is stored only to fail when its own controller cannot.
		c.expect(t, 201, call{method: "POST", path: pp + "/clusters", token: editor, body: withSpec(clusterBody("pair-a", []string{"store-5"}, nil), obj{"forceDeleteAfter": "1s"})})
		if a := c.send(t, call{method: "POST", path: pp + "/clusters", token: editor, body: withSpec(clusterBody("pair-b", []string{"store-5"}, nil), obj{"forceDeleteAfter": "1s"})}); a.status != 422 {
			b := waitCluster(t, c, pp+"/clusters/pair-b", viewer, "pair-b", func(cl v1.Cluster) bool { return cl.Status.State == v1.ClusterFailed })
			t.Errorf("BUG: a second cluster on store-5, created right after the first, answered %d instead of 422 spec.pools[cp].hosts[store-5], and then failed: %s", a.status, b.Status.Reason)
			c.expect(t, 202, call{method: "DELETE", path: pp + "/clusters/pair-b", token: editor})
		} else if e := decode[v1.Error](t, a); e.Field != "spec.pools[cp].hosts[store-5]" {
			t.Errorf("second cluster on store-5: field %q (%s)", e.Field, e.Message)
		}
		c.expect(t, 202, call{method: "DELETE", path: pp + "/clusters/pair-a", token: editor})
		c.expectError(t, 404, v1.CodeNotFound, "", call{method: "GET", path: "/api/v1/projects/nowhere/clusters", token: admin})
	})

	var running v1.Cluster
	t.Run("provision", func(t *testing.T) {
		w := c.watch(t, pp+"/clusters?watch=1", viewer)
		seen := map[string]bool{}
		for len(seen) < 2 {
			ev := nextChange[v1.Cluster](t, w)
			if ev.Type != v1.WatchAdded {
				t.Fatalf("first events: %s %s", ev.Type, ev.Object.Metadata.Name)
			}
			seen[ev.Object.Metadata.Name] = true
		}

		// The init node first; the worker joins once its control plane is up.
		init := agents["store-1"].waitSpec(t, hub, "provision", func(s *v1.HostSpec) bool { return s.Cluster != nil })
		if hc := init.Cluster; hc.Role != v1.RoleInit || hc.Name != "shop" || hc.JoinToken == "" || hc.JoinEndpoint != "" || hc.Distro == nil || len(hc.Layers) != 3 {
			t.Fatalf("init node's spec: %+v", hc)
		}
		agents["store-1"].report(t, hub, applied(init, "10.20.0.11"))
		worker := agents["store-2"].waitSpec(t, hub, "provision", func(s *v1.HostSpec) bool { return s.Cluster != nil })
		if hc := worker.Cluster; hc.Role != v1.RoleWorker || hc.JoinEndpoint != "10.20.0.11" || hc.JoinToken != init.Cluster.JoinToken {
			t.Fatalf("worker's spec: %+v", hc)
		}
		agents["store-2"].report(t, hub, applied(worker, "10.20.0.12"))

		// The watch follows the controller to Running.
		for {
			ev := nextChange[v1.Cluster](t, w)
			if ev.Object.Metadata.Name == "shop" && ev.Object.Status.State == v1.ClusterRunning {
				break
			}
		}
		w.close(t)
		running = decode[v1.Cluster](t, c.expect(t, 200, call{method: "GET", path: shopPath, token: viewer}))
		st := running.Status
		if st.Health != v1.HealthHealthy || st.Endpoint != "10.20.0.11" || st.SpecHash == "" || len(st.Layers) != 5 || st.Reason != "" {
			t.Errorf("running cluster status = %+v", st)
		}
		if got := nodeStates(running); !maps.Equal(got, map[string]string{"store-1": v1.NodeReady, "store-2": v1.NodeReady}) {
			t.Errorf("nodes = %v", got)
		}
		for _, n := range st.Nodes {
			if n.StepsDone != 3 || n.Steps != 3 || n.AppliedHash == "" || n.KubernetesVersion == "" || n.Pool == "" || n.Role == "" {
				t.Errorf("node %+v", n)
			}
		}
		for _, l := range st.Layers {
			if l.Profile != "store-edge" || l.Hash == "" || (l.Pack != "" && l.Version == "") {
				t.Errorf("layer %+v", l)
			}
		}
		c.expectError(t, 404, v1.CodeNotFound, "", call{method: "GET", path: pp + "/clusters/nothing", token: viewer})
		if got := listNames(t, c.expect(t, 200, call{method: "GET", path: pp + "/clusters", token: viewer})); !slices.Equal(got, []string{"forged", "pair-a", "pair-b", "shop"}) && !slices.Equal(got, []string{"forged", "pair-a", "shop"}) {
			t.Errorf("clusters = %v", got)
		}
	})

	t.Run("diff", func(t *testing.T) {
		diff := func(token string, body any) v1.ClusterDiff {
			t.Helper()
			return decode[v1.ClusterDiff](t, c.expect(t, 200, call{method: "POST", path: shopPath + "/diff", token: token, body: body}))
		}
		actions := func(d v1.ClusterDiff) map[string][]string {
			out := map[string][]string{}
			for _, h := range d.Hosts {
				out[h.Host] = h.Actions
			}
			return out
		}
		// Without a body: what the hosts were told is what they run.
		if d := diff(viewer, nil); d.Cluster != "shop" || !reflect.DeepEqual(actions(d), map[string][]string{"store-1": {}, "store-2": {}}) {
			t.Errorf("diff of the current spec = %+v", d)
		}
		marshal := func(v any) any {
			var o any
			b, _ := json.Marshal(v)
			json.Unmarshal(b, &o)
			return o
		}
		spec := func(set obj) obj {
			return obj{"spec": withSpec(obj{"spec": obj(marshal(running.Spec).(map[string]any))}, set)["spec"]}
		}
		// The whole object as read, unchanged: nothing to do either.
		if d := diff(viewer, running); !reflect.DeepEqual(actions(d), map[string][]string{"store-1": {}, "store-2": {}}) {
			t.Errorf("diff of the cluster as read = %+v", d)
		}
		// A variable only the metrics-server layer's manifest uses: that
		// layer alone is reapplied, on every node.
		reconf := diff(viewer, spec(obj{"variables": obj{"siteCode": "de-018"}}))
		want := []string{"reapply layer metrics-server (values or manifests changed)"}
		if got := actions(reconf); !slices.Equal(got["store-1"], want) || !slices.Equal(got["store-2"], want) {
			t.Errorf("diff of a variable change = %+v", reconf)
		}
		// The trains' newest versions, when no train moved since the
		// cluster was made (the built-in catalog does not change): nothing.
		latest := diff(viewer, spec(obj{"resolveGeneration": running.Spec.ResolveGeneration + 1}))
		if got := actions(latest); !reflect.DeepEqual(got, map[string][]string{"store-1": {}, "store-2": {}}) {
			t.Errorf("BUG: raising spec.resolveGeneration with no train moved would make every host act: %v", got)
		}
		// An override of the CNI's values: the calico layer alone.
		ov := diff(editor, spec(obj{"overrides": []obj{{"layer": "calico", "values": "installation:\n  calicoNetwork:\n    mtu: 1400\n"}}}))
		if got := actions(ov); !slices.Equal(got["store-1"], []string{"reapply layer calico (values or manifests changed)"}) || len(got) != 2 {
			t.Errorf("diff of an override = %+v", ov)
		}
		// Scale: a new worker installs everything, the others do nothing.
		pools := marshal(running.Spec.Pools).([]any)
		workers := pools[1].(map[string]any)
		workers["hosts"] = []string{"store-2", "store-3"}
		up := actions(diff(viewer, spec(obj{"pools": pools})))
		if len(up["store-1"]) != 0 || len(up["store-2"]) != 0 || len(up["store-3"]) != 5 ||
			!strings.HasPrefix(up["store-3"][0], "apply os layer ubuntu ") || !strings.HasSuffix(up["store-3"][1], " as worker") {
			t.Errorf("diff of a scale-up = %v", up)
		}
		workers["hosts"] = []string{"store-3"}
		swap := actions(diff(viewer, spec(obj{"pools": pools})))
		if len(swap["store-2"]) != 1 || !strings.HasPrefix(swap["store-2"][0], "leave the cluster") || len(swap["store-3"]) != 5 || len(swap["store-1"]) != 0 {
			t.Errorf("diff of a host swap = %v", swap)
		}
		// The proposal is validated like an update.
		c.expectError(t, 422, v1.CodeInvalid, "spec.pools", call{method: "POST", path: shopPath + "/diff", token: viewer,
			body: spec(obj{"pools": []obj{{"name": "cp", "controlPlane": true, "hosts": []string{"store-3"}}}})})
		c.expectError(t, 422, v1.CodeInvalid, "spec.pools[workers].hosts[store-6]", call{method: "POST", path: shopPath + "/diff", token: viewer,
			body: spec(obj{"pools": []obj{{"name": "cp", "controlPlane": true, "hosts": []string{"store-1"}}, {"name": "workers", "hosts": []string{"store-2", "store-6"}}}})})
		c.expectError(t, 400, v1.CodeBadRequest, "", call{method: "POST", path: shopPath + "/diff", token: viewer, offDoc: true, body: obj{"spec": obj{}, "extra": 1}})
		c.expectError(t, 404, v1.CodeNotFound, "", call{method: "POST", path: pp + "/clusters/nothing/diff", token: viewer})
		// Nothing changed.
		if got := decode[v1.Cluster](t, c.expect(t, 200, call{method: "GET", path: shopPath, token: viewer})); got.Metadata.Revision != running.Metadata.Revision {
			t.Errorf("diff changed the cluster: revision %d → %d", running.Metadata.Revision, got.Metadata.Revision)
		}
	})

	t.Run("update", func(t *testing.T) {
		body := clusterBody("shop", []string{"store-1"}, []string{"store-2", "store-3"})
		body["metadata"] = obj{"revision": created.Metadata.Revision, "labels": obj{"site": "berlin", "tier": "gold"}}
		c.expectError(t, 409, v1.CodeConflict, "", call{method: "PUT", path: shopPath, token: editor, body: body})
		body["metadata"].(obj)["revision"] = running.Metadata.Revision
		c.expectError(t, 403, v1.CodeForbidden, "", call{method: "PUT", path: shopPath, token: viewer, body: body})
		c.expectError(t, 404, v1.CodeNotFound, "", call{method: "PUT", path: pp + "/clusters/nothing", token: editor, body: body})
		noRev := clusterBody("shop", []string{"store-1"}, []string{"store-2"})
		noRev["metadata"] = obj{}
		c.expectError(t, 422, v1.CodeInvalid, "metadata.revision", call{method: "PUT", path: shopPath, token: editor, offDoc: true, body: noRev})
		withoutInit := clusterBody("shop", []string{"store-3"}, []string{"store-2"})
		withoutInit["metadata"] = obj{"revision": running.Metadata.Revision}
		c.expectError(t, 422, v1.CodeInvalid, "spec.pools", call{method: "PUT", path: shopPath, token: editor, body: withoutInit})

		up := decode[v1.Cluster](t, c.expect(t, 200, call{method: "PUT", path: shopPath, token: editor, body: body}))
		if up.Metadata.Revision <= running.Metadata.Revision || up.Metadata.Labels["tier"] != "gold" || !slices.Equal(up.Spec.Pools[1].Hosts, []string{"store-2", "store-3"}) {
			t.Errorf("updated cluster = %+v", up)
		}
		// Labels are checked on update as on create: no cluster may hold
		// labels that a create would refuse.
		badLabels := clusterBody("shop", []string{"store-1"}, []string{"store-2", "store-3"})
		a := answer{status: http.StatusConflict}
		// The controller writes the cluster as it rolls the scale-up out:
		// read the revision again until a write is not overtaken.
		for i := 0; i < 20 && a.status == http.StatusConflict; i++ {
			rev := decode[v1.Cluster](t, c.expect(t, 200, call{method: "GET", path: shopPath, token: editor})).Metadata.Revision
			badLabels["metadata"] = obj{"revision": rev, "labels": obj{"bad key!": "x"}}
			a = c.send(t, call{method: "PUT", path: shopPath, token: editor, body: badLabels})
		}
		if a.status != 422 {
			t.Errorf("BUG: PUT %s with label key %q answered %d, want 422 metadata.labels.bad key!; stored labels: %v",
				shopPath, "bad key!", a.status, decode[v1.Cluster](t, a).Metadata.Labels)
		} else if e := decode[v1.Error](t, a); e.Field != "metadata.labels.bad key!" {
			t.Errorf("bad label: field %q", e.Field)
		}
		// The controller claims the new worker and rolls the change out.
		upd := waitCluster(t, c, shopPath, viewer, "scale-up", func(cl v1.Cluster) bool { return nodeStates(cl)["store-3"] != "" })
		if upd.Status.State != v1.ClusterUpdating {
			t.Errorf("after a scale-up the cluster is %s, want %s", upd.Status.State, v1.ClusterUpdating)
		}
		if got := eventReasons(t, c, pp, "Cluster/shop", viewer); !slices.Contains(got, "SpecChanged") {
			t.Errorf("events of shop: %v", got)
		}
	})

	t.Run("abort", func(t *testing.T) {
		kiosk := withSpec(clusterBody("kiosk", []string{"store-4"}, nil), obj{"forceDeleteAfter": "1s"})
		c.expect(t, 201, call{method: "POST", path: pp + "/clusters", token: editor, body: kiosk})
		waitCluster(t, c, pp+"/clusters/kiosk", viewer, "kiosk provisions", func(cl v1.Cluster) bool { return cl.Status.State == v1.ClusterProvisioning })
		c.expectError(t, 403, v1.CodeForbidden, "", call{method: "POST", path: pp + "/clusters/kiosk/abort", token: viewer})
		c.expectError(t, 409, v1.CodeConflict, "", call{method: "POST", path: shopPath + "/abort", token: editor})
		c.expectError(t, 404, v1.CodeNotFound, "", call{method: "POST", path: pp + "/clusters/nothing/abort", token: editor})
		ab := decode[v1.Cluster](t, c.expect(t, 202, call{method: "POST", path: pp + "/clusters/kiosk/abort", token: editor}))
		if ab.Status.State != v1.ClusterDeleting || ab.Status.DeletingSince == nil || !strings.Contains(ab.Status.Reason, "stores-editor") {
			t.Errorf("aborted cluster status = %+v", ab.Status)
		}
		c.expectError(t, 409, v1.CodeConflict, "", call{method: "POST", path: pp + "/clusters/kiosk/abort", token: editor})
		again := withSpec(kiosk, obj{"forceDeleteAfter": "2s"})
		again["metadata"] = obj{"revision": ab.Metadata.Revision}
		c.expectError(t, 409, v1.CodeConflict, "", call{method: "PUT", path: pp + "/clusters/kiosk", token: editor, body: again})

		// store-4 never confirms its teardown: forceDeleteAfter releases it.
		waitCluster(t, c, pp+"/clusters/kiosk", viewer, "kiosk torn down", func(cl v1.Cluster) bool { return cl.Status.State == v1.ClusterDeleted })
		if s := hostState(t, c, pp, "store-4", viewer); s != v1.HostReady {
			t.Errorf("store-4 is %s after the teardown", s)
		}
		if got := eventReasons(t, c, pp, "Cluster/kiosk", viewer); !slices.Contains(got, "Aborted") || !slices.Contains(got, "ForceReleased") || !slices.Contains(got, "Deleted") {
			t.Errorf("events of kiosk: %v", got)
		}
		// A Deleted cluster cannot be aborted; deleting it removes it.
		c.expectError(t, 409, v1.CodeConflict, "", call{method: "POST", path: pp + "/clusters/kiosk/abort", token: editor})
		gone := decode[v1.Cluster](t, c.expect(t, 202, call{method: "DELETE", path: pp + "/clusters/kiosk", token: editor}))
		if gone.Metadata.Name != "kiosk" || gone.Status.State != v1.ClusterDeleted {
			t.Errorf("removed cluster = %+v", gone)
		}
		c.expectError(t, 404, v1.CodeNotFound, "", call{method: "GET", path: pp + "/clusters/kiosk", token: viewer})
		c.expectError(t, 404, v1.CodeNotFound, "", call{method: "DELETE", path: pp + "/clusters/kiosk", token: editor})
	})

	t.Run("delete", func(t *testing.T) {
		c.expectError(t, 403, v1.CodeForbidden, "", call{method: "DELETE", path: shopPath, token: viewer})
		del := decode[v1.Cluster](t, c.expect(t, 202, call{method: "DELETE", path: shopPath, token: editor}))
		if del.Status.State != v1.ClusterDeleting || del.Status.DeletingSince == nil {
			t.Errorf("deleted cluster status = %+v", del.Status)
		}
		if del.Status.Reason != "deleted by stores-editor" {
			t.Errorf("BUG: a deleted cluster's status.reason is %q, want %q", del.Status.Reason, "deleted by stores-editor")
		}
		// Deleting a cluster that is being deleted changes nothing.
		if again := decode[v1.Cluster](t, c.expect(t, 202, call{method: "DELETE", path: shopPath, token: editor})); again.Status.State != v1.ClusterDeleting {
			t.Errorf("second delete: %+v", again.Status)
		}
		body := clusterBody("shop", []string{"store-1"}, []string{"store-2"})
		body["metadata"] = obj{"revision": del.Metadata.Revision}
		c.expectError(t, 409, v1.CodeConflict, "", call{method: "PUT", path: shopPath, token: editor, body: body})

		// Every member confirms its teardown.
		for _, id := range []string{"store-1", "store-2", "store-3"} {
			spec := agents[id].waitSpec(t, hub, "delete", func(s *v1.HostSpec) bool { return s.Cluster != nil && s.Cluster.Remove })
			agents[id].report(t, hub, v1.NodeReportSpec{SpecHash: spec.Hash, State: v1.NodeRemoved, Removed: true})
		}
		waitCluster(t, c, shopPath, viewer, "shop torn down", func(cl v1.Cluster) bool { return cl.Status.State == v1.ClusterDeleted })
		for _, id := range []string{"store-1", "store-2", "store-3"} {
			if s := hostState(t, c, pp, id, viewer); s != v1.HostReady {
				t.Errorf("%s is %s after the teardown", id, s)
			}
		}
		reasons := eventReasons(t, c, pp, "Cluster/shop", viewer)
		for _, want := range []string{"Created", "Provisioning", v1.ClusterRunning, "SpecChanged", "Deleting", "NodeRemoved", "Deleted"} {
			if !slices.Contains(reasons, want) {
				t.Errorf("events of shop lack %s: %v", want, reasons)
			}
		}
		if got := eventReasons(t, c, pp, "EdgeHost/store-1", viewer); !slices.Contains(got, "InUse") || !slices.Contains(got, "Released") {
			t.Errorf("events of store-1: %v", got)
		}
		c.expect(t, 202, call{method: "DELETE", path: shopPath, token: editor})
		c.expectError(t, 404, v1.CodeNotFound, "", call{method: "GET", path: shopPath, token: viewer})
	})
}
