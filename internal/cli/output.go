package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	v1 "github.com/outpost-edge/outpost/api/v1"
	"sigs.k8s.io/yaml"
)

// Output formats of -o.
const (
	outputTable = "table"
	outputJSON  = "json"
	outputYAML  = "yaml"
)

func checkOutput(format string) error {
	switch format {
	case outputTable, outputJSON, outputYAML:
		return nil
	}
	return fmt.Errorf("output format %q: want table, json or yaml", format)
}

// cellPadding separates table columns; the watch rows, which tabwriter
// cannot align with a table it already flushed, pad with the same.
const cellPadding = 3

// table is rows of cells under a header, rendered with text/tabwriter.
type table struct {
	header []string
	rows   [][]string
	// minWidths reserve room in columns whose later values (watch rows) are
	// known to be wider than the first ones, e.g. STATE "PendingApproval".
	minWidths []int
}

func (t *table) add(cells ...string) { t.rows = append(t.rows, cleanCells(cells)) }

// cleanCells keeps a cell on its line and in its column: an event message
// with a tab or newline would otherwise break the table apart.
func cleanCells(cells []string) []string {
	for i, c := range cells {
		cells[i] = cellReplacer.Replace(c)
	}
	return cells
}

var cellReplacer = strings.NewReplacer("\t", " ", "\n", " ", "\r", " ")

func (t *table) write(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 8, cellPadding, ' ', 0)
	// tabwriter has no per-column minimum: trailing spaces in the header
	// cells give one, except in the last column, which is never padded.
	header := slices.Clone(t.header)
	for i, m := range t.minWidths {
		if i < len(header)-1 {
			header[i] += strings.Repeat(" ", max(m-utf8.RuneCountInString(header[i]), 0))
		}
	}
	for _, r := range append([][]string{header}, t.rows...) {
		if _, err := io.WriteString(tw, strings.Join(r, "\t")+"\n"); err != nil {
			return err
		}
	}
	return tw.Flush()
}

// widths are the column widths tabwriter gave the table (without padding),
// for rows printed after it.
func (t *table) widths() []int {
	w := make([]int, len(t.header))
	copy(w, t.minWidths)
	for _, r := range append([][]string{t.header}, t.rows...) {
		for i, c := range r {
			if i < len(w) {
				w[i] = max(w[i], utf8.RuneCountInString(c))
			}
		}
	}
	return w
}

// rowWriter prints rows one at a time aligned like a table printed before
// them; a wider cell widens its column from then on.
type rowWriter struct {
	w      io.Writer
	widths []int
}

func (rw *rowWriter) write(cells ...string) error {
	cells = cleanCells(cells)
	var b strings.Builder
	for i, c := range cells {
		b.WriteString(c)
		if i == len(cells)-1 {
			break
		}
		n := utf8.RuneCountInString(c)
		if i < len(rw.widths) {
			rw.widths[i] = max(rw.widths[i], n)
			n = rw.widths[i] - n
		} else {
			n = 0
		}
		b.WriteString(strings.Repeat(" ", n+cellPadding))
	}
	b.WriteByte('\n')
	_, err := io.WriteString(rw.w, b.String())
	return err
}

// printer writes objects in the -o format.
type printer struct {
	out    io.Writer
	format string
	now    time.Time
}

// print writes obj as JSON or YAML, or as the table tbl builds.
func (p *printer) print(obj any, tbl func(now time.Time) *table) error {
	switch p.format {
	case outputJSON:
		b, err := json.MarshalIndent(obj, "", "  ")
		if err != nil {
			return fmt.Errorf("encode json: %w", err)
		}
		_, err = p.out.Write(append(b, '\n'))
		return err
	case outputYAML:
		b, err := yaml.Marshal(obj)
		if err != nil {
			return fmt.Errorf("encode yaml: %w", err)
		}
		_, err = p.out.Write(b)
		return err
	}
	return tbl(p.now).write(p.out)
}

// printStream writes one document of a stream (a watch): JSON as one line
// per document so readers can split on newlines, YAML with "---" between
// documents.
func (p *printer) printStream(obj any) error {
	switch p.format {
	case outputJSON:
		b, err := json.Marshal(obj)
		if err != nil {
			return fmt.Errorf("encode json: %w", err)
		}
		_, err = p.out.Write(append(b, '\n'))
		return err
	case outputYAML:
		b, err := yaml.Marshal(obj)
		if err != nil {
			return fmt.Errorf("encode yaml: %w", err)
		}
		_, err = p.out.Write(append([]byte("---\n"), b...))
		return err
	}
	return fmt.Errorf("output format %q cannot stream", p.format)
}

// --- cells ---

const none = "-"

func orNone(s string) string {
	if s == "" {
		return none
	}
	return s
}

// human is a duration the way kubectl's AGE column shows it.
func human(d time.Duration) string {
	switch {
	case d < time.Minute:
		return strconv.Itoa(int(d/time.Second)) + "s"
	case d < time.Hour:
		return strconv.Itoa(int(d/time.Minute)) + "m"
	case d < 48*time.Hour:
		return strconv.Itoa(int(d/time.Hour)) + "h"
	case d < 2*365*24*time.Hour:
		return strconv.Itoa(int(d/(24*time.Hour))) + "d"
	}
	return strconv.Itoa(int(d/(365*24*time.Hour))) + "y"
}

