package auth

import (
	"errors"
	"strings"
	"testing"

	v1 "github.com/outpost-edge/outpost/api/v1"
	"github.com/outpost-edge/outpost/internal/errs"
)

func TestSecretRoundTrip(t *testing.T) {
	s, err := NewSecret(PrefixRegistrationToken)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(s.Token, "ort_"+s.ID+"_") {
		t.Fatalf("token %q does not carry prefix and id %q", s.Token, s.ID)
	}
	id, secret, err := ParseToken(PrefixRegistrationToken, s.Token)
	if err != nil || id != s.ID {
		t.Fatalf("ParseToken = %q, %v", id, err)
	}
	if !CheckSecret(secret, s.Hash) {
		t.Fatal("secret does not match its own hash")
	}
	if CheckSecret(secret+"x", s.Hash) {
		t.Fatal("a changed secret matched")
	}
	if strings.Contains(s.Hash, secret) {
		t.Fatal("hash contains the secret")
	}
	other, _ := NewSecret(PrefixRegistrationToken)
	if other.ID == s.ID || other.Token == s.Token {
		t.Fatal("two tokens are the same")
	}
}

func TestParseTokenRejects(t *testing.T) {
	good, _ := NewSecret(PrefixAPIToken)
	for _, tok := range []string{"", "opt", "opt_", "ort_" + good.Token[4:], "opt_abc", "opt_abc_short", good.Token[:20]} {
		if _, _, err := ParseToken(PrefixAPIToken, tok); !errors.Is(err, errs.ErrUnauthenticated) {
			t.Errorf("ParseToken(%q) = %v, want unauthenticated", tok, err)
		}
	}
}

func TestPrincipal(t *testing.T) {
	hubAdmin := &Principal{Roles: []v1.ProjectRole{{Project: "*", Role: "admin"}}}
	editorA := &Principal{Roles: []v1.ProjectRole{{Project: "a", Role: "editor"}}}
	adminA := &Principal{Roles: []v1.ProjectRole{{Project: "a", Role: "admin"}, {Project: "b", Role: "viewer"}}}
	globalViewer := &Principal{Roles: []v1.ProjectRole{{Project: "*", Role: "viewer"}}}
	tests := []struct {
		name    string
		p       *Principal
		project string
		role    string
		want    error
	}{
		{"hub admin anywhere", hubAdmin, "zzz", v1.RoleAdmin, nil},
		{"editor includes site-operator", editorA, "a", v1.RoleSiteOperator, nil},
		{"editor is not admin", editorA, "a", v1.RoleAdmin, errs.ErrForbidden},
		{"stranger sees not found", editorA, "b", v1.RoleViewer, errs.ErrNotFound},
		{"viewer may not edit", adminA, "b", v1.RoleEditor, errs.ErrForbidden},
		{"global viewer reads all", globalViewer, "b", v1.RoleViewer, nil},
		{"global viewer writes none", globalViewer, "b", v1.RoleSiteOperator, errs.ErrForbidden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.p.Require(tt.project, tt.role)
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("Require(%s, %s) = %v, want %v", tt.project, tt.role, err, tt.want)
			}
		})
	}
	if !adminA.CanGrant([]v1.ProjectRole{{Project: "a", Role: "viewer"}}) {
		t.Error("project admin cannot grant in own project")
	}
	if adminA.CanGrant([]v1.ProjectRole{{Project: "b", Role: "viewer"}}) {
		t.Error("project admin granted in a project it only views")
	}
	if adminA.CanGrant([]v1.ProjectRole{{Project: "*", Role: "viewer"}}) {
		t.Error("project admin granted a role in every project")
	}
	if hubAdmin.IsHubAdmin() == false || adminA.IsHubAdmin() {
		t.Error("IsHubAdmin wrong")
	}
}
