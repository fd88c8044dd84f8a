package cli

import (
	"bytes"
	"strings"
	"testing"
	"time"

	v1 "github.com/outpost-edge/outpost/api/v1"
)

var testNow = time.Date(2030, 1, 2, 12, 0, 0, 0, time.UTC)

func testHosts() *v1.List[v1.EdgeHost] {
	seen := testNow.Add(-12 * time.Second)
	return &v1.List[v1.EdgeHost]{
		Revision: 42,
		Items: []v1.EdgeHost{
			{
				TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindEdgeHost},
				Metadata: v1.ObjectMeta{
					Name:     "edge-1",
					Project:  "default",
					Labels:   map[string]string{"site": "berlin", "name": "Berlin 1"},
					Revision: 40,
				},
				Spec: v1.EdgeHostSpec{DisplayName: "Berlin 1"},
				Status: v1.EdgeHostStatus{
					State:        v1.HostReady,
					Health:       v1.HealthHealthy,
					AgentVersion: "v0.3.0",
					LastSeen:     &seen,
					Inventory: &v1.Inventory{
						Arch:      "arm64",
						OS:        v1.OSInfo{Name: "Ubuntu", Version: "24.04"},
						CPU:       v1.CPU{Cores: 4},
						MemoryMiB: 8192,
					},
				},
			},
			{
				TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindEdgeHost},
				Metadata: v1.ObjectMeta{Name: "edge-22", Project: "default", Revision: 41},
				Status:   v1.EdgeHostStatus{State: v1.HostUnpaired, Health: v1.HealthUnknown},
			},
		},
	}
}

