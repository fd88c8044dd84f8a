package profile

import (
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strings"

	"github.com/Masterminds/semver/v3"

	v1 "github.com/outpost-edge/outpost/api/v1"
	"github.com/outpost-edge/outpost/internal/errs"
)

var (
	// reIdent is what a variable name must be for `{{ .Vars.name }}` to
	// parse as a template field.
	reIdent = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	// reNumber is a JSON number: it reads the same in YAML, JSON and Go, which
	// is not true of 0x10, 1_000 or .5.
	reNumber = regexp.MustCompile(`^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?$`)
)

var varTypes = []string{v1.VarString, v1.VarNumber, v1.VarBool, v1.VarIPv4, v1.VarCIDR, v1.VarVersion}

// checkVarValue says what is wrong with value for a variable of type typ, or
// returns "".
func checkVarValue(typ, value string) string {
	switch typ {
	case v1.VarString:
		return ""
	case v1.VarNumber:
		if !reNumber.MatchString(value) {
			return fmt.Sprintf("%q is not a number", value)
		}
	case v1.VarBool:
		if value != "true" && value != "false" {
			return fmt.Sprintf("%q is not true or false", value)
		}
	case v1.VarIPv4:
		a, err := netip.ParseAddr(value)
		if err != nil || !a.Is4() {
			return fmt.Sprintf("%q is not an IPv4 address", value)
		}
	case v1.VarCIDR:
		p, err := netip.ParsePrefix(value)
		if err != nil {
			return fmt.Sprintf("%q is not a CIDR (10.42.0.0/16)", value)
		}
		if p.Masked() != p {
			return fmt.Sprintf("%q has host bits set (did you mean %s?)", value, p.Masked())
		}
	case v1.VarVersion:
		if _, err := semver.StrictNewVersion(strings.TrimPrefix(value, "v")); err != nil {
			return fmt.Sprintf("%q is not a semantic version (1.30.4)", value)
		}
	default:
		return fmt.Sprintf("unknown type %q", typ)
	}
	return ""
}

// compileVarRegex anchors re so that it has to match the whole value: a
// pattern written as `[a-z]+` is meant for the whole value, not a part.
func compileVarRegex(re string) (*regexp.Regexp, error) {
	return regexp.Compile(`^(?:` + re + `)$`)
}

// ResolveVariables returns the value of every declared variable: the given
// one, else the default, else "" (so templates can test it). A required
// variable needs a non-empty value; non-empty values must fit the type and
// the regex; names that are not declared are errors. Errors are an
// errs.FieldList naming `variables.NAME`.
func ResolveVariables(decls []v1.ProfileVariable, given map[string]string) (map[string]string, error) {
	var fl errs.FieldList
	out := make(map[string]string, len(decls))
	declared := make(map[string]bool, len(decls))
	for _, d := range decls {
		declared[d.Name] = true
		field := "variables." + d.Name
		value, ok := given[d.Name]
		if !ok || value == "" {
			value = d.Default
		}
		out[d.Name] = value
		if value == "" {
			if d.Required {
				fl.Add(field, "is required")
			}
			continue
		}
		if msg := checkVarValue(d.Type, value); msg != "" {
			fl.Add(field, "%s", msg)
			continue
		}
		if d.Regex != "" {
			re, err := compileVarRegex(d.Regex)
			if err != nil {
				fl.Add(field, "the profile's regex does not compile: %v", err)
				continue
			}
			if !re.MatchString(value) {
				fl.Add(field, "%q does not match %s", value, d.Regex)
			}
		}
	}
	var unknown []string
	for name := range given {
		if !declared[name] {
			unknown = append(unknown, name)
		}
	}
	slices.Sort(unknown)
	for _, name := range unknown {
		fl.Add("variables."+name, "the profile declares no such variable")
	}
	if err := fl.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// placeholder is a value of the type for checking templates when a variable
// has no default: values and manifests must parse whatever is filled in.
func placeholder(d v1.ProfileVariable) string {
	if d.Default != "" {
		return d.Default
	}
	switch d.Type {
	case v1.VarNumber:
		return "1"
	case v1.VarBool:
		return "true"
	case v1.VarIPv4:
		return "192.0.2.1"
	case v1.VarCIDR:
		return "192.0.2.0/24"
	case v1.VarVersion:
		return "1.0.0"
	}
	return "placeholder"
}

// validateVariables checks the declarations of a profile.
func validateVariables(fl *errs.FieldList, decls []v1.ProfileVariable) {
	seen := map[string]bool{}
	for i, d := range decls {
		field := fmt.Sprintf("spec.variables[%s]", d.Name)
		if d.Name == "" {
			field = fmt.Sprintf("spec.variables[%d]", i)
			fl.Add(field+".name", "is required")
		} else if !reIdent.MatchString(d.Name) {
			fl.Add(field+".name", "%q is not an identifier (letters, digits and _, not starting with a digit)", d.Name)
		} else if seen[d.Name] {
			fl.Add(field+".name", "variable %q is declared twice", d.Name)
		}
		seen[d.Name] = true
		if !slices.Contains(varTypes, d.Type) {
			fl.Add(field+".type", "%q is not one of %s", d.Type, strings.Join(varTypes, ", "))
			continue
		}
		var re *regexp.Regexp
		if d.Regex != "" {
			var err error
			if re, err = compileVarRegex(d.Regex); err != nil {
				fl.Add(field+".regex", "does not compile: %v", err)
			}
		}
		if d.Default == "" {
			continue
		}
		if msg := checkVarValue(d.Type, d.Default); msg != "" {
			fl.Add(field+".default", "%s", msg)
		} else if re != nil && !re.MatchString(d.Default) {
			fl.Add(field+".default", "%q does not match %s", d.Default, d.Regex)
		}
	}
}
