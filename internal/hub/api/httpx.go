package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/outpost-edge/outpost/internal/errs"
)

// MaxBodyBytes limits every request body.
const MaxBodyBytes = 1 << 20

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

func writeError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	status, body := errs.ToAPI(err)
	if status >= 500 {
		log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	writeJSON(w, status, body)
}

// decode reads a JSON body of at most MaxBodyBytes, refusing unknown fields
// so a misspelt field is an error, not silently ignored.
func decode(w http.ResponseWriter, r *http.Request, v any) error {
	r.Body = http.MaxBytesReader(w, r.Body, MaxBodyBytes)
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return fmt.Errorf("body over %d bytes: %w", MaxBodyBytes, errs.ErrTooLarge)
		}
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) && typeErr.Field != "" {
			return errs.Field(typeErr.Field, "must be %s", typeErr.Type)
		}
		return fmt.Errorf("decode request body: %v: %w", err, errs.ErrBadRequest)
	}
	if dec.More() {
		return fmt.Errorf("decode request body: more than one JSON value: %w", errs.ErrBadRequest)
	}
	return nil
}

func queryInt(r *http.Request, name string, def int64) (int64, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, errs.Field(name, "%q is not a non-negative whole number", v)
	}
	return n, nil
}

// watching reports whether a list request asks for a watch stream
// (?watch=1 or ?watch=true; 0, false or absent mean a plain list).
func watching(r *http.Request) bool {
	b, err := strconv.ParseBool(r.URL.Query().Get("watch"))
	return err == nil && b
}
