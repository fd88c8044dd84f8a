// Package errs is the one set of sentinel errors the hub, agent and CLI share,
// and the one place where they map to HTTP statuses and API error codes (and
// back, for clients).
package errs

import (
	"errors"
	"fmt"
	"net/http"

	v1 "github.com/outpost-edge/outpost/api/v1"
)

var (
	ErrNotFound        = errors.New("not found")
	ErrAlreadyExists   = errors.New("already exists")
	ErrConflict        = errors.New("conflict")
	ErrInvalid         = errors.New("invalid")
	ErrBadRequest      = errors.New("bad request")
	ErrUnauthenticated = errors.New("unauthenticated")
	ErrForbidden       = errors.New("forbidden")
	ErrGone            = errors.New("gone")
	ErrTooLarge        = errors.New("request body too large")
	ErrTokenInvalid    = errors.New("registration token is not valid")
	ErrTokenExpired    = errors.New("registration token has expired")
	ErrTokenRevoked    = errors.New("registration token was revoked")
	ErrTokenUsedUp     = errors.New("registration token has no uses left")
	ErrUnavailable     = errors.New("unavailable")
)

// FieldError is a validation error that names the bad field by its path
// (`spec.maxUses`, `network.interfaces.eth0.gateway`).
type FieldError struct {
	Field   string
	Message string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Message }

// Unwrap makes every FieldError an ErrInvalid.
func (e *FieldError) Unwrap() error { return ErrInvalid }

// Field returns a FieldError for field.
func Field(field, format string, args ...any) error {
	return &FieldError{Field: field, Message: fmt.Sprintf(format, args...)}
}

// FieldList collects several field errors; it is an ErrInvalid too.
type FieldList []*FieldError

func (l FieldList) Error() string {
	s := ""
	for i, e := range l {
		if i > 0 {
			s += "; "
		}
		s += e.Error()
	}
	return s
}

func (l FieldList) Unwrap() []error {
	out := make([]error, 0, len(l)+1)
	for _, e := range l {
		out = append(out, e)
	}
	return append(out, ErrInvalid)
}

// Add appends a field error.
func (l *FieldList) Add(field, format string, args ...any) {
	*l = append(*l, &FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
}

// Err returns nil for an empty list.
func (l FieldList) Err() error {
	if len(l) == 0 {
		return nil
	}
	return l
}

var table = []struct {
	err    error
	status int
	code   string
}{
	{ErrNotFound, http.StatusNotFound, v1.CodeNotFound},
	{ErrAlreadyExists, http.StatusConflict, v1.CodeAlreadyExists},
	{ErrConflict, http.StatusConflict, v1.CodeConflict},
	{ErrInvalid, http.StatusUnprocessableEntity, v1.CodeInvalid},
	{ErrBadRequest, http.StatusBadRequest, v1.CodeBadRequest},
	{ErrUnauthenticated, http.StatusUnauthorized, v1.CodeUnauthenticated},
	{ErrForbidden, http.StatusForbidden, v1.CodeForbidden},
	{ErrGone, http.StatusGone, v1.CodeGone},
	{ErrTooLarge, http.StatusRequestEntityTooLarge, v1.CodeTooLarge},
	{ErrTokenInvalid, http.StatusUnauthorized, v1.CodeTokenInvalid},
	{ErrTokenExpired, http.StatusUnauthorized, v1.CodeTokenExpired},
	{ErrTokenRevoked, http.StatusUnauthorized, v1.CodeTokenRevoked},
	{ErrTokenUsedUp, http.StatusUnauthorized, v1.CodeTokenUsedUp},
	{ErrUnavailable, http.StatusServiceUnavailable, v1.CodeUnavailable},
}

// ToAPI maps err to its HTTP status and API error body. Errors that match no
// sentinel are internal: their text is not shown to the caller.
func ToAPI(err error) (int, v1.Error) {
	var fe *FieldError
	if errors.As(err, &fe) {
		return http.StatusUnprocessableEntity, v1.Error{Code: v1.CodeInvalid, Message: err.Error(), Field: fe.Field}
	}
	for _, t := range table {
		if errors.Is(err, t.err) {
			return t.status, v1.Error{Code: t.code, Message: err.Error()}
		}
	}
	return http.StatusInternalServerError, v1.Error{Code: v1.CodeInternal, Message: "internal error"}
}

// APIError is an error response received by a client. It unwraps to the
// sentinel its code names, so callers can use errors.Is.
type APIError struct {
	Status int
	Body   v1.Error
}

func (e *APIError) Error() string {
	msg := e.Body.Message
	if msg == "" {
		msg = http.StatusText(e.Status)
	}
	return msg
}

func (e *APIError) Unwrap() error {
	for _, t := range table {
		if t.code == e.Body.Code {
			return t.err
		}
	}
	return nil
}

// FromAPI turns an error response back into an error.
func FromAPI(status int, body v1.Error) error {
	return &APIError{Status: status, Body: body}
}
