package client

import (
	"bufio"
	"bytes"
	"io"
	"strings"
)

// sseEvent is one dispatched server-sent event.
type sseEvent struct {
	Name string // "message" when the stream gave none
	ID   string
	Data []byte
}

// sseReader parses a text/event-stream as the HTML standard describes it,
// keeping only what a client of the hub needs: event names, ids and data.
// bufio.Reader rather than Scanner because an event's data line holds a
// whole object and has no sensible length limit.
type sseReader struct {
	r *bufio.Reader
}

func newSSEReader(r io.Reader) *sseReader {
	return &sseReader{r: bufio.NewReaderSize(r, 64<<10)}
}

// next returns the next event. At the end of the stream it returns io.EOF;
// an event not terminated by a blank line is dropped, as the standard says,
// because a cut connection may have truncated its data.
func (s *sseReader) next() (sseEvent, error) {
	var (
		ev      sseEvent
		data    bytes.Buffer
		hasData bool
	)
	for {
		line, err := s.r.ReadString('\n')
		if err != nil {
			if err == io.EOF {
				return sseEvent{}, io.EOF
			}
			return sseEvent{}, err
		}
		line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
		if line == "" {
			if !hasData {
				// A blank line after only comments, an event name or an id
				// dispatches nothing; start over.
				ev = sseEvent{}
				continue
			}
			if ev.Name == "" {
				ev.Name = "message"
			}
			ev.Data = data.Bytes()
			return ev, nil
		}
		if line[0] == ':' {
			continue // comment: keep-alive
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "event":
			ev.Name = value
		case "data":
			if hasData {
				data.WriteByte('\n')
			}
			data.WriteString(value)
			hasData = true
		case "id":
			if !strings.ContainsRune(value, 0) {
				ev.ID = value
			}
		}
		// "retry" and unknown fields are ignored: reconnecting is the
		// caller's decision, made with revisions rather than event ids.
	}
}
