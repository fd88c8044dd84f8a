package errs

import (
	"errors"
	"fmt"
	"net/http"
	"testing"

	v1 "github.com/outpost-edge/outpost/api/v1"
)

func TestToAPI(t *testing.T) {
	tests := []struct {
		name   string
		err    error
		status int
		code   string
		field  string
	}{
		{"wrapped not found", fmt.Errorf("get host %q: %w", "h1", ErrNotFound), http.StatusNotFound, v1.CodeNotFound, ""},
		{"conflict", fmt.Errorf("update: %w", ErrConflict), http.StatusConflict, v1.CodeConflict, ""},
		{"field", fmt.Errorf("create token: %w", Field("spec.maxUses", "must not be negative")), http.StatusUnprocessableEntity, v1.CodeInvalid, "spec.maxUses"},
		{"field list names first", FieldList{{Field: "a", Message: "x"}, {Field: "b", Message: "y"}}, http.StatusUnprocessableEntity, v1.CodeInvalid, "a"},
		{"token used up", ErrTokenUsedUp, http.StatusUnauthorized, v1.CodeTokenUsedUp, ""},
		{"unknown is internal", errors.New("disk on fire"), http.StatusInternalServerError, v1.CodeInternal, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := ToAPI(tt.err)
			if status != tt.status || body.Code != tt.code || body.Field != tt.field {
				t.Fatalf("ToAPI(%v) = %d %+v, want %d %s field %q", tt.err, status, body, tt.status, tt.code, tt.field)
			}
			if tt.code == v1.CodeInternal && body.Message != "internal error" {
				t.Fatalf("internal error text leaked: %q", body.Message)
			}
		})
	}
}

func TestFromAPIRoundTrip(t *testing.T) {
	for _, sentinel := range []error{ErrNotFound, ErrConflict, ErrForbidden, ErrTokenExpired, ErrGone} {
		status, body := ToAPI(sentinel)
		if err := FromAPI(status, body); !errors.Is(err, sentinel) {
			t.Errorf("FromAPI(%d, %+v) is not %v", status, body, sentinel)
		}
	}
	if err := FromAPI(422, v1.Error{Code: v1.CodeInvalid, Field: "x"}); !errors.Is(err, ErrInvalid) {
		t.Errorf("invalid code does not unwrap to ErrInvalid")
	}
}