// age is how long ago t was; clock skew between hub and client must not
// show a negative age.
func age(t, now time.Time) string {
	if t.IsZero() {
		return none
	}
	return human(max(now.Sub(t), 0))
}

func ago(t *time.Time, now time.Time) string {
	if t == nil || t.IsZero() {
		return "never"
	}
	return age(*t, now) + " ago"
}

func expires(t *time.Time, now time.Time) string {
	if t == nil {
		return "never"
	}
	if !t.After(now) {
		return "expired"
	}
	return "in " + human(t.Sub(now))
}

func labelsCell(labels map[string]string) string {
	if len(labels) == 0 {
		return none
	}
	var b strings.Builder
	for i, k := range slices.Sorted(maps.Keys(labels)) {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(k + "=" + labels[k])
	}
	return b.String()
}

func rolesCell(roles []v1.ProjectRole) string {
	if len(roles) == 0 {
		return none
	}
	parts := make([]string, len(roles))
	for i, r := range roles {
		parts[i] = r.Project + "=" + r.Role
	}
	return strings.Join(parts, ",")
}

// --- tables ---

var hostHeader = []string{"ID", "NAME", "STATE", "HEALTH", "ARCH", "OS", "AGENT", "LAST SEEN", "LABELS"}

func hostRow(h *v1.EdgeHost, now time.Time) []string {
	arch, osName := none, none
	if inv := h.Status.Inventory; inv != nil {
		arch = orNone(inv.Arch)
		osName = orNone(strings.TrimSpace(inv.OS.Name + " " + inv.OS.Version))
	}
	name := h.Metadata.Labels[v1.LabelName]
	if name == "" {
		name = h.Spec.DisplayName
	}
	return []string{
		h.Metadata.Name,
		orNone(name),
		orNone(h.Status.State),
		orNone(h.Status.Health),
		arch,
		osName,
		orNone(h.Status.AgentVersion),
		ago(h.Status.LastSeen, now),
		labelsCell(h.Metadata.Labels),
	}
}

func hostTable(hosts []v1.EdgeHost, now time.Time) *table {
	t := &table{header: hostHeader}
	for i := range hosts {
		t.add(hostRow(&hosts[i], now)...)
	}
	return t
}

// hostWatchTable is the host table with the EVENT column that watch rows
// fill with Added, Modified or Deleted; the listed hosts count as Added.
func hostWatchTable(hosts []v1.EdgeHost, now time.Time) *table {
	t := &table{
		header: append([]string{"EVENT"}, hostHeader...),
		// The list may be short or empty while the watch rows to come are
		// not: reserve typical widths so they line up with the header.
		minWidths: []int{len(v1.WatchModified), 12, 12, len(v1.HostPendingApproval), len(v1.HealthUnhealthy), 5, 12, 8, 9},
	}
	for i := range hosts {
		t.add(append([]string{v1.WatchAdded}, hostRow(&hosts[i], now)...)...)
	}
	return t
}

func tokenUses(t *v1.RegistrationToken) string {
	if t.Spec.MaxUses > 0 {
		return fmt.Sprintf("%d/%d", t.Status.Uses, t.Spec.MaxUses)
	}
	return strconv.Itoa(t.Status.Uses)
}

func tokenState(t *v1.RegistrationToken) string {
	if t.Status.State == "" && t.Spec.Revoked {
		return v1.TokenRevoked
	}
	return orNone(t.Status.State)
}

func registrationTokenTable(tokens []v1.RegistrationToken, now time.Time) *table {
	t := &table{header: []string{"NAME", "STATE", "USES", "EXPIRES", "LABELS", "AGE"}}
	for i := range tokens {
		rt := &tokens[i]
		t.add(rt.Metadata.Name, tokenState(rt), tokenUses(rt), expires(rt.Spec.ExpiresAt, now),
			labelsCell(rt.Spec.Labels), age(rt.Metadata.CreatedAt, now))
	}
	return t
}

func apiTokenTable(tokens []v1.APIToken, now time.Time) *table {
	t := &table{header: []string{"NAME", "ID", "ROLES", "EXPIRES", "AGE"}}
	for i := range tokens {
		at := &tokens[i]
		t.add(at.Metadata.Name, orNone(at.Status.ID), rolesCell(at.Spec.Roles),
			expires(at.Spec.ExpiresAt, now), age(at.Metadata.CreatedAt, now))
	}
	return t
}

func projectTable(projects []v1.Project, now time.Time) *table {
	t := &table{header: []string{"NAME", "DESCRIPTION", "AGE"}}
	for i := range projects {
		p := &projects[i]
		t.add(p.Metadata.Name, orNone(p.Spec.Description), age(p.Metadata.CreatedAt, now))
	}
	return t
}

var eventHeader = []string{"AGE", "TYPE", "REASON", "OBJECT", "MESSAGE"}

func eventRow(e *v1.Event, now time.Time) []string {
	when := e.Time
	if when.IsZero() {
		when = e.Metadata.CreatedAt
	}
	return []string{age(when, now), orNone(e.Type), orNone(e.Reason), orNone(e.Object), e.Message}
}

func eventTable(events []v1.Event, now time.Time) *table {
	t := &table{header: eventHeader}
	for i := range events {
		t.add(eventRow(&events[i], now)...)
	}
	return t
}