func render(t *testing.T, format string, obj any, tbl func(time.Time) *table) string {
	t.Helper()
	var buf bytes.Buffer
	p := &printer{out: &buf, format: format, now: testNow}
	if err := p.print(obj, tbl); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

func TestHostOutput(t *testing.T) {
	list := testHosts()
	tbl := func(now time.Time) *table { return hostTable(list.Items, now) }
	tests := []struct {
		format, want string
	}{
		{outputTable, "" +
			"ID        NAME       STATE      HEALTH    ARCH    OS             AGENT    LAST SEEN   LABELS\n" +
			"edge-1    Berlin 1   Ready      Healthy   arm64   Ubuntu 24.04   v0.3.0   12s ago     name=Berlin 1,site=berlin\n" +
			"edge-22   -          Unpaired   Unknown   -       -              -        never       -\n"},
		{outputJSON, `{
  "items": [
    {
      "apiVersion": "outpost.dev/v1",
      "kind": "EdgeHost",
      "metadata": {
        "name": "edge-1",
        "project": "default",
        "labels": {
          "name": "Berlin 1",
          "site": "berlin"
        },
        "revision": 40
      },
      "spec": {
        "displayName": "Berlin 1"
      },
      "status": {
        "state": "Ready",
        "health": "Healthy",
        "agentVersion": "v0.3.0",
        "lastSeen": "2030-01-02T11:59:48Z",
        "inventory": {
          "arch": "arm64",
          "os": {
            "name": "Ubuntu",
            "version": "24.04"
          },
          "cpu": {
            "cores": 4
          },
          "memoryMiB": 8192
        }
      }
    },
    {
      "apiVersion": "outpost.dev/v1",
      "kind": "EdgeHost",
      "metadata": {
        "name": "edge-22",
        "project": "default",
        "revision": 41
      },
      "spec": {},
      "status": {
        "state": "Unpaired",
        "health": "Unknown"
      }
    }
  ],
  "revision": 42
}
`},
		{outputYAML, `items:
- apiVersion: outpost.dev/v1
  kind: EdgeHost
  metadata:
    labels:
      name: Berlin 1
      site: berlin
    name: edge-1
    project: default
    revision: 40
  spec:
    displayName: Berlin 1
  status:
    agentVersion: v0.3.0
    health: Healthy
    inventory:
      arch: arm64
      cpu:
        cores: 4
      memoryMiB: 8192
      os:
        name: Ubuntu
        version: "24.04"
    lastSeen: "2030-01-02T11:59:48Z"
    state: Ready
- apiVersion: outpost.dev/v1
  kind: EdgeHost
  metadata:
    name: edge-22
    project: default
    revision: 41
  spec: {}
  status:
    health: Unknown
    state: Unpaired
revision: 42
`},
	}
	for _, tt := range tests {
		t.Run(tt.format, func(t *testing.T) {
			if got := render(t, tt.format, list, tbl); got != tt.want {
				t.Errorf("got:\n%s\nwant:\n%s", got, tt.want)
			}
		})
	}
}

func TestPrintStream(t *testing.T) {
	ev := v1.WatchEvent[v1.EdgeHost]{Type: v1.WatchDeleted, Revision: 43, Object: v1.EdgeHost{Metadata: v1.ObjectMeta{Name: "edge-22"}}}
	var buf bytes.Buffer
	p := &printer{out: &buf, format: outputJSON}
	p.printStream(ev)
	p.printStream(ev)
	line := `{"type":"Deleted","revision":43,"object":{"apiVersion":"","kind":"","metadata":{"name":"edge-22"},"spec":{},"status":{"state":"","health":""}}}` + "\n"
	if got := buf.String(); got != line+line {
		t.Errorf("json stream:\n%s", got)
	}
	buf.Reset()
	p.format = outputYAML
	p.printStream(map[string]int{"a": 1})
	p.printStream(map[string]int{"b": 2})
	if got, want := buf.String(), "---\na: 1\n---\nb: 2\n"; got != want {
		t.Errorf("yaml stream = %q, want %q", got, want)
	}
	p.format = outputTable
	if err := p.printStream(ev); err == nil {
		t.Error("table cannot stream: no error")
	}
}

func TestWatchRowsAlignWithTable(t *testing.T) {
	list := testHosts()
	var buf bytes.Buffer
	tbl := hostWatchTable(list.Items[:1], testNow)
	if err := tbl.write(&buf); err != nil {
		t.Fatal(err)
	}
	rw := &rowWriter{w: &buf, widths: tbl.widths()}
	h := list.Items[0]
	h.Status.State, h.Status.Health = v1.HostPendingApproval, v1.HealthUnhealthy
	rw.write(append([]string{v1.WatchModified}, hostRow(&h, testNow)...)...)
	rw.write(append([]string{v1.WatchDeleted}, hostRow(&h, testNow)...)...)
	// A wider ID than the table had shifts that row only from its ID on,
	// and widens the column for the rows after it.
	long := list.Items[1]
	long.Metadata.Name = "berlin-rack4-edge-01"
	rw.write(append([]string{v1.WatchAdded}, hostRow(&long, testNow)...)...)
	rw.write(append([]string{v1.WatchAdded}, hostRow(&list.Items[1], testNow)...)...)
	want := "" +
		"EVENT      ID             NAME           STATE             HEALTH      ARCH    OS             AGENT      LAST SEEN   LABELS\n" +
		"Added      edge-1         Berlin 1       Ready             Healthy     arm64   Ubuntu 24.04   v0.3.0     12s ago     name=Berlin 1,site=berlin\n" +
		"Modified   edge-1         Berlin 1       PendingApproval   Unhealthy   arm64   Ubuntu 24.04   v0.3.0     12s ago     name=Berlin 1,site=berlin\n" +
		"Deleted    edge-1         Berlin 1       PendingApproval   Unhealthy   arm64   Ubuntu 24.04   v0.3.0     12s ago     name=Berlin 1,site=berlin\n" +
		"Added      berlin-rack4-edge-01   -              Unpaired          Unknown     -       -              -          never       -\n" +
		"Added      edge-22                -              Unpaired          Unknown     -       -              -          never       -\n"
	if got := buf.String(); got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}

func TestTableCellsStayOnOneLine(t *testing.T) {
	ev := v1.Event{Object: "EdgeHost/edge-1", Type: "Warning", Reason: "Offline", Message: "no heartbeat\nfor 5m\tnow", Time: testNow.Add(-3 * time.Hour)}
	got := render(t, outputTable, nil, func(now time.Time) *table { return eventTable([]v1.Event{ev}, now) })
	want := "" +
		"AGE   TYPE      REASON    OBJECT            MESSAGE\n" +
		"3h    Warning   Offline   EdgeHost/edge-1   no heartbeat for 5m now\n"
	if got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}

func TestOtherTables(t *testing.T) {
	exp := testNow.Add(23 * time.Hour)
	past := testNow.Add(-time.Hour)
	created := testNow.Add(-5 * time.Minute)
	tokens := []v1.RegistrationToken{
		{Metadata: v1.ObjectMeta{Name: "site-a", CreatedAt: created}, Spec: v1.RegistrationTokenSpec{MaxUses: 10, ExpiresAt: &exp, Labels: map[string]string{"site": "a"}}, Status: v1.RegistrationTokenStatus{Uses: 3, State: v1.TokenActive}},
		{Metadata: v1.ObjectMeta{Name: "old"}, Spec: v1.RegistrationTokenSpec{ExpiresAt: &past, Revoked: true}, Status: v1.RegistrationTokenStatus{Uses: 7}},
	}
	got := render(t, outputTable, nil, func(now time.Time) *table { return registrationTokenTable(tokens, now) })
	want := "" +
		"NAME     STATE     USES   EXPIRES   LABELS   AGE\n" +
		"site-a   Active    3/10   in 23h    site=a   5m\n" +
		"old      Revoked   7      expired   -        -\n"
	if got != want {
		t.Errorf("registration tokens:\n%s\nwant:\n%s", got, want)
	}

	apiTokens := []v1.APIToken{{Metadata: v1.ObjectMeta{Name: "ci", CreatedAt: testNow.Add(-72 * time.Hour)}, Spec: v1.APITokenSpec{Roles: []v1.ProjectRole{{Project: "default", Role: "editor"}, {Project: "*", Role: "viewer"}}}, Status: v1.APITokenStatus{ID: "op_7f3a"}}}
	got = render(t, outputTable, nil, func(now time.Time) *table { return apiTokenTable(apiTokens, now) })
	want = "" +
		"NAME   ID        ROLES                     EXPIRES   AGE\n" +
		"ci     op_7f3a   default=editor,*=viewer   never     3d\n"
	if got != want {
		t.Errorf("api tokens:\n%s\nwant:\n%s", got, want)
	}

	projects := []v1.Project{{Metadata: v1.ObjectMeta{Name: "default"}, Spec: v1.ProjectSpec{Description: "the first one"}}}
	got = render(t, outputTable, nil, func(now time.Time) *table { return projectTable(projects, now) })
	want = "" +
		"NAME      DESCRIPTION     AGE\n" +
		"default   the first one   -\n"
	if got != want {
		t.Errorf("projects:\n%s\nwant:\n%s", got, want)
	}
}

func TestHuman(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{0, "0s"},
		{59 * time.Second, "59s"},
		{time.Minute, "1m"},
		{59*time.Minute + 59*time.Second, "59m"},
		{time.Hour, "1h"},
		{47 * time.Hour, "47h"},
		{48 * time.Hour, "2d"},
		{400 * 24 * time.Hour, "400d"},
		{3 * 365 * 24 * time.Hour, "3y"},
	}
	for _, tt := range tests {
		if got := human(tt.d); got != tt.want {
			t.Errorf("human(%v) = %q, want %q", tt.d, got, tt.want)
		}
	}
	future := testNow.Add(time.Minute)
	if got := ago(&future, testNow); got != "0s ago" {
		t.Errorf("ago of a time in the future (clock skew) = %q, want 0s ago", got)
	}
}

func TestCheckOutput(t *testing.T) {
	for _, f := range []string{"table", "json", "yaml"} {
		if err := checkOutput(f); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
	if err := checkOutput("xml"); err == nil || !strings.Contains(err.Error(), `"xml"`) {
		t.Errorf("xml: err = %v", err)
	}
}
